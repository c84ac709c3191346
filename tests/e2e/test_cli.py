"""The real ``maas`` executable in a subprocess, against a fresh ``MAAS_HOME`` in tmp_path.

Each call runs with ``cwd=tmp_path`` (so no ``maas.toml`` is picked up), a wide terminal
(so Rich does not wrap what we assert on) and a timeout. State is checked through the
``Registry`` API, not by parsing tables.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnxruntime as ort
import pytest

from maas.config import Settings
from maas.control.uploads import register_upload
from maas.registry import Registry
from maas.store import LocalStore
from maas.testing.models import write_linear_model
from maas.testing.processes import free_port, free_ports, wait_until_ready
from maas.testing.server import running_server

pytestmark = pytest.mark.e2e

MAAS = Path(sys.executable).parent / "maas"
CALL_TIMEOUT_S = 60.0
REQUEST = {
    "inputs": [
        {
            "name": "input",
            "datatype": "FP32",
            "shape": [2, 4],
            "data": [0.5, -1.0, 2.0, 0.25, 1.0, 1.5, -0.5, 3.0],
        }
    ]
}


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAAS_")}
    # A free port, so that commands looking for this configuration's server find none.
    env.update({"MAAS_HOME": str(home), "MAAS_PORT": str(free_port())})
    env.update({"COLUMNS": "200", "NO_COLOR": "1"}, **extra)
    return env


def maas(
    cwd: Path, *args: str, timeout_s: float = CALL_TIMEOUT_S, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run ``maas ARGS`` with ``MAAS_HOME=cwd/home`` and the given extra MAAS_* variables."""
    return subprocess.run(
        [str(MAAS), *args],
        cwd=cwd,
        env=_env(cwd / "home", **env),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The failure was reported as exactly one ``error:`` line on stderr and a non-zero exit."""
    assert result.returncode != 0, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    return lines[0]


def open_registry(home: Path) -> Registry:
    return Registry(f"sqlite:///{home}/maas.db", LocalStore(home / "artifacts"))


def stored_blobs(home: Path) -> set[Path]:
    return {p for p in (home / "artifacts" / "sha256").rglob("*") if p.is_file()}


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def linear_file(tmp_path: Path) -> Path:
    return write_linear_model(tmp_path / "linear.onnx")


@pytest.fixture
def registry(home: Path, linear_file: Path) -> Iterator[Registry]:
    """A migrated registry in ``home`` holding model ``linear`` versions 1 and 2 (in-process)."""
    registry = open_registry(home)
    try:
        registry.upgrade()
        for _ in range(2):
            register_upload(registry, "linear", linear_file, actor="test")
        yield registry
    finally:
        registry.close()


# -- help -----------------------------------------------------------------------------------

HELP_WORDS: dict[tuple[str, ...], str] = {
    (): "--server URL",
    ("quickstart",): "digits demo",
    ("serve",): "Serve every registered model",
    ("train",): "Ctrl-C",
    ("jobs",): "cancel",
    ("jobs", "list"): "newest first",
    ("jobs", "show"): "ETA",
    ("jobs", "follow"): "detaches",
    ("jobs", "logs"): "log",
    ("jobs", "cancel"): "next training step",
    ("jobs", "resume"): "checkpointed epoch",
    ("predict",): "running server",
    ("promote",): "validation gate",
    ("rollback",): "walks further back",
    ("audit",): "who made it",
    ("deployments",): "routes that",
    ("drift",): "largest per-feature PSI",
    ("models",): "upload, download, archive",
    ("models", "list"): "List every model",
    ("models", "versions"): "archived",
    ("models", "show"): "signature",
    ("models", "upload"): "pickles",
    ("models", "download"): "sha256",
    ("models", "archive"): "out of service",
    ("models", "config"): "FIELD=VALUE",
    ("models", "compare"): "side by side",
    ("models", "gate"): "validation gate",
    ("models", "load"): "warm",
    ("models", "unload"): "Stop serving",
    ("models", "reference"): "never goes to the server",
    ("evaluate",): "labelled dataset",
    ("alias",): "production",
    ("alias", "list"): "aliases",
    ("alias", "set"): "Point ALIAS",
    ("alias", "delete"): "Remove ALIAS",
    ("alias", "history"): "rollback",
    ("traffic",): "canary",
    ("traffic", "show"): "agreement",
    ("traffic", "set"): "--split",
    ("traffic", "clear"): "default version",
    ("db",): "registry database",
    ("db", "upgrade"): "schema migration",
}


_HELP_AT_ONCE = 4


@pytest.fixture(scope="module")
def help_texts(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, ...], tuple[int, str]]:
    """Every ``--help`` (exit, stdout), a few processes at a time: each start of ``maas``
    costs a fraction of a second of CPU, and there are dozens of commands."""
    cwd = tmp_path_factory.mktemp("help")
    commands = list(HELP_WORDS)
    texts: dict[tuple[str, ...], tuple[int, str]] = {}
    for start in range(0, len(commands), _HELP_AT_ONCE):
        running = {
            command: subprocess.Popen(
                [str(MAAS), *command, "--help"],
                cwd=cwd,
                env=_env(cwd / "home"),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for command in commands[start : start + _HELP_AT_ONCE]
        }
        try:
            for command, process in running.items():
                out, _ = process.communicate(timeout=CALL_TIMEOUT_S)
                texts[command] = (process.returncode, out)
        finally:
            for process in running.values():
                if process.poll() is None:
                    process.kill()
                    process.communicate()
    assert not (cwd / "home").exists(), "--help must not touch MAAS_HOME"
    return texts


@pytest.mark.parametrize("command", list(HELP_WORDS), ids=lambda c: " ".join(c) or "maas")
def test_help_explains_every_command(
    help_texts: dict[tuple[str, ...], tuple[int, str]], command: tuple[str, ...]
) -> None:
    returncode, out = help_texts[command]
    assert returncode == 0, out
    assert " ".join(("Usage: maas", *command)) in out
    assert HELP_WORDS[command] in " ".join(out.split())  # words, whatever the wrapping
    assert "<bool>" not in out  # flags show as flags


# -- db ---------------------------------------------------------------------------------------


def test_db_upgrade_creates_the_sqlite_database_and_is_idempotent(
    tmp_path: Path, home: Path
) -> None:
    first = ok(maas(tmp_path, "db", "upgrade"))
    assert (home / "maas.db").is_file()
    assert "up to date" in first
    assert "up to date" in ok(maas(tmp_path, "db", "upgrade"))
    registry = open_registry(home)
    try:
        assert registry.list_models() == []
    finally:
        registry.close()


# -- models -----------------------------------------------------------------------------------


def test_upload_list_show_and_audit(tmp_path: Path, home: Path, linear_file: Path) -> None:
    assert "version 1" in ok(maas(tmp_path, "models", "upload", str(linear_file), "--name", "iris"))
    assert "version 2" in ok(maas(tmp_path, "models", "upload", str(linear_file), "-n", "iris"))

    listed = ok(maas(tmp_path, "models", "list"))
    assert "iris" in listed

    for args in (("iris",), ("iris", "1")):
        shown = ok(maas(tmp_path, "models", "show", *args))
        expected_version = args[1] if len(args) == 2 else "2"
        assert f"iris version {expected_version}" in shown
        assert "input" in shown and "logits" in shown
        assert "FP32" in shown and "[-1, 4]" in shown
        assert "lineage" in shown and '"filename": "linear.onnx"' in shown
        assert '"source": "upload"' in shown

    registry = open_registry(home)
    try:
        assert [v.version for v in registry.list_versions("iris")] == [1, 2]
        creates = [e for e in registry.audit_log("iris") if e.action == "version.create"]
        assert sorted(e.version for e in creates if e.version is not None) == [1, 2]
        assert all(e.actor.startswith("cli") for e in creates)
    finally:
        registry.close()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (pickle.dumps({"weights": [1.0, 2.0]}), "pickle"),
        (b"zip", "zip"),
        (np.random.default_rng(0).bytes(512), "not a loadable ONNX model"),
    ],
    ids=["pickle", "zip", "random-bytes"],
)
def test_upload_refuses_files_that_are_not_onnx(
    tmp_path: Path, home: Path, registry: Registry, content: bytes, expected: str
) -> None:
    bad = tmp_path / "model.onnx"
    if content == b"zip":
        with zipfile.ZipFile(bad, "w") as archive:
            archive.writestr("archive/data.pkl", pickle.dumps({"a": 1}))
    else:
        bad.write_bytes(content)
    blobs = stored_blobs(home)

    line = one_error_line(maas(tmp_path, "models", "upload", str(bad), "--name", "fresh"))
    assert expected in line

    assert [v.version for v in registry.list_versions("linear")] == [1, 2]
    assert [m.name for m in registry.list_models()] == ["linear"]
    assert stored_blobs(home) == blobs


def test_upload_of_a_missing_file_is_a_usage_error(
    tmp_path: Path, home: Path, registry: Registry
) -> None:
    blobs = stored_blobs(home)
    result = maas(tmp_path, "models", "upload", str(tmp_path / "nosuch.onnx"), "--name", "linear")
    assert result.returncode == 2
    assert "does not exist" in result.stderr
    assert [v.version for v in registry.list_versions("linear")] == [1, 2]
    assert stored_blobs(home) == blobs


def test_show_of_an_unknown_model_names_it(tmp_path: Path, registry: Registry) -> None:
    assert "nosuch" in one_error_line(maas(tmp_path, "models", "show", "nosuch"))


def test_show_of_an_unknown_version_names_it(tmp_path: Path, registry: Registry) -> None:
    assert "7" in one_error_line(maas(tmp_path, "models", "show", "linear", "7"))


def test_invalid_settings_are_one_line_about_the_configuration(tmp_path: Path) -> None:
    line = one_error_line(maas(tmp_path, "models", "list", MAAS_PORT="notaport"))
    assert "configuration" in line and "port" in line
    assert not (tmp_path / "home" / "maas.db").exists()


# -- aliases ----------------------------------------------------------------------------------


def test_alias_set_move_and_delete(tmp_path: Path, registry: Registry) -> None:
    assert "version 1" in ok(maas(tmp_path, "alias", "set", "linear", "production", "1"))
    assert "production->1" in ok(maas(tmp_path, "models", "list"))

    assert "version 2" in ok(maas(tmp_path, "alias", "set", "linear", "production", "2"))
    assert "production->2" in ok(maas(tmp_path, "models", "list"))
    assert [(a.name, a.version) for a in registry.aliases.list_for("linear")] == [("production", 2)]

    assert "removed" in ok(maas(tmp_path, "alias", "delete", "linear", "production"))
    assert registry.aliases.list_for("linear") == []
    actions = [e.action for e in registry.audit_log("linear") if e.actor.startswith("cli")]
    assert len(actions) == 3


def test_config_from_a_toml_file_becomes_a_revision(tmp_path: Path, registry: Registry) -> None:
    config = tmp_path / "linear.toml"
    config.write_text(
        "# as in the README\n[batching]\nmax_batch_size = 8\nmax_queue_delay_s = 0.0\n"
        '[instances]\ncount = 1\nkind = "auto"\n'
    )
    shown = ok(maas(tmp_path, "models", "config", "linear", "1", "-f", str(config)))
    assert "config revision 1" in shown and '"max_batch_size": 8' in shown
    revision = registry.get_config("linear", 1)
    assert revision is not None and revision.actor.startswith("cli")

    config.write_text("[batching]\nmax_batch_size = -1\n")
    line = one_error_line(maas(tmp_path, "models", "config", "linear", "1", "-f", str(config)))
    assert "batching.max_batch_size" in line
    assert len(registry.list_configs("linear", 1)) == 1

    # One field at a time, on top of the version's own config: a second revision.
    shown = ok(
        maas(tmp_path, "models", "config", "linear", "1", "--set", "batching.max_queue_size=7")
    )
    assert "config revision 2" in shown
    document = json.loads(ok(maas(tmp_path, "models", "config", "linear", "1", "--json")))
    assert document["config"]["batching"]["max_queue_size"] == 7
    assert document["config"]["batching"]["max_batch_size"] == 8  # kept from revision 1


def test_compare_lines_up_two_versions_metrics(
    tmp_path: Path, registry: Registry, linear_file: Path
) -> None:
    assert "neither version has metrics" in ok(
        maas(tmp_path, "models", "compare", "linear", "1", "2")
    )
    version = registry.resolve("linear", "1")
    for accuracy in (0.90, 0.95):
        registry.register_version(
            "linear",
            linear_file,
            artifact_format="onnx",
            signature=version.signature,
            metrics={"accuracy": accuracy, "evaluation": {"confusion_matrix": [[1]]}},
            actor="t",
        )
    shown = ok(maas(tmp_path, "models", "compare", "linear", "3", "4"))
    assert "accuracy" in shown and "0.9000" in shown and "0.9500" in shown and "+0.0500" in shown
    assert "confusion_matrix" not in shown
    assert "not found" in one_error_line(maas(tmp_path, "models", "compare", "linear", "1", "9"))


def test_gate_from_the_cli_refuses_then_forces_a_promotion(
    tmp_path: Path, registry: Registry
) -> None:
    rules = tmp_path / "gate.json"
    rules.write_text('{"rules": [{"metric": "accuracy", "min": 0.95}]}')
    assert '"min": 0.95' in ok(maas(tmp_path, "models", "gate", "linear", "-f", str(rules)))
    line = one_error_line(maas(tmp_path, "alias", "set", "linear", "production", "1"))
    assert "fails its validation gate" in line and "no accuracy metric" in line
    assert registry.aliases.list_for("linear") == []
    forced = maas(
        tmp_path, "alias", "set", "linear", "production", "1", "--force", "--reason", "demo"
    )
    assert "production" in ok(forced)
    assert registry.audit_log("linear")[0].details["reason"] == "demo"


def test_alias_to_a_missing_version_is_refused(tmp_path: Path, registry: Registry) -> None:
    line = one_error_line(maas(tmp_path, "alias", "set", "linear", "production", "9"))
    assert "version 9" in line
    assert registry.aliases.list_for("linear") == []


def test_alias_with_a_bad_name_is_refused(tmp_path: Path, registry: Registry) -> None:
    line = one_error_line(maas(tmp_path, "alias", "set", "linear", "Bad Alias", "1"))
    assert "alias name" in line and "Bad Alias" in line
    assert registry.aliases.list_for("linear") == []


# -- train ------------------------------------------------------------------------------------


def test_train_registers_a_version_with_metrics(tmp_path: Path, home: Path) -> None:
    pytest.importorskip("torch")
    out = ok(maas(tmp_path, "train", "--epochs", "3", "--name", "quick", timeout_s=120))
    assert "accuracy" in out
    assert "registered quick version 1" in out
    registry = open_registry(home)
    try:
        [version] = registry.list_versions("quick")
        assert version.version == 1
        assert version.lineage["hyperparameters"]["epochs"] == 3
        assert "accuracy" in version.metrics
    finally:
        registry.close()


def test_train_on_an_unknown_dataset_names_the_dataset(tmp_path: Path, home: Path) -> None:
    pytest.importorskip("torch")
    line = one_error_line(maas(tmp_path, "train", "--dataset", "nope", "--name", "nope"))
    assert "dataset" in line and "nope" in line


# -- evaluate and download ---------------------------------------------------------------------


def _evaluations(registry: Registry, name: str) -> list[dict[str, Any]]:
    return [e.details for e in registry.audit_log(name) if e.action == "version.evaluated"]


def test_evaluate_a_trained_version_reproduces_its_metrics_and_audits(
    tmp_path: Path, home: Path
) -> None:
    pytest.importorskip("torch")
    from maas.training.pipeline import train_job
    from maas.training.spec import parse_spec

    registry = open_registry(home)
    try:
        registry.upgrade()
        trained = train_job(
            registry, parse_spec({"model_name": "quick", "hyperparameters": {"epochs": 3}})
        )
        shown = ok(maas(tmp_path, "evaluate", "quick", "1", "--dataset", "digits"))
        for words in ("validation split, 360 rows", "accuracy", "per class", "confusion matrix"):
            assert words in shown
        report = json.loads(
            ok(maas(tmp_path, "evaluate", "quick", "1", "--dataset", "digits", "--json"))
        )
        # The same rows training held out (same split, same seed): the same numbers.
        recorded = trained.metrics["evaluation"]
        for key in ("accuracy", "f1_macro", "roc_auc_macro", "confusion_matrix", "per_class"):
            assert report[key] == recorded[key], key
        assert report["parameter_count"] == recorded["parameter_count"] > 0
        assert report["dataset"]["sha256"] == trained.lineage["dataset"]["sha256"]
        evaluations = _evaluations(registry, "quick")
        assert len(evaluations) == 2
        assert evaluations[0]["dataset"]["name"] == "digits"
        assert evaluations[0]["metrics"]["accuracy"] == trained.metrics["accuracy"]
        assert registry.get_version("quick", 1) == trained  # metrics untouched

        out = tmp_path / "out"
        out.mkdir()
        ok(
            maas(
                tmp_path,
                "models",
                "download",
                "quick",
                "1",
                "--format",
                "torchscript",
                "-o",
                str(out),
            )
        )
        path = registry.artifact_path(trained, "torchscript")
        assert (out / "quick-1.pt").read_bytes() == path.read_bytes()
        line = one_error_line(
            maas(tmp_path, "models", "download", "quick", "1", "--format", "x", "-o", str(out))
        )
        assert "no 'x' artifact; it has: onnx, torchscript" in line
        assert "torchscript" in ok(maas(tmp_path, "models", "show", "quick", "1"))
    finally:
        registry.close()


def test_evaluate_an_uploaded_onnx_version_on_an_npz_file(
    tmp_path: Path, registry: Registry
) -> None:
    pytest.importorskip("sklearn")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((90, 4)).astype(np.float32)
    y = np.repeat(np.arange(3), 30)
    np.savez(tmp_path / "data.npz", x=x, y=y)

    report = json.loads(
        ok(
            maas(
                tmp_path,
                "evaluate",
                "linear",
                "1",
                "--dataset",
                str(tmp_path / "data.npz"),
                "--json",
            )
        )
    )
    assert report["dataset"] == {
        "name": "data.npz",
        "sha256": report["dataset"]["sha256"],
        "split": "validation",
        "rows": 18,
    }
    assert report["parameter_count"] is None
    assert len(report["confusion_matrix"]) == 3 and report["num_samples"] == 18
    assert 0.0 <= report["accuracy"] <= 1.0
    [audited] = _evaluations(registry, "linear")
    assert audited["metrics"]["accuracy"] == report["accuracy"]
    assert "parameter_count" not in audited["metrics"]


def test_evaluate_refuses_a_dataset_that_does_not_fit_the_signature(
    tmp_path: Path, registry: Registry
) -> None:
    pytest.importorskip("sklearn")
    line = one_error_line(maas(tmp_path, "evaluate", "linear", "1", "--dataset", "digits"))
    assert "samples are [64] but input 'input' takes [-1, 4]" in line
    assert _evaluations(registry, "linear") == []


# -- predict ----------------------------------------------------------------------------------


@pytest.fixture
def server_url(home: Path, registry: Registry) -> Iterator[str]:
    with running_server(Settings(home=home), registry) as url:
        yield url


def test_predict_prints_outputs_and_json_matching_onnxruntime(
    tmp_path: Path, linear_file: Path, server_url: str
) -> None:
    request = tmp_path / "req.json"
    request.write_text(json.dumps(REQUEST))

    table = ok(maas(tmp_path, "--server", server_url, "predict", "linear", "--input", str(request)))
    assert "logits" in table and "FP32" in table

    raw = json.loads(
        ok(maas(tmp_path, "-s", server_url, "predict", "linear", "-i", str(request), "--json"))
    )
    [output] = raw["outputs"]
    assert output["name"] == "logits"
    assert output["shape"] == [2, 3]
    session = ort.InferenceSession(str(linear_file), providers=["CPUExecutionProvider"])
    x = np.asarray(REQUEST["inputs"][0]["data"], dtype=np.float32).reshape(2, 4)
    [expected] = session.run(["logits"], {"input": x})
    np.testing.assert_allclose(
        np.asarray(output["data"], dtype=np.float32), expected.ravel(), rtol=1e-6
    )


def test_predict_with_a_wrong_shape_reports_the_400(tmp_path: Path, server_url: str) -> None:
    request = tmp_path / "bad.json"
    request.write_text(
        json.dumps(
            {
                "inputs": [
                    {"name": "input", "datatype": "FP32", "shape": [1, 3], "data": [1.0, 2.0, 3.0]}
                ]
            }
        )
    )
    line = one_error_line(
        maas(tmp_path, "--server", server_url, "predict", "linear", "-i", str(request))
    )
    assert line.startswith("error: input 'input': shape [1, 3] given, [-1, 4] expected")


def test_predict_without_a_server_cannot_reach_it(tmp_path: Path) -> None:
    request = tmp_path / "req.json"
    request.write_text(json.dumps(REQUEST))
    url = f"http://127.0.0.1:{free_port()}"
    line = one_error_line(maas(tmp_path, "--server", url, "predict", "linear", "-i", str(request)))
    assert "cannot reach" in line and url in line
    # With no --server and nothing answering on this configuration's port: it says so.
    line = one_error_line(maas(tmp_path, "predict", "linear", "-i", str(request)))
    assert "no maas server answers" in line


# -- serve ------------------------------------------------------------------------------------


def test_serve_answers_over_http_and_stops_on_sigterm(tmp_path: Path, registry: Registry) -> None:
    port, grpc_port = free_ports(2)
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [str(MAAS), "serve"],
        cwd=tmp_path,
        env=_env(
            tmp_path / "home",
            MAAS_PORT=str(port),
            MAAS_GRPC_PORT=str(grpc_port),
            MAAS_SHUTDOWN_GRACE_S="0",  # the grace period has tests of its own
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until_ready(url, process, timeout_s=30)
        with httpx.Client(base_url=url, timeout=5) as client:
            response = client.post("/v2/models/linear/infer", json=REQUEST)
            assert response.status_code == 200, response.text
            assert response.json()["outputs"][0]["name"] == "logits"
            assert response.json()["model_version"] == "2"

        os.kill(process.pid, signal.SIGTERM)
        output, _ = process.communicate(timeout=10)
        # A drained stop is the answer to SIGTERM: exit status 0 (tests/e2e/test_graceful_shutdown).
        assert process.returncode == 0, output
        assert "Application shutdown complete" in output
        assert f"serving on {url}" in output
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)


@pytest.mark.parametrize(
    ("url", "words"),
    [
        # Nothing listens on port 1: the driver's connection error, raised while migrating.
        ("postgresql+psycopg://nobody@127.0.0.1:1/x", "Connection refused"),
        # A folder that cannot be made: no maas error at all underneath, still one line.
        ("sqlite:////proc/maas-nowhere/maas.db", "/proc/maas-nowhere"),
    ],
)
def test_an_unusable_registry_database_is_one_error_line(
    tmp_path: Path, url: str, words: str
) -> None:
    """It was a 155-line traceback."""
    line = one_error_line(maas(tmp_path, "models", "list", MAAS_DATABASE_URL=url))
    assert words in line, line
    assert "Traceback" not in line
