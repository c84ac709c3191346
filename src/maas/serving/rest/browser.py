"""Defences against a web page driving a maas it can reach (one on the user's own machine).

A browser lets any page send a "simple" cross-site request (a form post, a ``fetch``
without custom headers) and, after DNS rebinding, read answers from ``127.0.0.1`` under the
attacker's host name. Three header checks, on every REST request, stop both:

* **Host**: answered only for the names this server is for (``MAAS_ALLOWED_HOSTS``; by
  default the bound address and localhost names): a rebound name is refused.
* **Origin**: a state-changing request (POST, PUT, PATCH, DELETE) that a browser sent from
  another origin is refused; maas sends no CORS headers, so no page may read its answers.
* **Content-Type**: a body must be JSON or ``application/octet-stream`` (binary tensors,
  uploads), the types a cross-site page cannot send without a CORS preflight, which maas
  never grants; a form's or ``text/plain`` body is refused (415). A body without a
  Content-Type is read as the route's own type (tritonclient sends none).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from maas.errors import ForbiddenError, MaasError, UnsupportedMediaTypeError
from maas.serving.rest.errors import error_reply

__all__ = ["BrowserDefences", "HeaderPolicy", "default_allowed_hosts"]

_UNSAFE: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_BODY_TYPES: Final = frozenset({b"application/json", b"application/octet-stream"})
_LOCAL_NAMES: Final = ("localhost", "127.0.0.1", "::1")
_REMEMBERED: Final = 256  # raw header values found good, so the hot path parses each once


def default_allowed_hosts(bound: str) -> list[str]:
    """The bound address and localhost names; any host for a wildcard bind (keys guard it)."""
    if bound in ("0.0.0.0", "::", ""):
        return ["*"]
    return list(dict.fromkeys([bound.lower(), *_LOCAL_NAMES]))


def _host_name(value: bytes) -> str:
    """``example.com:8080`` -> ``example.com``; ``[::1]:8080`` -> ``::1``."""
    text = value.decode("latin-1").strip().lower()
    if text.startswith("["):
        return text[1 : text.find("]")] if "]" in text else text
    return text.rsplit(":", 1)[0] if text.count(":") == 1 else text


class HeaderPolicy:
    """The three checks over header values; the inference lane and ``BrowserDefences``
    both call ``check`` (raising ``ForbiddenError`` / ``UnsupportedMediaTypeError``)."""

    def __init__(self, allowed_hosts: Iterable[str]) -> None:
        hosts = [host.strip().lower().strip("[]") for host in allowed_hosts]
        self._any_host = "*" in hosts
        self._hosts = frozenset(hosts)
        self._good_hosts: set[bytes] = set()
        self._good_types: set[bytes] = set()

    def check(
        self,
        method: str,
        host: bytes | None,
        origin: bytes | None,
        content_type: bytes | None,
        has_body: bool,
    ) -> None:
        if host is not None and not self._any_host and host not in self._good_hosts:
            self._check_host(host)
        if method not in _UNSAFE:
            return
        if origin is not None and not _same_origin(origin, host):
            raise ForbiddenError(
                "cross-origin requests may not change anything on this server",
                {"header": "Origin"},
            )
        if has_body and content_type is not None and content_type not in self._good_types:
            self._check_content_type(content_type)

    def _check_host(self, host: bytes) -> None:
        if _host_name(host) not in self._hosts:
            shown = host.decode("latin-1")[:100]
            raise ForbiddenError(
                f"this server does not answer to the host {shown!r} (see MAAS_ALLOWED_HOSTS)",
                {"header": "Host"},
            )
        if len(self._good_hosts) < _REMEMBERED:
            self._good_hosts.add(host)

    def _check_content_type(self, content_type: bytes) -> None:
        media_type = content_type.split(b";", 1)[0].strip().lower()
        if media_type not in _BODY_TYPES:
            shown = media_type.decode("latin-1")[:100]
            raise UnsupportedMediaTypeError(
                f"a body of type {shown!r} is not read here: send application/json "
                "(or application/octet-stream for binary tensors and uploads)",
                {"header": "Content-Type"},
            )
        if len(self._good_types) < _REMEMBERED:
            self._good_types.add(content_type)


def _same_origin(origin: bytes, host: bytes | None) -> bool:
    """An Origin header naming this very host and port (a page this server served)."""
    if host is None:
        return False
    parts = urlsplit(origin.decode("latin-1").strip())
    return parts.scheme in ("http", "https") and parts.netloc.lower() == (
        host.decode("latin-1").strip().lower()
    )


class BrowserDefences:
    """ASGI middleware applying ``HeaderPolicy`` to every HTTP request before ``app``."""

    def __init__(self, app: ASGIApp, policy: HeaderPolicy) -> None:
        self._app = app
        self._policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            host = origin = content_type = None
            has_body = False
            for key, value in scope["headers"]:
                if key == b"host":
                    host = value
                elif key == b"origin":
                    origin = value
                elif key == b"content-type":
                    content_type = value
                elif key == b"transfer-encoding" or (key == b"content-length" and value != b"0"):
                    has_body = True
            try:
                self._policy.check(scope["method"], host, origin, content_type, has_body)
            except MaasError as exc:
                reply = error_reply(exc)
                headers = [(b"content-type", b"application/json")]
                headers += [(k.encode(), v.encode()) for k, v in reply.headers.items()]
                await send(
                    {"type": "http.response.start", "status": reply.status, "headers": headers}
                )
                await send({"type": "http.response.body", "body": reply.body})
                return
        await self._app(scope, receive, send)
