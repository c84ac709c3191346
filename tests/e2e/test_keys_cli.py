"""``maas keys`` and ``MAAS_API_KEY``: the real ``maas`` executable against a real server.

The first key is made on the registry with no server running, the way an operator makes
one before exposing a server; the server (in this process, on loopback, over the same
SQLite registry) then requires it, checked with the SDK and with the CLI.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from maas.client import Client
from maas.config import Settings
from maas.control.uploads import register_upload
from maas.errors import ForbiddenError, UnauthenticatedError
from maas.registry import Registry
from maas.testing.models import write_linear_model
from maas.testing.server import running_server
from tests.e2e.test_cli import (
    CALL_TIMEOUT_S,
    MAAS,
    REQUEST,
    _env,
    ok,
    one_error_line,
    open_registry,
)

pytestmark = pytest.mark.e2e

TOKEN = re.compile(r"maas_[0-9a-f]{12}_[A-Za-z0-9_-]{43}")


def maas(
    cwd: Path, *args: str, key: str | None = None, port: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``maas ARGS`` as ``tests.e2e.test_cli.maas`` runs it, with ``MAAS_API_KEY=key`` and
    ``port=port`` (default: a free port, where no server answers) when given."""
    extra = {"MAAS_API_KEY": key, "MAAS_PORT": port}
    return subprocess.run(
        [str(MAAS), *args],
        cwd=cwd,
        env=_env(cwd / "home", **{k: v for k, v in extra.items() if v is not None}),
        capture_output=True,
        text=True,
        timeout=CALL_TIMEOUT_S,
        check=False,
    )


def only_token(text: str) -> str:
    """The one token ``text`` holds (it may be printed more than once)."""
    found = set(TOKEN.findall(text))
    assert len(found) == 1, text
    return str(found.pop())


def create(
    tmp_path: Path,
    *args: str,
    server: str | None = None,
    local: bool = False,
    key: str | None = None,
    port: str | None = None,
) -> dict[str, object]:
    """``maas [--server URL | --local] keys create ARGS --json``: the created key's
    document, token included."""
    root = ["--server", server] if server else ["--local"] if local else []
    result = maas(tmp_path, *root, "keys", "create", *args, "--json", key=key, port=port)
    document: dict[str, object] = json.loads(ok(result))
    return document


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def registry(home: Path, tmp_path: Path) -> Iterator[Registry]:
    """A migrated registry in ``home`` holding model ``linear`` versions 1 and 2."""
    linear = write_linear_model(tmp_path / "linear.onnx")
    registry = open_registry(home)
    try:
        registry.upgrade()
        for _ in range(2):
            register_upload(registry, "linear", linear, actor="test")
        yield registry
    finally:
        registry.close()


@pytest.fixture
def serving(home: Path, registry: Registry) -> Iterator[str]:
    """A server over ``home``'s registry (model ``linear`` v1 and v2), started by the test."""
    with running_server(Settings(home=home, refresh_interval_s=0.1), registry) as url:
        yield url


# -- help -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "words"),
    [
        (("keys",), ["admin", "includes read", "MAAS_API_KEY", "--model", "--local"]),
        (
            ("keys", "create"),
            [
                "will not be shown again",
                "export MAAS_API_KEY",
                "Authorization: Bearer",
                "admin may do everything, keys included",
                "deploy uploads, configures, promotes and routes versions, and includes read",
                "train submits and controls training jobs, and includes read",
                "predict runs inference",
                "read reads every management record",
                "acts only on routes that name one of those models",
                "--scope",
                "--rate",
            ],
        ),
        (("keys", "list"), ["Never their tokens", "--revoked"]),
        (("keys", "revoke"), ["at once"]),
    ],
    ids=lambda c: " ".join(c) if isinstance(c, tuple) else "",
)
def test_keys_help_explains_scopes_and_model_limits(
    tmp_path: Path, command: tuple[str, ...], words: list[str]
) -> None:
    out = " ".join(ok(maas(tmp_path, *command, "--help")).split())
    for word in words:
        assert word in out, word
    assert not (tmp_path / "home").exists(), "--help must not touch MAAS_HOME"


# -- the first key, made without a server ------------------------------------------------------


def test_a_key_made_on_the_registry_opens_a_server_started_afterwards(
    tmp_path: Path, home: Path, registry: Registry
) -> None:
    out = ok(maas(tmp_path, "keys", "create", "operator", "--scope", "admin"))
    token = only_token(out)
    assert "will not be shown again" in out
    assert f"export MAAS_API_KEY={token}" in out
    assert "Authorization: Bearer" in out
    assert "first key" in out
    [stored] = registry.keys.list()
    assert stored.name == "operator" and stored.scopes == ("admin",)
    assert stored.created_by.startswith("cli")
    secret = token[-43:]  # the fixed-length tail; it may itself contain "_"
    assert len(secret) == 43 and secret not in stored.secret_hash

    with running_server(Settings(home=home, refresh_interval_s=0.1), registry) as url:
        with Client(url) as anonymous, pytest.raises(UnauthenticatedError):
            anonymous.list_models()
        with Client(url, api_key=token) as operator:
            assert [m.name for m in operator.list_models()] == ["linear"]
            reader = operator.create_key("reader", ["read"])
        with Client(url, api_key=reader.token) as read_only:
            assert read_only.get_model("linear").versions == (1, 2)
            with pytest.raises(ForbiddenError):
                read_only.create_key("escalate", ["admin"])


