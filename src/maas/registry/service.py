"""``Registry``: the registry's public API and its rules, used by the control plane,
the server and the trainer.

Rules kept here: names are validated before any write; versions are numbered 1, 2, 3...
per model inside the inserting transaction; every change writes its audit event in the
same transaction; a version and its artifacts appear together or not at all; an archived
version keeps its row (history) and gives up its artifacts. Aliases live in
``registry.aliases`` (``AliasBook``), traffic policies and deployment states in
``registry.deployments`` (``DeploymentBook``), jobs in ``registry.jobs`` (``JobBook``),
versions' input references for drift in ``registry.references`` (``ReferenceBook``).
Documents such as configs and policies are validated by their owner in ``maas.control``.

Faults: an upload retried after its reply was lost gets the version the first copy made
(``registry.idempotency``); what killed uploads leave behind (temporary files in
``uploads_dir`` and the store, orphaned artifacts) goes in ``collect_garbage``
(``registry.collection``); a database that is locked or gone is ``UnavailableError``
within the engine's busy timeout (``registry.engine``: short for the server, long for job
workers and the CLI, which ``from_settings(server=...)`` chooses).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from maas.config import Settings
from maas.errors import ConflictError, InvalidInputError, NotFoundError
from maas.protocol.signature import Signature
from maas.registry import collection, idempotency, migrate
from maas.registry import repository as repo
from maas.registry.aliases import AliasBook
from maas.registry.collection import Collected
from maas.registry.deployments import DeploymentBook
from maas.registry.engine import TOOL_BUSY_TIMEOUT_S, create_registry_engine, writing
from maas.registry.entities import AuditEvent, ConfigRevision, Model, ModelVersion
from maas.registry.gate import check_rules
from maas.registry.idempotency import UploadRequest
from maas.registry.jobs import JobBook
from maas.registry.keys import KeyBook
from maas.registry.names import (
    PRODUCTION_ALIAS,
    check_artifact_format,
    check_json_object,
    check_model_name,
    parse_version_ref,
)
from maas.registry.references import ReferenceBook, add_in
from maas.registry.tables import (
    AliasRow,
    AuditEventRow,
    ModelGateRow,
    ModelRow,
    ModelVersionRow,
    RegistryInfoRow,
    VersionArchiveRow,
    VersionArtifactRow,
    utc_now,
)
from maas.registry.transactions import transaction
from maas.store import ArtifactStore, LocalStore, StoredArtifact

__all__ = ["Registry"]

_REGISTER_ATTEMPTS = 5


class Registry:
    """Models, immutable numbered versions, aliases and an audit log over one database.

    >>> registry = Registry.from_settings(Settings(home=Path("/tmp/m")))  # doctest: +SKIP
    >>> v = registry.register_version("iris", Path("iris.onnx"), artifact_format="onnx",
    ...                               signature=signature)  # doctest: +SKIP
    >>> registry.aliases.set("iris", "production", v.version)  # doctest: +SKIP
    >>> registry.resolve("iris").version == v.version  # doctest: +SKIP
    True
    """

    def __init__(
        self,
        database_url: str,
        store: ArtifactStore,
        *,
        busy_timeout_s: float = TOOL_BUSY_TIMEOUT_S,
        uploads_dir: Path | None = None,
    ) -> None:
        """``busy_timeout_s``: how long a statement waits for another connection's lock
        before ``UnavailableError``; ``uploads_dir``: where uploads are written while
        they are checked (None: the system's temporary folder, which is not collected)."""
        self._engine = create_registry_engine(database_url, busy_timeout_s=busy_timeout_s)
        self._store = store
        self._uploads_dir = uploads_dir
        self._reads = sessionmaker(self._engine, expire_on_commit=False)
        self._writes = sessionmaker(writing(self._engine), expire_on_commit=False)
        self.jobs = JobBook(self._reads, self._writes)
        self.aliases = AliasBook(self._reads, self._writes)
        self.deployments = DeploymentBook(self._reads, self._writes)
        self.keys = KeyBook(self._reads, self._writes)
        self.references = ReferenceBook(self._reads, self._writes)

    @classmethod
    def from_settings(
        cls, settings: Settings, *, upgrade: bool = True, server: bool = False
    ) -> Registry:
        """The registry that ``settings`` names; migrated to the newest schema unless told not.

        ``server``: the server's own registry, whose writers wait at most
        ``settings.db_busy_timeout_s`` for a lock (then 503); everyone else (job workers,
        the CLI) waits ``engine.TOOL_BUSY_TIMEOUT_S`` at least. Uploads are written to
        ``<home>/tmp/uploads`` while they are checked.
        """
        busy_timeout_s = settings.db_busy_timeout_s
        if not server:
            busy_timeout_s = max(busy_timeout_s, TOOL_BUSY_TIMEOUT_S)
        registry = cls(
            settings.resolved_database_url,
            LocalStore(settings.resolved_artifacts_dir),
            busy_timeout_s=busy_timeout_s,
            uploads_dir=(settings.home / "tmp" / "uploads").absolute(),
        )
        if upgrade:
            try:
                registry.upgrade()
            except BaseException:
                registry.close()
                raise
        return registry

    def upgrade(self) -> None:
        """Migrate the database to the newest schema; harmless when it already is."""
        migrate.upgrade(self._engine)

    def close(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()

    @property
    def store(self) -> ArtifactStore:
        return self._store

    @property
    def uploads_dir(self) -> Path | None:
        """Where uploads are written while they are checked (None: the system's temp)."""
        return self._uploads_dir

    def collect_garbage(
        self,
        *,
        temp_max_age_s: float = collection.TEMP_MAX_AGE_S,
        orphan_grace_s: float = collection.ORPHAN_GRACE_S,
    ) -> Collected:
        """Remove what killed uploads left: temporary files whose writer is gone (or
        older than ``temp_max_age_s``), artifacts no version in service uses (older than
        ``orphan_grace_s``), expired upload requests. Safe beside uploads in flight."""
        return collection.collect(
            self._reads,
            self._writes,
            self._store,
            self._uploads_dir,
            temp_max_age_s=temp_max_age_s,
            orphan_grace_s=orphan_grace_s,
        )

    def find_upload(self, model_name: str, request: UploadRequest) -> ModelVersion | None:
        """The version an earlier copy of ``request`` made, when this one is its retry
        (``registry.idempotency``); ConflictError when its key was used for other bytes."""
        with transaction(self._reads) as session:
            model = repo.find_model(session, model_name)
            if model is None:
                return None
            found = idempotency.find_replay(session, model, request)
            return None if found is None else repo.to_version(found)

    def registry_id(self) -> str:
        """The identity made with this database: every process using it reports the same."""
        with transaction(self._reads) as session:
            row = session.get(RegistryInfoRow, 1)
            if row is None:  # pragma: no cover - made by migration 0006
                raise NotFoundError("the registry has no identity: run `maas db upgrade`")
            return row.registry_id

    def register_version(
        self,
        model_name: str,
        artifact: Path,
        *,
        artifact_format: str,
        signature: Signature,
        metrics: dict[str, Any] | None = None,
        lineage: dict[str, Any] | None = None,
        actor: str = "cli",
        description: str = "",
        config: dict[str, Any] | None = None,
        extra_artifacts: dict[str, Path] | None = None,
        request: UploadRequest | None = None,
        input_reference: dict[str, Any] | None = None,
        reference_details: dict[str, Any] | None = None,
    ) -> ModelVersion:
        """Store ``artifact`` and record it as the model's next version (the model is created
        on its first version, with ``description``; later descriptions are ignored).

        ``config``, if given, becomes the version's first config revision in the same
        transaction. ``extra_artifacts`` (format -> file, e.g. ``{"torchscript": path}``)
        are stored and recorded with the version, in the same transaction; the primary
        artifact stays the one served. ``request`` (an upload's): when an earlier copy of
        it made a version (``find_upload``, checked again under the write lock here), that
        version is returned and nothing is added. ``input_reference`` (validated by
        its owner, ``maas.control.references``; training builds one) becomes the
        version's input reference in the same transaction (``registry.references``),
        ``reference_details`` going into its audit event."""
        check_model_name(model_name)
        check_artifact_format(artifact_format)
        extras = dict(extra_artifacts or {})
        for extra_format in extras:
            check_artifact_format(extra_format)
            if extra_format == artifact_format:
                raise InvalidInputError(
                    f"extra artifact format {extra_format!r} is the version's primary format",
                    {"format": extra_format},
                )
        metrics = check_json_object("metrics", metrics)
        lineage = check_json_object("lineage", lineage)
        if config is not None:
            config = check_json_object("config", config)
        if input_reference is not None:
            input_reference = check_json_object("input_reference", input_reference)
        signature_json = signature.to_dict()
        stored_extras: dict[str, StoredArtifact] = {}
        replayed = False
        stored = self._put(artifact)
        try:
            for extra_format, path in extras.items():
                stored_extras[extra_format] = self._put(path)
            for attempt in range(_REGISTER_ATTEMPTS):
                try:
                    with transaction(self._writes) as session:
                        earlier = self._replay_in(session, model_name, request)
                        if earlier is not None:
                            registered, replayed = repo.to_version(earlier), True
                            break
                        row = ModelVersionRow(
                            artifact_sha256=stored.sha256,
                            artifact_format=artifact_format,
                            size_bytes=stored.size_bytes,
                            signature=signature_json,
                            metrics=metrics,
                            lineage=lineage,
                            created_at=utc_now(),
                        )
                        extra_rows = [
                            VersionArtifactRow(
                                format=extra_format, sha256=item.sha256, size_bytes=item.size_bytes
                            )
                            for extra_format, item in stored_extras.items()
                        ]
                        repo.add_version(session, model_name, row, actor, description, extra_rows)
                        if config is not None:
                            repo.add_config(session, row, config, actor)
                        if input_reference is not None:
                            add_in(
                                session,
                                row,
                                input_reference,
                                actor=actor,
                                details=reference_details,
                            )
                        if request is not None:
                            idempotency.record(session, row, request)
                        registered = repo.to_version(row)
                    break
                except ConflictError as error:
                    # Another writer created the model or took the number first (PostgreSQL).
                    reused_key = error.details.get("field") == idempotency.KEY_HEADER
                    if reused_key or attempt == _REGISTER_ATTEMPTS - 1:
                        raise
                    time.sleep(0.01 * (attempt + 1))
        except BaseException:
            self._discard_all(stored, stored_extras)
            raise
        if replayed:  # an earlier copy's version: ours made nothing
            self._discard_all(stored, stored_extras)
            return registered
        # An archive collecting the same bytes may have deleted them between our put and
        # our commit; now that the version is recorded they are in use: put them back.
        sources = {stored.sha256: artifact} | {
            stored_extras[f].sha256: p for f, p in extras.items()
        }
        for sha256, source in sources.items():
            if not self._store.exists(sha256):
                self._put(source)
        return registered

    def _replay_in(
        self, session: Session, model_name: str, request: UploadRequest | None
    ) -> ModelVersionRow | None:
        """Under the model's row lock: the version an earlier copy of ``request`` made.

        On PostgreSQL the registrations of one model also take a transaction-scoped
        advisory lock first: a model row cannot be locked before it exists, and copies
        racing to create it were seen (under load) to make a second version."""
        if request is None:
            return None
        if session.get_bind().dialect.name == "postgresql":
            session.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": model_name}
            )
        model = repo.find_model(session, model_name, lock=True)
        return None if model is None else idempotency.find_replay(session, model, request)

    def _discard_all(self, stored: StoredArtifact, extras: dict[str, StoredArtifact]) -> None:
        written = [stored.sha256, *(a.sha256 for a in extras.values())]
        for sha256 in dict.fromkeys(written):
            self._discard_unreferenced(sha256)

    def _put(self, artifact: Path) -> StoredArtifact:
        try:
            return self._store.put_file(Path(artifact))
        except FileNotFoundError:
            raise NotFoundError(f"artifact file {str(artifact)!r} not found") from None

    def list_models(self) -> list[Model]:
        with transaction(self._reads) as session:
            rows = session.scalars(select(ModelRow).order_by(ModelRow.name))
            return [repo.to_model(row) for row in rows]

    def get_model(self, name: str) -> Model:
        with transaction(self._reads) as session:
            return repo.to_model(repo.require_model(session, name))

    def list_versions(self, name: str, *, include_archived: bool = False) -> list[ModelVersion]:
        """The model's versions in service (with ``include_archived``, all), oldest first."""
        with transaction(self._reads) as session:
            model = repo.require_model(session, name)
            rows = session.scalars(
                select(ModelVersionRow)
                .where(ModelVersionRow.model_id == model.id)
                .order_by(ModelVersionRow.version)
            )
            return [repo.to_version(row) for row in rows if include_archived or row.archive is None]

    def get_version(self, name: str, version: int) -> ModelVersion:
        with transaction(self._reads) as session:
            model = repo.require_model(session, name)
            return repo.to_version(repo.require_version(session, model, int(version)))

    def resolve(self, name: str, ref: str | int | None = None) -> ModelVersion:
        """The version a reference means (``names.parse_version_ref``).

        ``None``: the ``production`` alias if set, else the newest version in service; a
        number: that version (archived ones too: their record stays); any other string:
        that alias.
        """
        parsed = parse_version_ref(ref)
        with transaction(self._reads) as session:
            model = repo.require_model(session, name)
            if isinstance(parsed, int):
                return repo.to_version(repo.require_version(session, model, parsed))
            if parsed is None:
                alias = repo.find_alias(session, model, PRODUCTION_ALIAS)
                if alias is not None:
                    return repo.to_version(alias.target)
                newest = repo.newest_version(session, model)
                if newest is None:
                    raise NotFoundError(f"model {name!r} has no versions", {"model": name})
                return repo.to_version(newest)
            alias = repo.find_alias(session, model, parsed)
            if alias is None:
                raise NotFoundError(
                    f"alias {parsed!r} of model {name!r} not found",
                    {"model": name, "alias": parsed},
                )
            return repo.to_version(alias.target)

    def archive_version(
        self, name: str, version: int, *, actor: str = "cli", reason: str = ""
    ) -> ModelVersion:
        """Take a version out of service: it is no longer served or listed by default, and
        its artifacts are deleted once no version in service uses them; its record and
        the audit log keep the history. Refused (ConflictError) while an alias or the
        model's traffic policy names it."""
        with transaction(self._writes) as session:
            model = repo.require_model(session, name, lock=True)
            row = repo.require_version(session, model, int(version))
            if row.archive is not None:
                raise ConflictError(
                    f"version {row.version} of {name!r} is already archived",
                    {"model": name, "version": row.version},
                )
            aliases = sorted(
                session.scalars(select(AliasRow.name).where(AliasRow.version_id == row.id))
            )
            if aliases:
                raise ConflictError(
                    f"version {row.version} of {name!r} is what {', '.join(aliases)} "
                    "point(s) at; move the alias first",
                    {"model": name, "version": row.version, "aliases": aliases},
                )
            policy = repo.find_traffic_policy(session, model)
            if policy is not None and str(row.version) in policy.refs:
                raise ConflictError(
                    f"version {row.version} of {name!r} is named by the model's traffic "
                    "policy; change or clear the policy first",
                    {"model": name, "version": row.version},
                )
            session.add(
                VersionArchiveRow(
                    version_id=row.id, archived_at=utc_now(), actor=actor, reason=reason
                )
            )
            repo.add_event(
                session,
                "version.archive",
                name,
                actor=actor,
                version=row.version,
                details={"reason": reason},
            )
            digests = [row.artifact_sha256, *(a.sha256 for a in row.extra_artifacts)]
        for sha256 in dict.fromkeys(digests):
            self._discard_unreferenced(sha256)
        return self.get_version(name, version)

    def set_gate(self, name: str, rules: Any, *, actor: str = "cli") -> list[dict[str, Any]]:
        """Replace the model's validation gate rules (``[]`` removes the gate); audited."""
        checked = check_rules(rules)
        with transaction(self._writes) as session:
            model = repo.require_model(session, name, lock=True)
            row = session.scalars(
                select(ModelGateRow).where(ModelGateRow.model_id == model.id)
            ).one_or_none()
            if row is None:
                session.add(
                    ModelGateRow(
                        model_id=model.id, rules=checked, actor=actor, updated_at=utc_now()
                    )
                )
            else:
                row.rules, row.actor, row.updated_at = checked, actor, utc_now()
            repo.add_event(session, "gate.set", name, actor=actor, details={"rules": checked})
        return checked

    def get_gate(self, name: str) -> list[dict[str, Any]]:
        """The model's gate rules; empty when it has none."""
        with transaction(self._reads) as session:
            model = repo.require_model(session, name)
            row = session.scalars(
                select(ModelGateRow).where(ModelGateRow.model_id == model.id)
            ).one_or_none()
            return [] if row is None else [dict(rule) for rule in row.rules]

    def set_config(
        self, name: str, version: int, config: dict[str, Any], *, actor: str = "cli"
    ) -> ConfigRevision:
        """Record ``config`` as the version's next config revision (the version stays as it
        is). The document's owner, ``maas.control.model_config``, validates it first."""
        config = check_json_object("config", config)
        with transaction(self._writes) as session:
            model = repo.require_model(session, name, lock=True)
            target = repo.require_version(session, model, int(version))
            return repo.to_config(repo.add_config(session, target, config, actor))

    def get_config(self, name: str, version: int) -> ConfigRevision | None:
        """The version's newest config revision, or None when it never had one."""
        revisions = self.list_configs(name, version)
        return revisions[-1] if revisions else None

    def list_configs(self, name: str, version: int) -> list[ConfigRevision]:
        """Every config revision of the version, oldest first."""
        with transaction(self._reads) as session:
            model = repo.require_model(session, name)
            target = repo.require_version(session, model, int(version))
            return [repo.to_config(row) for row in repo.config_revisions(session, target)]

    def audit_log(
        self,
        model_name: str | None = None,
        limit: int = 100,
        *,
        action: str | None = None,
        before: int | None = None,
    ) -> list[AuditEvent]:
        """The newest ``limit`` events, newest first, of one model or of all; ``action``
        keeps one kind (``alias.set``) or a family (``alias``); ``before`` pages back."""
        query = select(AuditEventRow).order_by(AuditEventRow.id.desc()).limit(max(0, limit))
        if model_name is not None:
            query = query.where(AuditEventRow.model_name == model_name)
        if action is not None:
            query = query.where(
                (AuditEventRow.action == action) | AuditEventRow.action.startswith(action + ".")
            )
        if before is not None:
            query = query.where(AuditEventRow.id < min(before, 2**63 - 1))  # no driver overflow
        with transaction(self._reads) as session:
            return [repo.to_event(row) for row in session.scalars(query)]

    def artifact_path(self, version: ModelVersion, artifact_format: str | None = None) -> Path:
        """A local path to the version's served artifact, or to its ``artifact_format`` one,
        verified against its sha256 (NotFoundError naming the formats it has otherwise).

        >>> registry.artifact_path(version, "torchscript")  # doctest: +SKIP
        PosixPath('.maas/artifacts/sha256/3f/3f0c...')
        """
        if version.archived is not None:
            raise NotFoundError(
                f"version {version.version} of model {version.model_name!r} is archived; "
                "its artifacts were collected",
                {"model": version.model_name, "version": version.version},
            )
        if artifact_format is None or artifact_format == version.artifact_format:
            return self._store.path(version.artifact_sha256)
        found = version.artifacts.get(artifact_format)
        if found is None:
            available = sorted({version.artifact_format, *version.artifacts})
            raise NotFoundError(
                f"version {version.version} of model {version.model_name!r} has no "
                f"{artifact_format!r} artifact; it has: {', '.join(available)}",
                {
                    "model": version.model_name,
                    "version": version.version,
                    "format": artifact_format,
                    "available": available,
                },
            )
        return self._store.path(str(found["sha256"]))

    def record_evaluation(
        self, name: str, version: int, details: dict[str, Any], *, actor: str = "cli"
    ) -> AuditEvent:
        """Append a ``version.evaluated`` audit event; the version itself stays as it was.

        ``details`` says on what and how well (dataset name and hash, scalar metrics).
        """
        details = check_json_object("details", details)
        with transaction(self._writes) as session:
            model = repo.require_model(session, name)
            target = repo.require_version(session, model, int(version))
            row = repo.add_event(
                session,
                "version.evaluated",
                name,
                actor=actor,
                version=target.version,
                details=details,
            )
            session.flush()
            return repo.to_event(row)

    def change_token(self) -> tuple[int, int]:
        """(newest audit event id, number of versions): changes whenever anything changed."""
        with transaction(self._reads) as session:
            last_event = session.scalar(select(func.max(AuditEventRow.id))) or 0
            versions = session.scalar(select(func.count(ModelVersionRow.id))) or 0
            return int(last_event), int(versions)

    def _discard_unreferenced(self, sha256: str) -> None:
        """Delete an artifact whose version was not recorded, unless a version uses it."""
        try:
            with transaction(self._reads) as session:
                if repo.sha256_in_use(session, sha256):
                    return
        except Exception:
            return  # cannot tell: keeping an orphan is safer than losing a version's bytes
        self._store.delete(sha256)
