"""Aliases and promotion: moving what a name such as ``production`` serves, safely.

The rules, in the order they apply to every move (``move`` is also ``promote``):

1. the target exists and is in service (not archived);
2. ``production`` only moves to a version that passes the model's validation gate,
   unless forced with a reason (the audit log records both);
3. the target has loaded and answered its warm-up request (``Warmup.prepare``) before
   the alias moves, so traffic never reaches a version that cannot answer; a version
   that fails is refused with the reason and the old one keeps serving.

``rollback`` returns an alias to the version it pointed at before (the alias's history,
walked back one step per rollback); it is not gated again (that version was there
before) but it is warmed like any move.
"""

from __future__ import annotations

from maas.control.warmup import Warmup
from maas.errors import ConflictError, GateFailedError, InvalidInputError, NotFoundError
from maas.registry.entities import Alias, AliasMove, ModelVersion
from maas.registry.gate import failed_rules
from maas.registry.names import PRODUCTION_ALIAS, check_alias_name, parse_version_ref
from maas.registry.service import Registry

__all__ = ["Aliases"]


class Aliases:
    """>>> control.aliases.move("digits", "production", "3", actor="cli:ann")  # doctest: +SKIP"""

    def __init__(self, registry: Registry, warmup: Warmup) -> None:
        self._registry = registry
        self._warmup = warmup

    def list_for(self, name: str) -> list[Alias]:
        return self._registry.aliases.list_for(name)

    def history(self, name: str, alias: str) -> list[AliasMove]:
        """Every move of the alias, oldest first."""
        self._registry.get_model(name)  # NotFoundError for an unknown model
        return self._registry.aliases.history(name, alias)

    def move(
        self,
        name: str,
        alias: str,
        ref: str | int,
        *,
        actor: str,
        force: bool = False,
        reason: str = "",
    ) -> Alias:
        """Point ``alias`` at the version ``ref`` names (a number or another alias)."""
        check_alias_name(alias)
        if parse_version_ref(ref) is None:
            raise InvalidInputError("version: name a version number or an alias")
        if force and not reason.strip():
            raise InvalidInputError(
                "reason: forcing past the validation gate needs a reason", {"field": "reason"}
            )
        target = self._registry.resolve(name, ref)
        self._refuse_archived(target)
        if alias == PRODUCTION_ALIAS and not force:
            self._check_gate(target)  # before the (possibly long) warm-up; the move re-checks
        self._warmup.prepare(target)
        return self._registry.aliases.set(
            name, alias, target.version, actor=actor, force=force, reason=reason
        )

    def rollback(self, name: str, alias: str = PRODUCTION_ALIAS, *, actor: str) -> Alias:
        """Move ``alias`` back to the version it pointed at before the current one."""
        current, previous = self._registry.aliases.rollback_target(name, alias)
        target = self._registry.get_version(name, previous)
        self._warmup.prepare(target)
        return self._registry.aliases.set(
            name,
            alias,
            previous,
            actor=actor,
            kind="rollback",
            reason=f"rolled back from version {current}",
            expected_version=current,
        )

    def delete(self, name: str, alias: str, *, actor: str) -> None:
        """Remove the alias (refused while the model's traffic policy names it)."""
        self._registry.aliases.delete(name, alias, actor=actor)

    def _check_gate(self, target: ModelVersion) -> None:
        rules = self._registry.get_gate(target.model_name)
        if not rules:
            return
        try:
            current = self._registry.aliases.get(target.model_name, PRODUCTION_ALIAS)
            production = self._registry.get_version(target.model_name, current.version).metrics
        except NotFoundError:  # no production yet: rules against it pass
            production = None
        failed = failed_rules(rules, target.metrics, production)
        if failed:
            raise GateFailedError(
                f"version {target.version} of {target.model_name!r} fails its validation "
                "gate: " + "; ".join(failed) + " (use force with a reason to promote anyway)",
                {"model": target.model_name, "version": target.version, "failed": failed},
            )

    @staticmethod
    def _refuse_archived(target: ModelVersion) -> None:
        if target.archived is not None:
            raise ConflictError(
                f"version {target.version} of {target.model_name!r} is archived and cannot serve",
                {"model": target.model_name, "version": target.version},
            )
