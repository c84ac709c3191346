"""The rules a server applies to specs submitted over HTTP (jobs/policy.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from maas.config import Settings
from maas.errors import InvalidInputError
from maas.jobs.kinds import parse_job
from maas.jobs.policy import SubmissionPolicy
from maas.optimize.parents import Parent
from maas.optimize.spec import QuantizeSpec
from maas.training.language.spec import LanguageModelSpec
from maas.training.spec import parse_spec


def _csv_spec(path: Path, model: str = "mlp") -> dict[str, object]:
    return {
        "model": {"name": model},
        "dataset": {"kind": "csv", "path": str(path), "label_column": "y"},
    }


def test_paths_below_a_data_folder_pass_resolved(tmp_path: Path) -> None:
    policy = SubmissionPolicy(data_dirs=(tmp_path.resolve(),), factory_modules=())
    spec = policy.apply(parse_spec(_csv_spec(tmp_path / "sub" / ".." / "d.csv")))
    assert spec.dataset.path == (tmp_path / "d.csv").resolve()


@pytest.mark.parametrize("relative", ["../d.csv", "sub/../../d.csv"])
def test_paths_that_climb_out_are_refused(tmp_path: Path, relative: str) -> None:
    allowed = tmp_path / "data"
    allowed.mkdir()
    policy = SubmissionPolicy(data_dirs=(allowed.resolve(),), factory_modules=())
    with pytest.raises(InvalidInputError) as caught:
        policy.apply(parse_spec(_csv_spec(allowed / relative)))
    assert caught.value.details["field"] == "dataset.path"


@pytest.mark.parametrize(
    ("model", "allowed"),
    [("mypkg.models:build", True), ("mypkg:build", True), ("mypkgx:build", False),
     ("os:system", False), ("cnn", True)],
)  # fmt: skip
def test_factories_come_only_from_the_named_packages(model: str, allowed: bool) -> None:
    policy = SubmissionPolicy(data_dirs=None, factory_modules=("mypkg",))
    spec = parse_spec({"model": {"name": model}})
    if allowed:
        assert policy.apply(spec) == spec
    else:
        with pytest.raises(InvalidInputError, match="MAAS_JOB_FACTORY_MODULES"):
            policy.apply(spec)


def test_the_server_default_is_its_working_folder_and_no_factories(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    policy = SubmissionPolicy.for_server(Settings(home=tmp_path / "h"))
    assert policy == SubmissionPolicy(
        data_dirs=(tmp_path.resolve(),), factory_modules=(), require_absolute_paths=True
    )


def test_a_local_run_may_read_and_import_anything(tmp_path: Path) -> None:
    spec = parse_spec(_csv_spec(Path("/anywhere/d.csv"), model="os:system"))
    assert SubmissionPolicy().apply(spec) == spec


def test_over_the_network_dataset_paths_must_be_absolute(tmp_path: Path) -> None:
    policy = SubmissionPolicy(data_dirs=(tmp_path,), require_absolute_paths=True)
    with pytest.raises(InvalidInputError, match="must be an absolute path") as refused:
        policy.apply(parse_spec(_csv_spec(Path("d.csv"))))
    assert refused.value.details["field"] == "dataset.path"


def test_a_refusal_names_the_field_and_the_setting_never_the_servers_folders(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    allowed = tmp_path / "data-folder-of-the-server"
    allowed.mkdir()
    policy = SubmissionPolicy(data_dirs=(allowed.resolve(),), require_absolute_paths=True)
    with (
        caplog.at_level("INFO", logger="maas.jobs.policy"),
        pytest.raises(InvalidInputError) as refused,
    ):
        policy.apply(parse_spec(_csv_spec(tmp_path / "elsewhere" / "d.csv")))
    error = refused.value
    assert error.message.startswith("dataset.path: ")
    assert "MAAS_JOB_DATA_DIRS" in error.message
    assert allowed.name not in error.message
    assert error.details == {"field": "dataset.path"}
    assert allowed.name in caplog.text  # the whole reason is in the server's log


def _parent(model: str = "cnn") -> Parent:
    return Parent("digits", 1, ("onnx", "torchscript"), (64,), 10, {"model": {"name": model}})


def test_every_data_set_of_an_optimisation_is_checked(tmp_path: Path) -> None:
    allowed = tmp_path / "data"
    allowed.mkdir()
    policy = SubmissionPolicy(data_dirs=(allowed.resolve(),), factory_modules=())
    inside = {"kind": "npz", "path": str(allowed / "a" / ".." / "rows.npz")}
    outside = {"kind": "npz", "path": str(tmp_path / "rows.npz")}
    spec = parse_job(
        {"kind": "quantize", "parent": "digits:1", "method": "static", "calibration": inside}
    )
    resolved = policy.apply(spec, _parent())
    assert isinstance(resolved, QuantizeSpec) and resolved.calibration is not None
    assert resolved.calibration.path == (allowed / "rows.npz").resolve()
    for field in ("calibration", "evaluation"):
        document = {"kind": "quantize", "parent": "digits:1", field: outside}
        with pytest.raises(InvalidInputError) as caught:
            policy.apply(parse_job(document), _parent())
        assert caught.value.details["field"] == f"{field}.path"


def test_a_students_and_a_parents_factory_must_come_from_allowed_packages() -> None:
    policy = SubmissionPolicy(data_dirs=None, factory_modules=("mypkg",))
    student = parse_job(
        {"kind": "distill", "teacher": "digits:1", "student": {"name": "other.nets:small"}}
    )
    with pytest.raises(InvalidInputError) as caught:
        policy.apply(student, _parent())
    assert caught.value.details["field"] == "student.name"
    pruning = parse_job({"kind": "prune", "parent": "digits:1"})
    with pytest.raises(InvalidInputError) as caught:
        policy.apply(pruning, _parent("other.nets:big"))
    assert caught.value.details["field"] == "parent"
    assert policy.apply(pruning, _parent("mypkg.nets:big")) == pruning


def test_a_language_models_corpus_must_lie_in_a_data_folder(tmp_path: Path) -> None:
    allowed = tmp_path / "data"
    allowed.mkdir()
    policy = SubmissionPolicy(data_dirs=(allowed.resolve(),), factory_modules=())
    inside = parse_job(
        {"kind": "language-model", "corpus": {"kind": "text", "path": str(allowed / "t.txt")}}
    )
    assert isinstance(inside, LanguageModelSpec)
    assert policy.apply(inside).corpus.path == (allowed / "t.txt").resolve()
    outside = parse_job(
        {"kind": "language-model", "corpus": {"kind": "text", "path": str(tmp_path / "t.txt")}}
    )
    with pytest.raises(InvalidInputError) as caught:
        policy.apply(outside)
    assert caught.value.details["field"] == "corpus.path"
    builtin = parse_job({"kind": "language-model"})
    assert policy.apply(builtin) == builtin
