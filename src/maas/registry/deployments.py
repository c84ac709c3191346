"""How each model is deployed: its traffic policy and whether servers serve it at all.

The documents are validated by their owner (``maas.control``) before they reach here; the
registry keeps them, checks what they name exists, audits every change, and answers the
one read a server makes to route requests (``snapshot``).
"""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from maas.errors import ConflictError, InvalidInputError
from maas.registry import repository as repo
from maas.registry.entities import DeploymentState, ServingSnapshot, TrafficPolicy
from maas.registry.names import check_json_object, parse_version_ref
from maas.registry.tables import (
    AliasRow,
    ModelDeploymentRow,
    ModelRow,
    ModelVersionRow,
    TrafficPolicyRow,
    VersionArchiveRow,
    VersionConfigRow,
    utc_now,
)
from maas.registry.transactions import transaction

__all__ = ["DEPLOYMENT_STATES", "DeploymentBook"]

DEPLOYMENT_STATES: Final = ("loaded", "unloaded")


def _to_policy(row: TrafficPolicyRow, model_name: str) -> TrafficPolicy:
    return TrafficPolicy(model_name, dict(row.policy), row.actor, row.updated_at)


class DeploymentBook:
    """Traffic policies and deployment states, per model.

    >>> book = registry.deployments
    >>> book.set_policy("digits", policy, refs=["production", "3"])  # doctest: +SKIP
    """

    def __init__(self, reads: sessionmaker[Session], writes: sessionmaker[Session]) -> None:
        self._reads = reads
        self._writes = writes

    # -- traffic policies ---------------------------------------------------------------

    def set_policy(
        self, name: str, policy: dict[str, Any], *, refs: list[str], actor: str = "cli"
    ) -> TrafficPolicy:
        """Store ``policy`` (already validated), which names the versions and aliases in
        ``refs``; each must exist and be in service. Refs are stored canonical ("03" as
        "3"), the form the archive and alias-delete guards compare against."""
        policy = check_json_object("policy", policy)
        with transaction(self._writes) as session:
            model = repo.require_model(session, name, lock=True)
            refs = [_require_ref(session, model, ref) for ref in refs]
            row = repo.find_traffic_policy(session, model)
            now = utc_now()
            if row is None:
                row = TrafficPolicyRow(
                    model_id=model.id, policy=policy, refs=list(refs), actor=actor, updated_at=now
                )
                session.add(row)
            else:
                row.policy, row.refs, row.actor, row.updated_at = policy, list(refs), actor, now
            repo.add_event(session, "traffic.set", name, actor=actor, details={"policy": policy})
            session.flush()
            return _to_policy(row, name)

    def clear_policy(self, name: str, *, actor: str = "cli") -> bool:
        """Remove the model's policy (all traffic to its default again); False if none."""
        with transaction(self._writes) as session:
            model = repo.require_model(session, name, lock=True)
            row = repo.find_traffic_policy(session, model)
            if row is None:
                return False
            session.delete(row)
            repo.add_event(session, "traffic.clear", name, actor=actor)
            return True

    def get_policy(self, name: str) -> TrafficPolicy | None:
        with transaction(self._reads) as session:
            model = repo.require_model(session, name)
            row = repo.find_traffic_policy(session, model)
            return None if row is None else _to_policy(row, name)

    # -- deployment state ---------------------------------------------------------------

    def set_state(self, name: str, state: str, *, actor: str = "cli") -> DeploymentState:
        """Ask every server to serve the model (``loaded``) or to stop (``unloaded``)."""
        if state not in DEPLOYMENT_STATES:
            raise ValueError(f"unknown deployment state {state!r}")
        with transaction(self._writes) as session:
            model = repo.require_model(session, name, lock=True)
            row = _find_state(session, model)
            now = utc_now()
            if row is None:
                row = ModelDeploymentRow(
                    model_id=model.id, state=state, actor=actor, updated_at=now
                )
                session.add(row)
            else:
                row.state, row.actor, row.updated_at = state, actor, now
            action = "deployment.load" if state == "loaded" else "deployment.unload"
            repo.add_event(session, action, name, actor=actor)
            session.flush()
            return DeploymentState(name, row.state, row.actor, row.updated_at)

    def get_state(self, name: str) -> DeploymentState:
        with transaction(self._reads) as session:
            model = repo.require_model(session, name)
            row = _find_state(session, model)
            if row is None:
                return DeploymentState(name, "loaded", "", None)
            return DeploymentState(name, row.state, row.actor, row.updated_at)

    # -- what a server reads ------------------------------------------------------------

    def snapshot(self) -> dict[str, ServingSnapshot]:
        """Every model with a version in service: numbers, aliases, policy, state."""
        with transaction(self._reads) as session:
            names = dict(session.execute(select(ModelRow.id, ModelRow.name)).all())
            archived = select(VersionArchiveRow.version_id)
            numbers: dict[int, list[int]] = {}
            for model_id, number in session.execute(
                select(ModelVersionRow.model_id, ModelVersionRow.version)
                .where(ModelVersionRow.id.not_in(archived))
                .order_by(ModelVersionRow.model_id, ModelVersionRow.version)
            ):
                numbers.setdefault(model_id, []).append(number)
            aliases: dict[int, dict[str, int]] = {}
            for model_id, alias, number in session.execute(
                select(AliasRow.model_id, AliasRow.name, ModelVersionRow.version).join(
                    ModelVersionRow, ModelVersionRow.id == AliasRow.version_id
                )
            ):
                aliases.setdefault(model_id, {})[alias] = number
            policies = {
                row.model_id: dict(row.policy) for row in session.scalars(select(TrafficPolicyRow))
            }
            unloaded = set(
                session.scalars(
                    select(ModelDeploymentRow.model_id).where(
                        ModelDeploymentRow.state == "unloaded"
                    )
                )
            )
            revisions: dict[int, dict[int, int]] = {}
            for model_id, number, revision in session.execute(
                select(
                    ModelVersionRow.model_id,
                    ModelVersionRow.version,
                    func.max(VersionConfigRow.revision),
                )
                .join(VersionConfigRow, VersionConfigRow.version_id == ModelVersionRow.id)
                .group_by(ModelVersionRow.model_id, ModelVersionRow.version)
            ):
                revisions.setdefault(model_id, {})[number] = revision
        return {
            names[model_id]: ServingSnapshot(
                model_name=names[model_id],
                versions=tuple(found),
                aliases=aliases.get(model_id, {}),
                policy=policies.get(model_id),
                unloaded=model_id in unloaded,
                config_revisions=revisions.get(model_id, {}),
            )
            for model_id, found in numbers.items()
        }


def _find_state(session: Session, model: ModelRow) -> ModelDeploymentRow | None:
    return session.scalars(
        select(ModelDeploymentRow).where(ModelDeploymentRow.model_id == model.id)
    ).one_or_none()


def _require_ref(session: Session, model: ModelRow, ref: str) -> str:
    """A version number or alias a policy names must exist and be in service; returns it
    canonical."""
    parsed = parse_version_ref(ref)
    if parsed is None:
        raise InvalidInputError("refs: name a version number or an alias", {"version": ref})
    if isinstance(parsed, int):
        row = repo.require_version(session, model, parsed)
        if row.archive is not None:
            raise ConflictError(
                f"version {parsed} of {model.name!r} is archived and cannot serve",
                {"model": model.name, "version": parsed},
            )
    elif repo.find_alias(session, model, parsed) is None:
        raise ConflictError(
            f"alias {parsed!r} of {model.name!r} does not exist",
            {"model": model.name, "alias": parsed},
        )
    return str(parsed)
