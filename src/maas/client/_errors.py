"""Replies and transport failures -> the maas error tree (``maas.errors``).

Every error answer of a maas server is ``{"error": message, "code": code, "details"?}``;
the class comes from the body's ``code`` (``error_class``), never from the HTTP status,
so a 409 is a ``GateFailedError`` or a ``NotServableError`` as the server meant it. A
reply without such a body (a proxy's HTML page, a server that is not maas) is a plain
``MaasError`` naming the status and the start of the body; a server that cannot be
reached is an ``UnavailableError``.
"""

from __future__ import annotations

from typing import Any, Final

import httpx
import orjson

from maas.errors import MaasError, UnavailableError, error_class

__all__ = ["error_from_reply", "transport_error"]

#: How much of a body that is not a maas error is quoted in the message.
_QUOTED_CHARS: Final = 200


def error_from_reply(base_url: str, response: httpx.Response) -> MaasError:
    """The error a (read) failed reply stands for.

    A code this SDK does not know (a newer server's, or the framework's own such as
    ``method_not_allowed``) gives a ``MaasError`` whose instance ``code`` keeps it.
    """
    body = _error_body(response.content)
    if body is None:
        text = response.content[:_QUOTED_CHARS].decode("utf-8", "replace").strip()
        more = "..." if len(response.content) > _QUOTED_CHARS else ""
        return MaasError(
            f"the server at {base_url} answered {response.status_code} "
            f"{response.reason_phrase} without a maas error body: {text!r}{more}",
            {"status": response.status_code},
        )
    message, code, details = body
    error = error_class(code)(message, details)
    if error.code != code:
        error.code = code
    return error


def _error_body(content: bytes) -> tuple[str, str, dict[str, Any] | None] | None:
    try:
        document = orjson.loads(content)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(document, dict):
        return None
    message, code = document.get("error"), document.get("code")
    if not isinstance(message, str) or not isinstance(code, str):
        return None
    details = document.get("details")
    return message, code, details if isinstance(details, dict) else None


def transport_error(base_url: str, request: httpx.Request, exc: httpx.TransportError) -> MaasError:
    """An ``UnavailableError`` for a request that got no (complete) answer.

    A timeout while waiting for the answer says so: the server may still finish the
    work (an upload, a promotion), so the caller should look before retrying.
    """
    if isinstance(exc, httpx.TimeoutException) and not isinstance(exc, httpx.ConnectTimeout):
        return UnavailableError(
            f"the maas server at {base_url} did not answer {request.method} "
            f"{request.url.path} in time ({type(exc).__name__}); it may still complete it",
            {"server": base_url},
        )
    reason = str(exc) or type(exc).__name__
    return UnavailableError(
        f"cannot reach the maas server at {base_url}: {reason}", {"server": base_url}
    )
