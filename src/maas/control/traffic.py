"""Traffic policies: how a model's default route spreads requests over its versions.

A policy, per model, stored in the registry and applied by every server to REST and gRPC
alike (requests that name a version or alias bypass it)::

    {"split": [{"target": "production", "weight": 90}, {"target": 4, "weight": 10}],
     "sticky_header": "x-user-id",                   # optional: same value, same version
     "shadow": {"target": "staging", "fraction": 1}}  # optional: a copy nobody sees

``split`` weights are relative; targets are version numbers or aliases (an alias keeps
following its moves). ``sticky_header`` sends every request with the same value of that
header (gRPC: metadata key) to the same version. ``shadow`` also sends that fraction of
the default route's requests to another version whose answers the callers never see;
the server compares them with the primary's. Every target must load and answer its
warm-up request before the policy is stored.
"""

from __future__ import annotations

from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from maas.control.warmup import Warmup
from maas.errors import ConflictError, InvalidInputError
from maas.registry.entities import TrafficPolicy
from maas.registry.names import parse_version_ref
from maas.registry.service import Registry

__all__ = ["ShadowTarget", "SplitTarget", "Traffic", "TrafficPolicySpec", "parse_traffic_policy"]

_STRICT = ConfigDict(extra="forbid", frozen=True)


def _target(value: Any) -> int | str:
    """A version number or alias name, canonical: numbers as ints."""
    if not isinstance(value, int | str) or isinstance(value, bool):
        raise ValueError("a version number or an alias name")
    try:
        parsed = parse_version_ref(value)
    except InvalidInputError as exc:
        raise ValueError(exc.message) from None
    if parsed is None:
        raise ValueError("a version number or an alias name")
    return parsed


class SplitTarget(BaseModel):
    model_config = _STRICT

    target: int | str = Field(description="A version number or an alias.")
    weight: float = Field(gt=0, le=1_000_000, description="Relative share of the traffic.")

    _canonical = field_validator("target", mode="before")(_target)


class ShadowTarget(BaseModel):
    model_config = _STRICT

    target: int | str = Field(description="A version number or an alias.")
    fraction: float = Field(1.0, gt=0, le=1, description="Share of requests copied to it.")

    _canonical = field_validator("target", mode="before")(_target)


class TrafficPolicySpec(BaseModel):
    model_config = _STRICT

    split: list[SplitTarget] = Field(default_factory=list, max_length=16)
    sticky_header: str | None = Field(
        None, pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$", description="Header to stick on."
    )
    shadow: ShadowTarget | None = None

    # Rules between fields are checked on the later field (the earlier ones are in
    # ``info.data`` once valid), so that an error names the field to change.

    @field_validator("split")
    @classmethod
    def _once_each(cls, value: list[SplitTarget]) -> list[SplitTarget]:
        targets = [str(s.target) for s in value]
        if len(set(targets)) != len(targets):
            raise ValueError("each target may appear once")
        return value

    @field_validator("sticky_header")
    @classmethod
    def _lower(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and "split" in info.data and len(info.data["split"]) < 2:
            raise ValueError("needs a split over two or more targets")
        return None if value is None else value.lower()  # headers compare case-insensitively

    @field_validator("shadow")
    @classmethod
    def _not_live(cls, value: ShadowTarget | None, info: ValidationInfo) -> ShadowTarget | None:
        live = {str(s.target) for s in info.data.get("split", ())}
        if value is not None and str(value.target) in live:
            raise ValueError("the shadow target must not also take live traffic")
        return value

    @model_validator(mode="after")
    def _coherent(self) -> TrafficPolicySpec:
        if not self.split and self.shadow is None:
            raise ValueError("give a split, a shadow, or both")
        return self

    def refs(self) -> list[str]:
        """Every version number and alias the policy names."""
        found = [str(s.target) for s in self.split]
        if self.shadow is not None:
            found.append(str(self.shadow.target))
        return found


def parse_traffic_policy(document: Any) -> TrafficPolicySpec:
    """Validate a policy document; errors name the field (``split.1.weight: ...``)."""
    try:
        return TrafficPolicySpec.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'policy'}: {e['msg']}" for e in exc.errors()
        )
        first = exc.errors()[0]
        raise InvalidInputError(
            f"invalid traffic policy: {problems}",
            {"field": ".".join(str(p) for p in first["loc"]) or "policy"},
        ) from None


class Traffic:
    """>>> control.traffic.set("digits", {"split": [...]}, actor="cli:ann")  # doctest: +SKIP"""

    def __init__(self, registry: Registry, warmup: Warmup) -> None:
        self._registry = registry
        self._warmup = warmup

    def get(self, name: str) -> TrafficPolicy | None:
        return self._registry.deployments.get_policy(name)

    def set(self, name: str, document: Any, *, actor: str) -> TrafficPolicy:
        """Validate the policy, warm every version it names, then store it (audited)."""
        spec = parse_traffic_policy(document)
        for ref in spec.refs():
            version = self._registry.resolve(name, ref)
            if version.archived is not None:
                raise ConflictError(
                    f"version {version.version} of {name!r} is archived and cannot serve",
                    {"model": name, "version": version.version},
                )
            self._warmup.prepare(version)
        return self._registry.deployments.set_policy(
            name, spec.model_dump(mode="json"), refs=spec.refs(), actor=actor
        )

    def clear(self, name: str, *, actor: str) -> bool:
        """Send all of the default route to the default version again; False if no policy."""
        return self._registry.deployments.clear_policy(name, actor=actor)
