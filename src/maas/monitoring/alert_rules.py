"""The alert rules file: a TOML document of rules and webhooks, validated in full.

::

    webhooks = ["https://hooks.example.com/maas"]

    [[rules]]
    name = "digits-slow"
    kind = "latency_p99"
    threshold = 0.25      # seconds
    window_s = 300
    for_s = 60
    model = "digits"

Every error names its field path (``rules[2].threshold: must be > 0``) and the whole
file is refused with one ``InvalidInputError`` listing them: a server does not start on
a file it would half understand. ``deploy/maas-alerts.example.toml`` documents each
field; docs/monitoring.md the rule kinds.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Final, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic import ValidationInfo as _Info

from maas.errors import InvalidInputError

__all__ = [
    "KINDS",
    "Delivery",
    "Rule",
    "RuleKind",
    "RulesFile",
    "load_rules",
    "parse_rules",
    "redact_url",
]

RuleKind = Literal["latency_p99", "error_rate", "drift", "load_failure", "queue_rejections"]
KINDS: Final[tuple[RuleKind, ...]] = (
    "latency_p99",
    "error_rate",
    "drift",
    "load_failure",
    "queue_rejections",
)
#: Kinds whose threshold is a count of events in the window (default 0: any at all).
_COUNTED: Final = frozenset({"load_failure", "queue_rejections"})
_NAME: Final = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")


def _webhook(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in url):
        raise ValueError("must be an http:// or https:// URL with a host")
    return url


Webhook = Annotated[str, AfterValidator(_webhook)]


def redact_url(url: str) -> str:
    """A webhook as logs and the API show it: scheme, host and port only (a path or query
    often carries the receiver's secret)."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port is not None else ""
    return f"{parts.scheme}://{parts.hostname}{port}"


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class Delivery(_Strict):
    """How webhooks are sent: each POST waits ``timeout_s``; a failure (no answer, or not
    2xx) is retried after ``backoff_s``, doubling up to ``max_backoff_s``, ``attempts``
    times in all; at most ``max_pending`` deliveries wait (more are dropped and counted
    failed), so a receiver that is down never grows memory."""

    timeout_s: float = Field(5.0, gt=0, le=60)
    attempts: int = Field(5, ge=1, le=20)
    backoff_s: float = Field(1.0, gt=0, le=300)
    max_backoff_s: float = Field(60.0, gt=0, le=3600)
    max_pending: int = Field(1000, ge=1, le=100_000)


class Rule(_Strict):
    """One rule; instances are kept per (rule, model, version). ``threshold``: seconds
    (latency_p99), a ratio in (0, 1) (error_rate), a score (drift), or a count the
    increase over ``window_s`` must exceed (load_failure, queue_rejections; default 0).
    The condition must hold ``for_s`` before the alert fires (0: at once)."""

    name: str
    kind: RuleKind
    threshold: float | None = Field(None, validate_default=True)
    window_s: float = Field(300.0, gt=0, le=86_400)
    for_s: float = Field(0.0, ge=0, le=86_400)
    model: str | None = Field(None, min_length=1, max_length=128)
    severity: Literal["info", "warning", "critical"] = "warning"
    summary: str | None = Field(None, max_length=500)
    webhooks: list[Webhook] | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(
                "must start with a letter and hold only letters, digits, '_', '.' or '-' "
                "(at most 64)"
            )
        return value

    @field_validator("threshold")
    @classmethod
    def _threshold(cls, value: float | None, info: _Info) -> float | None:
        kind = info.data.get("kind")
        if kind is None:  # the kind itself is wrong: that error says enough
            return value
        if value is None:
            if kind in _COUNTED:
                return 0.0
            raise ValueError(f"required for kind {kind}")
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        if kind in _COUNTED:
            if value < 0:
                raise ValueError("must be >= 0 (a count of events in the window)")
        elif kind == "error_rate":
            if not 0 < value < 1:
                raise ValueError("must be > 0 and < 1 (a ratio of requests)")
        elif value <= 0:
            raise ValueError("must be > 0")
        return value

    @property
    def limit(self) -> float:
        """The threshold (always set once validated)."""
        return 0.0 if self.threshold is None else self.threshold


class RulesFile(_Strict):
    """The whole file: ``webhooks`` every rule notifies unless it names its own."""

    webhooks: list[Webhook] = Field(default_factory=list)
    delivery: Delivery = Field(default_factory=Delivery)
    rules: list[Rule] = Field(default_factory=list)

    def webhooks_for(self, rule: str) -> Sequence[str]:
        for r in self.rules:
            if r.name == rule:
                return self.webhooks if r.webhooks is None else r.webhooks
        return ()

    def longest_window_s(self) -> float:
        return max((r.window_s for r in self.rules), default=0.0)


def _path(loc: Sequence[int | str]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "file"


def _problem(error: Any) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        return "unknown field"
    bounds = {
        "greater_than": ">",
        "greater_than_equal": ">=",
        "less_than": "<",
        "less_than_equal": "<=",
    }
    if kind in bounds:
        limit = next(iter(ctx.values()))
        return f"must be {bounds[kind]} {limit:g}"
    if kind == "literal_error":
        return f"must be one of {ctx['expected']}"
    types = {
        "float_type": "a number",
        "int_type": "an integer",
        "string_type": "a string",
        "list_type": "a list",
        "bool_type": "true or false",
        "model_type": "a table",
        "dict_type": "a table",
    }
    if kind in types:
        return f"must be {types[kind]}, got {type(error.get('input')).__name__}"
    return str(error["msg"]).removeprefix("Value error, ")


def parse_rules(document: Any, source: str = "alert rules") -> RulesFile:
    """Validate a decoded document; ``InvalidInputError`` lists every problem by field."""
    try:
        rules = RulesFile.model_validate(document)
    except ValidationError as exc:
        problems = [(_path(e["loc"]), _problem(e)) for e in exc.errors()]
        text = "; ".join(f"{field}: {message}" for field, message in problems)
        errors = [{"field": f, "message": m} for f, m in problems]
        raise InvalidInputError(
            f"{source}: {text}", {"field": problems[0][0], "errors": errors}
        ) from None
    seen: dict[str, int] = {}
    for i, rule in enumerate(rules.rules):
        if rule.name in seen:
            field = f"rules[{i}].name"
            raise InvalidInputError(
                f"{source}: {field}: {rule.name!r} is already the name of rules[{seen[rule.name]}]",
                {"field": field},
            )
        seen[rule.name] = i
    return rules


def load_rules(path: Path) -> RulesFile:
    """Read and validate the rules file at ``path`` (``settings.alert_rules``)."""
    source = f"alert rules {path}"
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInputError(f"{source}: no such file", {"field": "alert_rules"}) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(
            f"{source}: cannot be read ({exc})", {"field": "alert_rules"}
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInputError(
            f"{source}: not valid TOML: {exc}", {"field": "alert_rules"}
        ) from None
    return parse_rules(document, source)
