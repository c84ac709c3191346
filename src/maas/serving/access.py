"""The access check both transports share: who the caller is, whether it may, how fast.

``Gatekeeper.admit`` takes the credential a request carried (the value of an
``Authorization: Bearer`` header or the gRPC metadata of that name), what the route or RPC
requires and the model it names, and returns the caller (or None while the server runs
without keys), raising 401, 403 or 429. A key seen before costs a SHA-256 and a dict
lookup; a new one is checked with scrypt off the event loop. Refused management attempts
go to the audit log, at most a few a second (beyond that only counted in the log), so that
a flood of bad keys cannot turn into a flood of database writes.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from dataclasses import dataclass
from typing import Final

from maas.config import Settings
from maas.control.access import KeyRing, Principal, Requirement
from maas.errors import ForbiddenError, MaasError, RateLimitedError, UnauthenticatedError
from maas.registry.keys import KeyBook
from maas.scheduling.ratelimit import TokenBucket

__all__ = [
    "Gatekeeper",
    "Refusal",
    "bearer_token",
    "exposure_problem",
    "is_loopback",
    "needs_a_key_to_start",
    "warn_if_open",
]

log = logging.getLogger(__name__)

_BEARER: Final = b"bearer "
_REFUSALS_PER_S: Final = 5.0


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the server on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bearer_token(value: bytes | str | None) -> bytes | None:
    """The token of an ``Authorization: Bearer <token>`` value (None if it is not one)."""
    if value is None:
        return None
    raw = value.encode("latin-1") if isinstance(value, str) else value
    if raw[:7].lower() != _BEARER:
        return None
    return raw[7:].strip() or None


def needs_a_key_to_start(settings: Settings) -> bool:
    """Whether starting as configured depends on a key existing (``exposure_problem``)."""
    return not is_loopback(settings.host) and settings.auth == "auto"


def exposure_problem(settings: Settings, active_keys: int) -> str | None:
    """Why this server must not start as configured (None: it may)."""
    if needs_a_key_to_start(settings) and active_keys == 0:
        return (
            f"refusing to serve on {settings.host}, which other machines can reach, without "
            "API keys: create one first (`maas keys create NAME --scope admin`), or pass "
            "--auth off to serve without authentication"
        )
    return None


def warn_if_open(settings: Settings) -> None:
    """Say in the log, once per server process, that keys are off where others reach it."""
    if settings.auth == "off" and not is_loopback(settings.host):
        log.warning(
            "serving on %s with MAAS_AUTH=off: anyone who can reach ports %s and %s may "
            "upload, deploy and run models",
            settings.host,
            settings.port,
            settings.grpc_port,
        )


@dataclass(frozen=True, slots=True)
class Refusal:
    """What the audit log records of a refused management attempt."""

    method: str
    target: str
    address: str


class Gatekeeper:
    def __init__(self, keyring: KeyRing, keys: KeyBook) -> None:
        self.keyring = keyring
        self._keys = keys
        self._buckets: dict[str, TokenBucket] = {}
        self._refusal_records = TokenBucket(_REFUSALS_PER_S, 4 * _REFUSALS_PER_S)
        self._unrecorded = 0

    async def admit(
        self,
        token: bytes | None,
        need: Requirement,
        model: str | None,
        refusal: Refusal | None = None,
    ) -> Principal | None:
        """The caller, once it may do what ``need`` asks on ``model``; None when keys are
        not required (or the route is open). ``refusal``: record a refusal in the audit log."""
        if need.is_open or not self.keyring.enforcing:
            return None
        try:
            principal = None if token is None else self.keyring.known(token)
            if principal is None:
                principal = await asyncio.to_thread(self.keyring.authenticate, token)
            principal.check(need, model)
        except (UnauthenticatedError, ForbiddenError) as exc:
            if refusal is not None:
                await self._record(refusal, exc)
            raise
        if principal.rate_per_s is not None:
            self._limit(principal)
        return principal

    def admit_known(
        self, token: bytes | None, need: Requirement, model: str | None
    ) -> Principal | None:
        """The hot path's ``admit``, without a coroutine: the caller when ``token`` is a key
        this process has proven before (checked and rate-limited as ``admit`` does); None
        when it is not, and ``admit`` must decide."""
        principal = None if token is None else self.keyring.known(token)
        if principal is not None:
            principal.check(need, model)
            if principal.rate_per_s is not None:
                self._limit(principal)
        return principal

    def _limit(self, principal: Principal) -> None:
        bucket = self._buckets.get(principal.key_id)
        if bucket is None:
            rate = principal.rate_per_s or 1.0
            bucket = self._buckets[principal.key_id] = TokenBucket(rate, rate)
        wait_s = bucket.take()
        if wait_s:
            raise RateLimitedError(
                f"API key {principal.name!r} is over its rate of {principal.rate_per_s:g} "
                "requests a second",
                {"key": principal.key_id, "retry_after_s": round(wait_s, 3)},
            )

    async def _record(self, refusal: Refusal, exc: MaasError) -> None:
        if self._refusal_records.take():
            self._unrecorded += 1
            if self._unrecorded % 1000 == 1:
                log.warning(
                    "refused management attempts beyond the audit rate: %d", self._unrecorded
                )
            return
        details = {
            "method": refusal.method,
            "target": refusal.target[:200],
            "address": refusal.address,
            "code": exc.code,
            **{k: v for k, v in exc.details.items() if k in ("key", "scope", "header")},
        }
        log.info(
            "refused %s %s from %s: %s",
            refusal.method,
            refusal.target[:200],
            refusal.address,
            exc.code,
        )
        try:
            await asyncio.to_thread(self._keys.record_refusal, f"api:{refusal.address}", details)
        except MaasError as error:  # the database is down: the refusal stands, logged
            log.warning("could not record a refused attempt: %s", error.message)
