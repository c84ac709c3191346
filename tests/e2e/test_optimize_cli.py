"""``maas optimize`` as a user runs it: a real registry, the CLI starting the job's worker
itself (no server), the result compared with its parent and refused requests reported as
one error line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.test_cli import maas, ok, one_error_line, open_registry

pytestmark = pytest.mark.e2e
torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder whose ``home`` holds ``digits`` v1, a CNN trained by ``maas train``."""
    folder = tmp_path_factory.mktemp("cli")
    ok(maas(folder, "train", "--model", "cnn", "--epochs", "4", "-q", timeout_s=240))
    return folder


def test_quantize_follows_the_job_and_compare_shows_the_report(workdir: Path) -> None:
    out = ok(maas(workdir, "optimize", "quantize", "digits:1", "--method", "static", timeout_s=240))
    assert "quantize digits:1, static" in out
    assert "calibrating on 512 rows of digits" in out
    assert "registered digits version 2" in out
    compared = ok(maas(workdir, "models", "compare", "digits", "1", "2"))
    assert "quantize/static: measured side by side on 360 validation rows of digits" in compared
    assert "agreement with the parent" in compared
    assert "size_ratio_vs_parent" in compared


def test_prune_from_a_spec_file_with_overrides(workdir: Path) -> None:
    spec = workdir / "prune.yaml"
    spec.write_text("kind: prune\nparent: digits:1\namount: 0.4\nfine_tune: {epochs: 1}\n")
    version = ok(
        maas(
            workdir,
            "optimize",
            "prune",
            "digits:1",
            "-f",
            str(spec),
            "--set",
            "amount=0.5",
            "-q",
            timeout_s=240,
        )
    ).strip()
    registry = open_registry(workdir / "home")
    try:
        made = registry.get_version("digits", int(version))
    finally:
        registry.close()
    assert made.lineage["spec"]["amount"] == 0.5
    assert made.lineage["spec"]["fine_tune"]["epochs"] == 1
    assert made.metrics["parameter_ratio_vs_parent"] <= 0.5


def test_a_refused_request_is_one_error_line_naming_the_field(workdir: Path) -> None:
    line = one_error_line(maas(workdir, "optimize", "prune", "digits:1", "--amount", "0.9999"))
    assert line.startswith("error: amount: channel pruning can remove at most"), line
    line = one_error_line(maas(workdir, "optimize", "distill", "nothing:production"))
    assert line == "error: teacher: model 'nothing' not found", line
