"""The one settings object of maas; nothing else reads the environment.

Sources, highest priority first: keyword arguments, ``MAAS_*`` environment
variables (``__`` separates nested fields), an optional ``maas.toml`` in the
working directory (or the file named by ``MAAS_CONFIG``), then the defaults below.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

__all__ = ["Settings"]


class Settings(BaseSettings):
    """Where maas keeps its state and where it listens.

    >>> Settings(home=Path("/tmp/m")).resolved_database_url
    'sqlite:////tmp/m/maas.db'
    """

    model_config = SettingsConfigDict(env_prefix="MAAS_", env_nested_delimiter="__", extra="ignore")

    home: Path = Field(Path(".maas"), description="Folder for the default database and artifacts.")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL of the registry; default: SQLite file in `home`."
    )
    artifacts_dir: Path | None = Field(
        None,
        description="Folder of the content-addressed artifact store; default: `home/artifacts`.",
    )
    db_busy_timeout_s: float = Field(
        1.0,
        gt=0,
        le=600,
        description="How long the server waits for a lock on the registry database before "
        "a management call answers 503 unavailable (inference never waits on it); job "
        "workers and the CLI wait at least 30 s, since they write beside the server.",
    )
    host: str = Field("127.0.0.1", description="Address the server binds to.")
    port: int = Field(8080, ge=0, le=65535, description="Port of the REST server.")
    grpc_port: int = Field(
        8081, ge=0, le=65535, description="Port of the KServe V2 gRPC server (0: no gRPC server)."
    )
    grpc_max_message_bytes: int = Field(
        256 * 1024 * 1024, gt=0, description="Largest gRPC message sent or received."
    )
    workers: int = Field(
        1, ge=1, le=64, description="Server processes sharing the ports (SO_REUSEPORT)."
    )
    refresh_interval_s: float = Field(
        2.0, gt=0, description="How often the server re-reads aliases and new versions."
    )
    max_request_size_bytes: int = Field(
        64 * 1024 * 1024, gt=0, description="Largest inference or upload body accepted."
    )
    max_header_bytes: int = Field(
        64 * 1024,
        ge=1024,
        description="Largest request head (request line and headers together) accepted "
        "(larger: 431 and the connection closed).",
    )
    max_header_count: int = Field(
        100, ge=8, description="Most headers a request may carry (more: 431, connection closed)."
    )
    header_timeout_s: float = Field(
        10.0,
        gt=0,
        description="Time a client has to send a request's head, from the connection or "
        "from the first byte of a later request (else 408 and the connection closed).",
    )
    body_timeout_s: float = Field(
        30.0,
        gt=0,
        description="Time a request body may make no progress before the server answers "
        "408 and closes the connection.",
    )
    write_timeout_s: float = Field(
        30.0,
        gt=0,
        description="Time a client may read nothing of a response the server is waiting to "
        "send before its connection is dropped and the buffered response freed.",
    )
    keep_alive_timeout_s: float = Field(
        5.0, gt=0, description="Time an idle keep-alive connection stays open between requests."
    )
    max_connections: int = Field(
        2048,
        ge=1,
        description="Open REST connections per server process; a connection beyond them is "
        "answered 503 and closed at once.",
    )
    json_max_depth: int = Field(
        100,
        ge=8,
        description="Deepest nesting of arrays and objects a V2 JSON body may hold "
        "(checked before it is parsed).",
    )
    json_max_keys: int = Field(
        10_000,
        ge=16,
        description="Most object keys a V2 JSON body may hold, all objects together "
        "(checked before it is parsed).",
    )
    json_max_elements: int = Field(
        1 << 23,
        ge=1024,
        description="Most values a V2 JSON body may hold (array elements and object "
        "members together, checked before it is parsed); larger tensors: use binary data.",
    )
    shutdown_grace_s: float = Field(
        5.0,
        ge=0,
        description="On SIGTERM the server reports not ready at once and goes on serving "
        "for this long (so a load balancer can notice), then stops accepting connections.",
    )
    shutdown_drain_s: float = Field(
        30.0,
        ge=0,
        description="After it stops accepting, how long the server waits for requests in "
        "flight before it cancels them and exits.",
    )
    max_loaded_bytes: int | None = Field(
        None,
        gt=0,
        description="Bound on the memory loaded versions hold (worker processes included); "
        "versions no route sends traffic to are unloaded least recently used first "
        "(default: no bound).",
    )
    max_worker_processes: int = Field(
        default_factory=lambda: max(4, 2 * (os.cpu_count() or 1)),
        ge=1,
        le=1024,
        description="Bound on the worker processes a server runs for its versions at once "
        "(TorchScript instances, kind=process); a version that would pass it does not load "
        "(default: twice the cores, at least 4).",
    )
    worker_restart_delay_s: float = Field(
        1.0,
        gt=0,
        le=600,
        description="A worker process that crashes again soon after a restart comes back "
        "after this delay, doubling with each crash in a row (up to 30 s).",
    )
    worker_max_crashes: int = Field(
        6,
        ge=1,
        le=1000,
        description="Crashes in a row after which a version's worker is not restarted: "
        "the version is taken out of service, says why, and is tried again later.",
    )
    max_loaded_versions: int | None = Field(
        None, gt=0, description="Bound on how many versions are loaded at once (default: none)."
    )
    server: str | None = Field(
        None,
        description="The maas server the CLI and SDK use (default: http://MAAS_HOST:MAAS_PORT "
        "when it answers and serves this configuration's registry).",
    )
    auth: Literal["auto", "required", "off"] = Field(
        "auto",
        description="API keys: 'auto' requires them once one exists, and always on an "
        "address other than loopback (where the server refuses to start without one); "
        "'required' always; 'off' never (anyone who reaches the ports may do anything; "
        "logged as a warning).",
    )
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Host header values the server answers, as a JSON list (a port is "
        "ignored; '*' allows any); default: the bound address and localhost names, or any "
        "host when bound to every interface (0.0.0.0 or ::). Guards against DNS rebinding.",
    )
    allow_code_artifacts: bool = Field(
        False,
        description="Take formats whose files are programs (TorchScript) over the API, from "
        "keys with the code scope (the CLI with --local may always register them).",
    )
    tls_cert: Path | None = Field(
        None,
        description="PEM certificate (chain) the server presents on REST and gRPC; with "
        "tls_key, the server speaks only TLS (https://, grpcs).",
    )
    tls_key: Path | None = Field(None, description="PEM private key of tls_cert.")
    ca_bundle: Path | None = Field(
        None,
        description="PEM file of the certificate authorities the CLI trusts for a TLS server "
        "(default: the system's; a self-signed server certificate goes here).",
    )
    api_key: SecretStr | None = Field(
        None,
        description="The API key the CLI sends to a server (never give it on the command "
        "line: set MAAS_API_KEY in the environment).",
    )
    job_concurrency: int = Field(
        1,
        ge=0,
        le=64,
        description="Training jobs the server runs at once, each in its own worker process "
        "(0: this server runs none, another maas server sharing the database does).",
    )
    job_data_dirs: list[Path] = Field(
        default_factory=list,
        description="Folders whose files jobs submitted over HTTP may read, as a JSON list "
        "(default: the folder the server was started in). The CLI without a server reads "
        "whatever its user can.",
    )
    job_factory_modules: list[str] = Field(
        default_factory=list,
        description="Python packages whose model factories (package.module:factory) jobs "
        "submitted over HTTP may import, as a JSON list (default: none; the zoo always works).",
    )
    job_nice: int = Field(
        10,
        ge=0,
        le=19,
        description="How much lower a job worker's CPU priority is than the server's, so "
        "inference keeps the cores it needs while a job trains (0: the same).",
    )

    metrics: bool = Field(
        True,
        description="Answer GET /metrics in the Prometheus text format (false: 404, and "
        "the inference path records nothing beyond the V2 statistics).",
    )
    metrics_dir: Path | None = Field(
        None,
        description="Internal: the folder where the processes of `maas serve --workers N` "
        "leave their metrics for each other; set by the server for its workers.",
    )
    drift_window_rows: int = Field(
        2000,
        ge=10,
        le=1_000_000,
        description="Live input rows kept per served version for drift scores (a sliding "
        "window; older rows leave as new ones arrive; docs/monitoring.md). A version is "
        "scored once its window holds 300 rows, or all of a smaller window.",
    )
    drift_interval_s: float = Field(
        10.0,
        gt=0,
        le=3600,
        description="Seconds between drift computations over each version's live window "
        "(in a thread); also how soon a reference set on another server is picked up.",
    )
    alert_rules: Path | None = Field(
        None,
        description="A TOML file of alert rules and webhooks the server evaluates "
        "(docs/monitoring.md); none: no alerts.",
    )
    alert_interval_s: float = Field(
        5.0,
        gt=0,
        le=3600,
        description="Seconds between evaluations of the alert rules.",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = Path(os.environ.get("MAAS_CONFIG", "maas.toml"))
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=toml_file),
        )

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'maas.db').absolute()}"

    @property
    def database_display(self) -> str:
        """The registry database for people to read: a SQLite file's path, or the URL
        without its password."""
        url = self.resolved_database_url
        if url.startswith("sqlite:///"):
            return url.removeprefix("sqlite:///")
        return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)

    @property
    def resolved_artifacts_dir(self) -> Path:
        return (self.artifacts_dir or self.home / "artifacts").absolute()

    def as_environment(self) -> dict[str, str]:
        """These settings as ``MAAS_*`` variables, for server processes started from this one."""
        variables = {
            f"MAAS_{name.upper()}": json.dumps(value) if isinstance(value, list) else str(value)
            for name, value in self.model_dump(mode="json", exclude={"api_key"}).items()
            if value is not None
        }
        variables["MAAS_DATABASE_URL"] = self.resolved_database_url
        variables["MAAS_ARTIFACTS_DIR"] = str(self.resolved_artifacts_dir)
        variables["MAAS_HOME"] = str(self.home.absolute())
        return variables

    @property
    def jobs_dir(self) -> Path:
        """Per-job folders: checkpoints and the worker's raw output."""
        return (self.home / "jobs").absolute()

    @property
    def base_url(self) -> str:
        """Where this configuration's own server answers."""
        scheme = "https" if self.tls_cert else "http"
        return f"{scheme}://{self.host}:{self.port}"

    @property
    def tls_files(self) -> tuple[Path, Path] | None:
        """(certificate, key) when the server speaks TLS."""
        if self.tls_cert is None or self.tls_key is None:
            return None
        return self.tls_cert, self.tls_key

    @model_validator(mode="after")
    def _tls_pair(self) -> Settings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together: give both or neither")
        return self
