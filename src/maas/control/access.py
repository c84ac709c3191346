"""Who may do what: API keys, their scopes, and the check every route and RPC goes through.

A key is ``maas_<id>_<secret>``: the 12-hex-digit id is public (listed, named in the audit
log), the 43-character secret is 256 random bits shown once at creation. The registry keeps
only ``scrypt(secret, salt)``: a database copied off a disk or a backup does not give keys
away, and the slow hash makes even an offline guess at one key cost what it should. A
server checks a presented key once (tens of milliseconds, off the event loop) and then
remembers it by the key's SHA-256 (a plain digest of a 256-bit random string cannot be
reversed or guessed), so the hot path pays a hash and a dict lookup, not scrypt.

Scopes (``Scope``): ``admin`` may do everything, keys included; ``deploy`` uploads,
configures, promotes and routes versions; ``train`` submits and controls jobs;
``predict`` infers and reads what a client needs to (model metadata, config, readiness);
``read`` reads every management record; ``code`` (with ``deploy``) uploads formats whose
files are programs (TorchScript), where the server allows them at all. ``deploy`` and
``train`` include ``read``. A key may be limited to named models: it then acts only on
routes that name one of them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from maas.errors import ForbiddenError, InvalidInputError, UnauthenticatedError
from maas.registry.entities import ApiKey
from maas.registry.keys import KeyBook
from maas.registry.names import check_model_name

__all__ = [
    "OPEN",
    "ApiKeys",
    "CreatedKey",
    "KeyRing",
    "Principal",
    "Reach",
    "Requirement",
    "Scope",
    "hash_secret",
    "verify_secret",
]


class Scope(StrEnum):
    ADMIN = "admin"
    DEPLOY = "deploy"
    TRAIN = "train"
    PREDICT = "predict"
    READ = "read"
    CODE = "code"


#: What holding a scope grants.
_GRANTS: Final[dict[Scope, frozenset[Scope]]] = {
    Scope.ADMIN: frozenset(Scope),
    Scope.DEPLOY: frozenset({Scope.DEPLOY, Scope.READ}),
    Scope.TRAIN: frozenset({Scope.TRAIN, Scope.READ}),
    Scope.PREDICT: frozenset({Scope.PREDICT}),
    Scope.READ: frozenset({Scope.READ}),
    Scope.CODE: frozenset({Scope.CODE}),
}

_KEY_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
_TOKEN: Final = re.compile(r"maas_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")
_SCRYPT: Final = {"n": 2**14, "r": 8, "p": 1}
_MAX_REMEMBERED: Final = 10_000


class Reach(StrEnum):
    """Which models a route acts on, for keys limited to some: ``named`` (the model its
    path names: the key must hold it), ``every`` (all of them, e.g. a list: refused to a
    limited key) or ``none`` (nothing model-specific, e.g. server metadata: allowed)."""

    NAMED = "named"
    EVERY = "every"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class Requirement:
    """What a route or RPC needs: any one of ``scopes`` (none: open to everyone), over
    the models ``reach`` says."""

    scopes: frozenset[Scope]
    reach: Reach = Reach.NAMED

    @classmethod
    def any_of(cls, *scopes: Scope, reach: Reach = Reach.NAMED) -> Requirement:
        return cls(frozenset(scopes), reach)

    @property
    def is_open(self) -> bool:
        return not self.scopes

    def describe(self) -> str:
        return " or ".join(sorted(self.scopes)) or "none"


#: Health and the API's own description: answered without a key.
OPEN: Final = Requirement(frozenset(), Reach.NONE)


@dataclass(frozen=True, slots=True)
class Principal:
    """A caller proven by its key: what the audit log names and what it may do."""

    key_id: str
    name: str
    scopes: frozenset[Scope]
    models: frozenset[str] | None
    rate_per_s: float | None = None
    granted: frozenset[Scope] = field(init=False)

    def __post_init__(self) -> None:
        granted = frozenset().union(*(_GRANTS[scope] for scope in self.scopes))
        object.__setattr__(self, "granted", granted)

    @classmethod
    def of(cls, key: ApiKey) -> Principal:
        models = None if key.models is None else frozenset(key.models)
        return cls(key.key_id, key.name, frozenset(map(Scope, key.scopes)), models, key.rate_per_s)

    @property
    def actor(self) -> str:
        return f"key:{self.name}/{self.key_id}"

    def check(self, need: Requirement, model: str | None) -> None:
        """ForbiddenError unless this key may do what ``need`` asks (on ``model``)."""
        if need.is_open:
            return
        if self.granted.isdisjoint(need.scopes):
            raise ForbiddenError(
                f"API key {self.name!r} may not do this: it needs the scope "
                f"{need.describe()} (the key holds {', '.join(sorted(self.scopes))})",
                {"key": self.key_id, "scope": sorted(need.scopes)},
            )
        if self.models is None or need.reach is Reach.NONE:
            return
        if need.reach is Reach.EVERY or model not in self.models:
            what = f"model {model!r}" if need.reach is Reach.NAMED else "every model at once"
            raise ForbiddenError(
                f"API key {self.name!r} is limited to the models {', '.join(sorted(self.models))}; "
                f"it may not act on {what}",
                {"key": self.key_id, "models": sorted(self.models)},
            )


def hash_secret(secret: str) -> str:
    """``scrypt$n$r$p$salt$hash`` (base64): what the registry stores of a key's secret."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, dklen=32, **_SCRYPT)
    encoded = (base64.b64encode(part).decode() for part in (salt, digest))
    return "scrypt${n}${r}${p}$".format(**_SCRYPT) + "$".join(encoded)


