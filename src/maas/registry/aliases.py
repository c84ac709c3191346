"""Aliases (production, staging, any name) and their history, which rollback walks back.

Every move is one ``alias_moves`` row and one audit event, written in the transaction
that moves the alias. The history is read as a stack: a ``set`` pushes its version, a
``rollback`` pops down to the version it returned to (one entry, or more where it passed
over versions archived since), a ``delete`` empties it; so after promoting 1, 2 and 3, a
rollback returns to 2 and a second one to 1 (not to 3).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from maas.errors import ConflictError, GateFailedError, InvalidInputError, NotFoundError
from maas.registry import repository as repo
from maas.registry.entities import Alias, AliasMove
from maas.registry.gate import failed_rules
from maas.registry.names import PRODUCTION_ALIAS, check_alias_name
from maas.registry.tables import AliasMoveRow, AliasRow, ModelGateRow, ModelRow, utc_now
from maas.registry.transactions import transaction

__all__ = ["MOVE_KINDS", "AliasBook"]

MOVE_KINDS: Final = ("set", "rollback", "delete")
MoveKind = Literal["set", "rollback"]


def _to_move(row: AliasMoveRow, model_name: str) -> AliasMove:
    return AliasMove(
        id=row.id,
        model_name=model_name,
        alias=row.alias,
        kind=row.kind,
        version=row.version,
        previous=row.previous,
        actor=row.actor,
        at=row.at,
        forced=row.forced,
        reason=row.reason,
    )


def _moves(session: Session, model: ModelRow, alias: str) -> list[AliasMoveRow]:
    return list(
        session.scalars(
            select(AliasMoveRow)
            .where(AliasMoveRow.model_id == model.id, AliasMoveRow.alias == alias)
            .order_by(AliasMoveRow.id)
        )
    )


def history_stack(moves: Sequence[AliasMove | AliasMoveRow]) -> list[int]:
    """The versions an alias went through that a rollback can return to, oldest first."""
    stack: list[int] = []
    for move in moves:
        if move.kind == "set" and move.version is not None:
            stack.append(move.version)
        elif move.kind == "rollback" and stack:
            stack.pop()
            # A rollback that passed over versions archived since pops them too, so that
            # the stack's top is again where the alias points.
            if move.version in stack:
                while stack[-1] != move.version:
                    stack.pop()
        elif move.kind == "delete":
            stack.clear()
    return stack


class AliasBook:
    """The registry's aliases: set (with the validation gate on production), delete,
    list, history and rollback targets.

    >>> registry.aliases.set("digits", "production", 2)  # doctest: +SKIP
    >>> registry.aliases.rollback_target("digits", "production")  # doctest: +SKIP
    1
    """

    def __init__(self, reads: sessionmaker[Session], writes: sessionmaker[Session]) -> None:
        self._reads = reads
        self._writes = writes

    def set(
        self,
        name: str,
        alias: str,
        version: int,
        *,
        actor: str = "cli",
        kind: MoveKind = "set",
        force: bool = False,
        reason: str = "",
        expected_version: int | None = None,
    ) -> Alias:
        """Point ``alias`` at ``version`` (creating or moving it); history and audit record it.

        Moving ``production`` by a ``set`` to a version that fails the model's gate raises
        ``GateFailedError`` listing the failed rules, unless ``force`` (which needs a
        ``reason``; the audit records both and the rules). A ``rollback`` returns to a
        version that was production before and is not gated again. ``expected_version``
        (for rollback) refuses the move if the alias no longer points there.
        """
        check_alias_name(alias)
        if force and not reason.strip():
            raise InvalidInputError(
                "reason: forcing past the validation gate needs a reason", {"field": "reason"}
            )
        with transaction(self._writes) as session:
            model = repo.require_model(session, name, lock=True)
            target = repo.require_version(session, model, int(version))
            if target.archive is not None:
                raise ConflictError(
                    f"version {target.version} of {name!r} is archived and cannot serve",
                    {"model": name, "version": target.version},
                )
            row = repo.find_alias(session, model, alias)
            previous = None if row is None else row.target.version
            if expected_version is not None and previous != expected_version:
                raise ConflictError(
                    f"alias {alias!r} of {name!r} moved meanwhile (now {previous}); try again",
                    {"model": name, "alias": alias, "version": previous},
                )
            failed: list[str] = []
            gate = session.scalars(
                select(ModelGateRow).where(ModelGateRow.model_id == model.id)
            ).one_or_none()
            if kind == "set" and alias == PRODUCTION_ALIAS and gate is not None:
                current = None if row is None else row.target.metrics
                failed = failed_rules(gate.rules, target.metrics, current)
                if failed and not force:
                    raise GateFailedError(
                        f"version {target.version} of {name!r} fails its validation gate: "
                        + "; ".join(failed)
                        + " (use force with a reason to promote anyway)",
                        {"model": name, "version": target.version, "failed": failed},
                    )
            now = utc_now()
            if row is None:
                row = AliasRow(model=model, name=alias, target=target, updated_at=now)
                session.add(row)
            else:
                row.target = target
                row.updated_at = now
            session.add(
                AliasMoveRow(
                    model_id=model.id,
                    alias=alias,
                    kind=kind,
                    version=target.version,
                    previous=previous,
                    actor=actor,
                    at=now,
                    forced=bool(failed),
                    reason=reason,
                )
            )
            details: dict[str, Any] = {"alias": alias, "from": previous, "to": target.version}
            if reason:
                details["reason"] = reason
            if failed:
                details |= {"forced": True, "failed": failed}
            repo.add_event(
                session,
                "alias.rollback" if kind == "rollback" else "alias.set",
                name,
                actor=actor,
                version=target.version,
                details=details,
            )
            session.flush()
            return repo.to_alias(row)

    def delete(self, name: str, alias: str, *, actor: str = "cli") -> None:
        """Remove ``alias``; NotFoundError if the model or the alias does not exist, and
        ConflictError while the model's traffic policy names it."""
        with transaction(self._writes) as session:
            model = repo.require_model(session, name, lock=True)
            row = repo.find_alias(session, model, alias)
            if row is None:
                raise NotFoundError(
                    f"alias {alias!r} of model {name!r} not found", {"model": name, "alias": alias}
                )
            policy = repo.find_traffic_policy(session, model)
            if policy is not None and alias in policy.refs:
                raise ConflictError(
                    f"alias {alias!r} of {name!r} is named by the model's traffic policy; "
                    "change or clear the policy first",
                    {"model": name, "alias": alias},
                )
            version = row.target.version
            session.delete(row)
            session.add(
                AliasMoveRow(
                    model_id=model.id,
                    alias=alias,
                    kind="delete",
                    version=None,
                    previous=version,
                    actor=actor,
                    at=utc_now(),
                    forced=False,
                    reason="",
                )
            )
            repo.add_event(
                session,
                "alias.delete",
                name,
                actor=actor,
                version=version,
                details={"alias": alias, "from": version},
            )

    def get(self, name: str, alias: str) -> Alias:
        with transaction(self._reads) as session:
            model = repo.require_model(session, name)
            row = repo.find_alias(session, model, alias)
            if row is None:
                raise NotFoundError(
                    f"alias {alias!r} of model {name!r} not found", {"model": name, "alias": alias}
                )
            return repo.to_alias(row)

    def list_for(self, name: str) -> list[Alias]:
        """The model's aliases by name."""
        with transaction(self._reads) as session:
            model = repo.require_model(session, name)
            rows = session.scalars(
                select(AliasRow).where(AliasRow.model_id == model.id).order_by(AliasRow.name)
            )
            return [repo.to_alias(row) for row in rows]

    def history(self, name: str, alias: str) -> list[AliasMove]:
        """Every move of ``alias``, oldest first (empty for an alias never set)."""
        check_alias_name(alias)
        with transaction(self._reads) as session:
            model = repo.require_model(session, name)
            return [_to_move(row, name) for row in _moves(session, model, alias)]

    def rollback_target(self, name: str, alias: str) -> tuple[int, int]:
        """(current version, the version a rollback returns to); ConflictError naming why
        when there is none (the alias was never moved, or only once)."""
        check_alias_name(alias)
        with transaction(self._reads) as session:
            model = repo.require_model(session, name)
            row = repo.find_alias(session, model, alias)
            stack = history_stack(_moves(session, model, alias))
            archived = repo.archived_numbers(session, model)
        current = None if row is None else row.target.version
        # Versions archived since cannot serve: a rollback passes over them.
        earlier = [v for v in stack[:-1] if v not in archived and v != current]
        if current is None or not stack or stack[-1] != current or not earlier:
            raise ConflictError(
                f"alias {alias!r} of {name!r} has no earlier version to roll back to",
                {"model": name, "alias": alias},
            )
        return current, earlier[-1]