def test_keys_made_locally_reach_a_running_server_within_its_refresh(
    tmp_path: Path, registry: Registry, serving: str
) -> None:
    """The server does not answer without a key after the first, yet `maas --local keys
    create` still works; the server learns of keys it did not make at its next refresh."""
    first = create(tmp_path, "first", "--scope", "read")  # no server on MAAS_PORT: local
    late = create(tmp_path, "late", "--scope", "read", local=True)
    for document in (first, late):
        deadline = time.monotonic() + 10
        with Client(serving, api_key=str(document["token"])) as holder:
            while True:
                try:
                    assert holder.get_model("linear").name == "linear"
                    break
                except UnauthenticatedError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)


# -- MAAS_API_KEY -----------------------------------------------------------------------------


def test_the_cli_sends_maas_api_key_and_list_never_shows_a_token(
    tmp_path: Path, registry: Registry, serving: str
) -> None:
    admin = create(tmp_path, "admin", "--scope", "admin")
    admin_token, admin_id = str(admin["token"]), str(admin["id"])

    line = one_error_line(maas(tmp_path, "--server", serving, "models", "list"))
    assert "API key" in line and "MAAS_API_KEY" in line
    wrong = admin_token[:-1] + ("A" if admin_token[-1] != "A" else "B")
    line = one_error_line(maas(tmp_path, "-s", serving, "models", "list", key=wrong))
    assert "not valid" in line and wrong not in line

    assert "linear" in ok(maas(tmp_path, "--server", serving, "models", "list", key=admin_token))
    ci = create(
        tmp_path,
        "ci",
        "--scope",
        "deploy",
        "--scope",
        "predict",
        "--model",
        "linear",
        "--rate",
        "20",
        server=serving,
        key=admin_token,
    )
    assert ci["created_by"] == f"key:admin/{admin_id}"  # made by the server, as that key
    assert (ci["scopes"], ci["models"], ci["rate_per_s"]) == (
        ["deploy", "predict"],
        ["linear"],
        20.0,
    )
    ci_token = str(ci["token"])

    table = ok(maas(tmp_path, "--server", serving, "keys", "list", key=admin_token))
    for expected in (admin_id, str(ci["id"]), "admin", "ci", "deploy, predict", "linear", "20/s"):
        assert expected in table, expected
    listed = ok(maas(tmp_path, "--server", serving, "keys", "list", "--json", key=admin_token))
    assert [doc["name"] for doc in json.loads(listed)] == ["admin", "ci"]
    assert all("token" not in doc for doc in json.loads(listed))
    for text in (table, listed):
        assert not TOKEN.search(text)
        for token in (admin_token, ci_token):
            assert token[-43:] not in text
        assert "scrypt" not in text

    request = tmp_path / "req.json"
    request.write_text(json.dumps(REQUEST))
    assert "logits" in ok(
        maas(tmp_path, "-s", serving, "predict", "linear", "-i", str(request), key=ci_token)
    )
    line = one_error_line(maas(tmp_path, "-s", serving, "keys", "list", key=ci_token))
    assert "may not" in line
    assert "may not" in one_error_line(
        maas(tmp_path, "-s", serving, "models", "list", key=ci_token)
    )


def test_revoke_through_the_cli_shuts_the_key_out_at_once(
    tmp_path: Path, registry: Registry, serving: str
) -> None:
    admin = create(tmp_path, "admin", "--scope", "admin")
    admin_token = str(admin["token"])
    reader = create(tmp_path, "reader", "--scope", "read", server=serving, key=admin_token)
    with Client(serving, api_key=str(reader["token"])) as holder:
        assert holder.get_model("linear").name == "linear"
        out = ok(
            maas(tmp_path, "-s", serving, "keys", "revoke", str(reader["id"]), key=admin_token)
        )
        assert "revoked" in out and str(reader["id"]) in out
        with pytest.raises(UnauthenticatedError):
            holder.get_model("linear")

    assert str(reader["id"]) not in ok(
        maas(tmp_path, "-s", serving, "keys", "list", key=admin_token)
    )
    everything = ok(maas(tmp_path, "-s", serving, "keys", "list", "--revoked", key=admin_token))
    assert str(reader["id"]) in everything and f"by key:admin/{admin['id']}" in everything
    again = one_error_line(
        maas(tmp_path, "-s", serving, "keys", "revoke", str(reader["id"]), key=admin_token)
    )
    assert "already revoked" in again
    assert "not found" in one_error_line(
        maas(tmp_path, "-s", serving, "keys", "revoke", "000000000000", key=admin_token)
    )


def test_this_configurations_own_server_gets_the_key_too(
    tmp_path: Path, registry: Registry, serving: str
) -> None:
    """No --server: the CLI finds the server on MAAS_PORT (the probe sends the key too)."""
    port = serving.rsplit(":", 1)[1]
    admin = create(tmp_path, "admin", "--scope", "admin", port=port)
    assert str(admin["created_by"]).startswith("api:")  # made by the server, still open then
    request = tmp_path / "req.json"
    request.write_text(json.dumps(REQUEST))

    # Without a key: management goes to the registry directly, saying why in one line...
    result = maas(tmp_path, "keys", "list", port=port)
    assert result.returncode == 0, result.stderr
    assert "requires an API key" in result.stderr and "directly" in result.stderr
    assert "admin" in result.stdout
    # ...and what needs the server says what to set.
    line = one_error_line(maas(tmp_path, "predict", "linear", "-i", str(request), port=port))
    assert "requires an API key" in line and "MAAS_API_KEY" in line

    admin_token = str(admin["token"])
    made = create(tmp_path, "through-server", "--scope", "read", port=port, key=admin_token)
    assert made["created_by"] == f"key:admin/{admin['id']}"
    result = maas(tmp_path, "models", "list", port=port, key=admin_token)
    assert "linear" in ok(result) and result.stderr == ""
    assert "logits" in ok(
        maas(tmp_path, "predict", "linear", "-i", str(request), port=port, key=admin_token)
    )