def verify_secret(secret: str, stored: str) -> bool:
    """Whether ``secret`` hashes to ``stored``, compared in constant time."""
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            secret.encode(),
            salt=base64.b64decode(salt),
            dklen=len(expected),
            n=int(n),
            r=int(r),
            p=int(p),
        )
    except ValueError:
        return False
    return kind == "scrypt" and hmac.compare_digest(actual, expected)


@dataclass(frozen=True, slots=True)
class CreatedKey:
    """A new key and its token: the only time the token exists outside its holder."""

    key: ApiKey
    token: str


def _check_scopes(scopes: Iterable[str]) -> list[str]:
    chosen = list(dict.fromkeys(scopes))
    known = [scope.value for scope in Scope]
    unknown = [scope for scope in chosen if scope not in known]
    if not chosen or unknown:
        raise InvalidInputError(
            f"scopes must name one or more of {', '.join(known)}"
            + (f"; unknown: {', '.join(map(repr, unknown))}" if unknown else ""),
            {"field": "scopes"},
        )
    return chosen


class ApiKeys:
    """The control plane's keys concern: create (the token shown once), list, revoke."""

    def __init__(self, book: KeyBook) -> None:
        self._book = book

    def create(
        self,
        name: str,
        scopes: Sequence[str],
        *,
        models: Sequence[str] | None = None,
        rate_per_s: float | None = None,
        actor: str,
    ) -> CreatedKey:
        if not isinstance(name, str) or _KEY_NAME.fullmatch(name) is None:
            raise InvalidInputError(
                "a key's name is 1 to 63 letters, digits, '_', '.' or '-', starting with a "
                "letter or digit",
                {"field": "name"},
            )
        chosen = _check_scopes(scopes)
        limited = None
        if models is not None:
            limited = [check_model_name(model) for model in dict.fromkeys(models)]
            if not limited:
                raise InvalidInputError(
                    "models, when given, names at least one model", {"field": "models"}
                )
        if rate_per_s is not None and not (0 < rate_per_s <= 1e6):
            raise InvalidInputError(
                "rate_per_s is a number of requests per second above 0 (at most 1e6)",
                {"field": "rate_per_s"},
            )
        key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        key = self._book.add(
            key_id,
            name,
            chosen,
            limited,
            hash_secret(secret),
            rate_per_s=rate_per_s,
            actor=actor,
        )
        return CreatedKey(key, f"maas_{key_id}_{secret}")

    def list(self, *, include_revoked: bool = False) -> list[ApiKey]:
        return self._book.list(include_revoked=include_revoked)

    def revoke(self, key_id: str, *, actor: str) -> ApiKey:
        return self._book.revoke(key_id, actor=actor)


class KeyRing:
    """One server process's view of the keys: whether keys are required, and who a
    presented key is.

    ``refresh`` re-reads the active keys (the server does it every refresh interval and
    after each change it makes); a key revoked elsewhere stops working at the next one.
    Keys are required once one was ever made (revoking them all reopens nothing), or
    always when ``always_required``
    (a server on a non-loopback address, or ``MAAS_AUTH=required``); ``disabled``
    (``MAAS_AUTH=off``) turns every check off.
    """

    def __init__(self, book: KeyBook, *, always_required: bool, disabled: bool = False) -> None:
        self._book = book
        self._always_required = always_required
        self._disabled = disabled
        self._keys: dict[str, ApiKey] = {}
        self._known: dict[bytes, Principal] = {}  # sha256(token) -> a key proven once
        self._refused: dict[bytes, None] = {}  # sha256(token) -> proven wrong once
        self._lock = threading.Lock()
        self._verifying = threading.Lock()
        self.enforcing = always_required and not disabled

    def refresh(self) -> None:
        every = self._book.list(include_revoked=True)
        keys = {key.key_id: key for key in every if key.revoked_at is None}
        with self._lock:
            self._keys = keys
            self._known = {
                digest: principal
                for digest, principal in self._known.items()
                if principal.key_id in keys
            }
        # Once a key was ever made, keys stay required: revoking the last one (a leaked
        # one, say) must not reopen the server.
        self.enforcing = not self._disabled and (self._always_required or bool(every))

    def known(self, token: bytes) -> Principal | None:
        """The principal of a token this process has proven before (the hot path)."""
        return self._known.get(hashlib.sha256(token).digest())

    def authenticate(self, token: bytes | None) -> Principal:
        """Who ``token`` is; UnauthenticatedError for none, a malformed one, or one that
        is wrong or revoked. Blocking (scrypt, once per key): call it off the event loop."""
        if not token:
            raise UnauthenticatedError(
                "this server requires an API key: send it as 'Authorization: Bearer <key>'",
                {"header": "Authorization"},
            )
        digest = hashlib.sha256(token).digest()
        principal = self._known.get(digest)
        if principal is not None:
            return principal
        refused = UnauthenticatedError(
            "the API key is not valid (wrong, revoked or malformed)", {"header": "Authorization"}
        )
        match = _TOKEN.fullmatch(token.decode("latin-1"))
        key = None if match is None else self._keys.get(match[1])
        if match is None or key is None or digest in self._refused:
            raise refused
        # One scrypt at a time: the 32 connections a client opens at once, all with a key
        # this process has not seen, cost one check (the rest find it known), and a flood
        # of wrong keys costs at most one core.
        with self._verifying:
            principal = self._known.get(digest)
            if principal is not None:
                return principal
            if digest in self._refused or not verify_secret(match[2], key.secret_hash):
                with self._lock:
                    if len(self._refused) >= _MAX_REMEMBERED:
                        self._refused.clear()
                    self._refused[digest] = None
                raise refused
            principal = Principal.of(key)
            with self._lock:
                if self._keys.get(key.key_id) is key and len(self._known) < _MAX_REMEMBERED:
                    self._known[digest] = principal
        return principal
