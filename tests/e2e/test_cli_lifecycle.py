"""The CLI's lifecycle commands as a user runs them: promote, rollback, archive, aliases,
traffic, audit, --json and -q; locally, through this configuration's server, and refused
or kept local when the server answering on the configured port serves another registry."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from maas.config import Settings
from maas.control.uploads import register_upload
from maas.registry import Registry
from maas.testing.models import write_linear_model
from maas.testing.server import running_server
from tests.e2e.test_cli import maas, ok, one_error_line, open_registry

pytestmark = pytest.mark.e2e


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def registry(home: Path, tmp_path: Path) -> Iterator[Registry]:
    """Model ``linear`` with versions 1, 2 and 3 (different weights), in ``home``."""
    registry = open_registry(home)
    try:
        registry.upgrade()
        for seed in range(3):
            path = write_linear_model(tmp_path / f"linear-{seed}.onnx", seed=seed)
            register_upload(registry, "linear", path, actor="test")
        yield registry
    finally:
        registry.close()


def _json(output: str) -> Any:
    return json.loads(output)


def test_lists_and_shows_print_json(tmp_path: Path, registry: Registry) -> None:
    models = _json(ok(maas(tmp_path, "models", "list", "--json")))
    assert isinstance(models, list) and models[0]["name"] == "linear"
    assert models[0]["versions"] == [1, 2, 3]
    shown = _json(ok(maas(tmp_path, "models", "show", "linear", "2", "--json")))
    assert isinstance(shown, dict) and shown["version"] == 2
    assert shown["signature"]["inputs"][0]["shape"] == [-1, 4]
    versions = _json(ok(maas(tmp_path, "models", "versions", "linear", "--json")))
    assert [v["version"] for v in versions] == [1, 2, 3]
    assert _json(ok(maas(tmp_path, "jobs", "list", "--json"))) == []
    assert _json(ok(maas(tmp_path, "alias", "list", "linear", "--json"))) == []


def test_upload_quiet_prints_only_the_version(tmp_path: Path, registry: Registry) -> None:
    path = write_linear_model(tmp_path / "more.onnx", seed=9)
    out = ok(maas(tmp_path, "models", "upload", str(path), "-n", "linear", "-q"))
    assert out.strip() == "4"


def test_promote_rollback_and_history_locally(tmp_path: Path, registry: Registry) -> None:
    assert "version 1" in ok(maas(tmp_path, "promote", "linear", "1"))
    assert "version 3" in ok(maas(tmp_path, "promote", "linear", "3"))
    assert "version 2" in ok(maas(tmp_path, "alias", "set", "linear", "production", "2"))
    assert "-> version 3 (was 2)" in ok(maas(tmp_path, "rollback", "linear"))
    assert "-> version 1 (was 3)" in ok(maas(tmp_path, "rollback", "linear"))
    assert "no earlier version" in one_error_line(maas(tmp_path, "rollback", "linear"))
    history = _json(ok(maas(tmp_path, "alias", "history", "linear", "production", "--json")))
    assert [(m["kind"], m["version"]) for m in history] == [
        ("set", 1),
        ("set", 3),
        ("set", 2),
        ("rollback", 3),
        ("rollback", 1),
    ]
    # An alias given where a version goes: staging follows production's version.
    assert "version 1" in ok(maas(tmp_path, "alias", "set", "linear", "staging", "production"))
    table = ok(maas(tmp_path, "alias", "list", "linear"))
    assert "production" in table and "staging" in table
    assert registry.aliases.get("linear", "staging").version == 1


def test_promoting_a_version_that_cannot_load_is_refused(
    tmp_path: Path, home: Path, registry: Registry
) -> None:
    ok(maas(tmp_path, "promote", "linear", "1"))
    broken = registry.get_version("linear", 3)
    stored = home / "artifacts" / "sha256" / broken.artifact_sha256[:2] / broken.artifact_sha256
    stored.write_bytes(b"not the bytes that were registered")
    line = one_error_line(maas(tmp_path, "promote", "linear", "3"))
    assert "version 3 of 'linear' cannot serve: it does not load" in line
    assert registry.aliases.get("linear", "production").version == 1


def test_archive_hides_a_version_and_refuses_an_aliased_one(
    tmp_path: Path, registry: Registry
) -> None:
    ok(maas(tmp_path, "promote", "linear", "2"))
    refused = one_error_line(maas(tmp_path, "models", "archive", "linear", "2"))
    assert "production" in refused and "move the alias first" in refused
    assert "archived linear version 1" in ok(
        maas(tmp_path, "models", "archive", "linear", "1", "--reason", "superseded")
    )
    listed = _json(ok(maas(tmp_path, "models", "versions", "linear", "--json")))
    assert [v["version"] for v in listed] == [2, 3]
    everything = ok(maas(tmp_path, "models", "versions", "linear", "--all"))
    assert "archived" in everything
    events = _json(ok(maas(tmp_path, "audit", "-m", "linear", "--action", "version", "--json")))
    archive = next(e for e in events if e["action"] == "version.archive")
    assert archive["details"] == {"reason": "superseded"} and archive["version"] == 1


def test_traffic_set_show_and_clear_locally(tmp_path: Path, registry: Registry) -> None:
    ok(maas(tmp_path, "promote", "linear", "1"))
    out = ok(
        maas(
            tmp_path,
            "traffic", "set", "linear",
            "--split", "production=90", "--split", "2=10",
            "--shadow", "3", "--shadow-fraction", "0.5",
        )
    )  # fmt: skip
    assert "traffic policy set" in out
    shown = _json(ok(maas(tmp_path, "traffic", "show", "linear", "--json")))
    assert shown["policy"] == {
        "split": [{"target": "production", "weight": 90.0}, {"target": 2, "weight": 10.0}],
        "sticky_header": None,
        "shadow": {"target": 3, "fraction": 0.5},
    }
    assert "--split" in one_error_line(maas(tmp_path, "traffic", "set", "linear", "--split", "2"))
    assert "shadow" in one_error_line(
        maas(tmp_path, "traffic", "set", "linear", "--split", "2=1", "--shadow", "2")
    )
    ok(maas(tmp_path, "traffic", "clear", "linear"))
    assert "no traffic policy" in ok(maas(tmp_path, "traffic", "show", "linear"))
    actions = [e.action for e in registry.audit_log("linear", action="traffic")]
    assert actions == ["traffic.clear", "traffic.set"]


def _port(url: str) -> str:
    return str(urlsplit(url).port)


def test_commands_go_through_this_configurations_server(
    tmp_path: Path, home: Path, registry: Registry
) -> None:
    with running_server(Settings(home=home), registry) as url:
        port = _port(url)
        assert "version 2" in ok(maas(tmp_path, "promote", "linear", "2", MAAS_PORT=port))
        [event] = registry.audit_log("linear", limit=1)
        assert event.action == "alias.set" and event.actor.startswith("api:")  # via the API
        rows = _json(ok(maas(tmp_path, "deployments", "--json", MAAS_PORT=port)))
        ready = {(r["version"], r["state"]) for r in rows}
        assert (2, "ready") in ready
        request = tmp_path / "req.json"
        request.write_text(
            json.dumps(
                {
                    "inputs": [
                        {"name": "input", "datatype": "FP32", "shape": [1, 4], "data": [1] * 4}
                    ]
                }
            )
        )
        answer = _json(
            ok(maas(tmp_path, "predict", "linear", "-i", str(request), "--json", MAAS_PORT=port))
        )
        assert answer["model_version"] == "2"
        # --local acts on the registry even though the server answers.
        ok(maas(tmp_path, "--local", "alias", "set", "linear", "staging", "1", MAAS_PORT=port))
        [event] = registry.audit_log("linear", limit=1)
        assert event.actor.startswith("cli")


def test_a_server_of_another_registry_is_not_used(tmp_path: Path, registry: Registry) -> None:
    """The issue's case: one project's server runs on the configured port; a command from
    another home must not act on that server's registry."""
    other_home = tmp_path / "other"
    other = open_registry(other_home)
    try:
        other.upgrade()
        with running_server(Settings(home=other_home), other) as url:
            port = _port(url)
            fresh = tmp_path / "fresh"
            fresh.mkdir()
            model = write_linear_model(fresh / "m.onnx")
            result = maas(fresh, "models", "upload", str(model), "-n", "mine", MAAS_PORT=port)
            assert result.returncode == 0, result.stderr
            notes = result.stderr.strip().splitlines()
            assert len(notes) == 1 and "serves another registry" in notes[0], result.stderr
            assert "registered mine version 1" in result.stdout
            assert other.list_models() == []  # the other project's registry is untouched
            mine = open_registry(fresh / "home")
            try:
                assert [v.version for v in mine.list_versions("mine")] == [1]
            finally:
                mine.close()
            request = fresh / "req.json"
            request.write_text('{"inputs": []}')
            line = one_error_line(
                maas(fresh, "predict", "mine", "-i", str(request), MAAS_PORT=port)
            )
            assert "serves another registry" in line and "--server" in line
    finally:
        other.close()
