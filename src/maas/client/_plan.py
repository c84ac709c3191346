"""The one mechanism under both clients: calls described as data, run by two executors.

Every API method is a ``Call`` (method, path, query, body, how to read the answer) or,
when it needs several round trips (the default version, a download), a ``Plan``: a
generator that yields calls and receives their parsed results. Nothing here touches the
network (a download's ``FileSink`` only writes the file it is handed);
``Client`` and ``AsyncClient`` each drive plans with their own httpx client, so each
method is written once, in ``_calls``, and both clients stay one-liners over it.

    def get_version(name, ref):                 # a Plan[Version]
        model = yield get_model(name)           # a Call[Model], run by the executor
        return (yield version(name, default_ref(model)))
"""

from __future__ import annotations

import hashlib
import os
import ssl
import tempfile
from collections.abc import Callable, Generator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeAlias, TypeVar

import httpx
import orjson

from maas.errors import IntegrityError, InvalidInputError, MaasError

from ._errors import error_from_reply

__all__ = [
    "Call",
    "FileSink",
    "NotAnAnswer",
    "Plan",
    "auth_headers",
    "build_request",
    "document",
    "finish",
]

T = TypeVar("T")
QueryValue: TypeAlias = str | int | float | bool


@dataclass(frozen=True, slots=True)
class FileSink:
    """Where a streamed answer goes: a temporary file beside ``destination``, renamed to
    it only once every byte arrived and (when known) the sha256 and size match, so an
    interrupted or corrupted download never leaves a file that looks complete."""

    destination: Path
    sha256: str | None = None
    size_bytes: int | None = None

    @contextmanager
    def writing(self) -> Iterator[Callable[[bytes], None]]:
        self.destination.parent.mkdir(parents=True, exist_ok=True)
        handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - renamed or removed below
            dir=self.destination.parent,
            prefix=f".{self.destination.name}.",
            suffix=".part",
            delete=False,
        )
        digest = hashlib.sha256()
        size = 0

        def write(chunk: bytes) -> None:
            nonlocal size
            digest.update(chunk)
            size += len(chunk)
            handle.write(chunk)

        try:
            with handle:
                yield write
            self._check(digest.hexdigest(), size)
            os.replace(handle.name, self.destination)
        except BaseException:
            Path(handle.name).unlink(missing_ok=True)
            raise

    def _check(self, sha256: str, size: int) -> None:
        if self.size_bytes is not None and size != self.size_bytes:
            raise IntegrityError(
                f"download of {self.destination.name} got {size} bytes, {self.size_bytes} expected",
                {"expected_size_bytes": self.size_bytes, "size_bytes": size},
            )
        if self.sha256 is not None and sha256 != self.sha256:
            raise IntegrityError(
                f"download of {self.destination.name} has sha256 {sha256}, {self.sha256} expected",
                {"expected_sha256": self.sha256, "sha256": sha256},
            )


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One HTTP request and how to read its answer.

    ``parse`` reads a successful reply, or one whose status is in ``answers`` (a 503
    from a readiness probe is an answer: "not ready"); any other reply is an error and
    becomes the maas error its body names, as does one ``parse`` refuses with
    ``NotAnAnswer``. ``json`` None means no JSON body.
    """

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    params: Mapping[str, QueryValue] = field(default_factory=dict)
    json: Any = None
    content: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    answers: frozenset[int] = frozenset()
    sink: FileSink | None = None


#: Several calls in order: yields each call, receives its parsed result, returns a T.
Plan: TypeAlias = Generator[Call[Any], Any, T]


def trust(verify: bool | str | ssl.SSLContext) -> bool | ssl.SSLContext:
    """What httpx verifies a TLS server against: the system's authorities (True), the
    PEM file ``verify`` names, a context of the caller's, or nothing (False)."""
    if isinstance(verify, str):
        return ssl.create_default_context(cafile=verify)
    return verify


def auth_headers(api_key: str | None) -> dict[str, str]:
    """The headers every request of a client carries: ``Authorization: Bearer <api_key>``
    (none without a key). Surrounding whitespace (a newline read from a file) is dropped;
    a key that is empty or holds other characters than visible ASCII is refused here, with
    a message that does not quote it, rather than by the HTTP library mid-request."""
    if api_key is None:
        return {}
    token = api_key.strip()
    if not token or not all("!" <= c <= "~" for c in token):
        raise InvalidInputError(
            "api_key: the API key is empty or holds characters a key never has "
            "(it is visible ASCII: maas_<id>_<secret>)",
            {"field": "api_key"},
        )
    return {"Authorization": f"Bearer {token}"}


def build_request(http: httpx.Client | httpx.AsyncClient, call: Call[Any]) -> httpx.Request:
    return http.build_request(
        call.method,
        call.path,
        params=dict(call.params) or None,
        json=call.json,
        content=call.content,
        headers=dict(call.headers) or None,
    )


class NotAnAnswer(Exception):
    """Raised by a ``parse`` for a reply that is not the answer it reads: the reply is
    then treated as an error reply."""


def finish(base_url: str, call: Call[T], response: httpx.Response) -> T:
    """The parsed answer of a read reply, or the error it stands for.

    A successful reply whose document lacks what the SDK reads (another server behind
    the URL, or an incompatible maas version) is a ``MaasError`` saying so, not a
    ``KeyError`` from deep inside a ``from_json``.
    """
    try:
        if response.is_success or response.status_code in call.answers:
            return call.parse(response)
    except NotAnAnswer:
        pass
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise MaasError(
            f"{response.request.method} {response.request.url} answered "
            f"{response.status_code} with a document this SDK cannot read "
            f"({type(exc).__name__}: {exc})",
            {"status": response.status_code},
        ) from exc
    raise error_from_reply(base_url, response)


def document(response: httpx.Response) -> Any:
    """A reply's JSON; a ``MaasError`` when the body is not JSON (a proxy's page)."""
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        start = response.content[:200].decode("utf-8", "replace").strip()
        raise MaasError(
            f"{response.request.method} {response.request.url} answered "
            f"{response.status_code} with a body that is not JSON: {start!r}",
            {"status": response.status_code},
        ) from None
