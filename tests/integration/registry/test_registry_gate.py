"""The validation gate: production refuses versions that fail their model's rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from maas.errors import GateFailedError, InvalidInputError
from maas.protocol.signature import Signature, TensorSpec
from maas.registry import Registry

SIGNATURE = Signature((TensorSpec("x", "FP32", (-1, 2)),), (TensorSpec("y", "FP32", (-1, 2)),))


def _version(registry: Registry, tmp_path: Path, accuracy: float | None) -> int:
    artifact = tmp_path / "a.bin"
    artifact.write_bytes(b"bytes")
    metrics = {} if accuracy is None else {"accuracy": accuracy}
    return registry.register_version(
        "m", artifact, artifact_format="onnx", signature=SIGNATURE, metrics=metrics, actor="t"
    ).version


def test_ungated_promotion_is_refused_with_the_failed_rules(
    registry: Registry, tmp_path: Path
) -> None:
    good, worse, bad, blank = (_version(registry, tmp_path, a) for a in (0.97, 0.955, 0.90, None))
    registry.set_gate(
        "m",
        [
            {"metric": "accuracy", "min": 0.95},
            {"metric": "accuracy", "max_drop_vs_production": 0.01},
        ],
        actor="t",
    )
    registry.aliases.set("m", "production", good, actor="t")

    with pytest.raises(GateFailedError) as refused:
        registry.aliases.set("m", "production", bad, actor="t")
    assert any("< min 0.95" in rule for rule in refused.value.details["failed"])
    with pytest.raises(GateFailedError, match="below production"):
        registry.aliases.set("m", "production", worse, actor="t")
    with pytest.raises(GateFailedError, match="no accuracy metric"):
        registry.aliases.set("m", "production", blank, actor="t")
    assert registry.resolve("m").version == good  # nothing moved
    registry.aliases.set("m", "staging", bad, actor="t")  # the gate guards production only


def test_forcing_needs_a_reason_and_is_audited(registry: Registry, tmp_path: Path) -> None:
    bad = _version(registry, tmp_path, 0.5)
    registry.set_gate("m", [{"metric": "accuracy", "min": 0.9}], actor="t")
    with pytest.raises(InvalidInputError, match="reason"):
        registry.aliases.set("m", "production", bad, actor="t", force=True)
    registry.aliases.set("m", "production", bad, actor="ops", force=True, reason="hotfix #12")
    event = registry.audit_log("m")[0]
    assert event.action == "alias.set" and event.actor == "ops"
    assert event.details["forced"] is True and event.details["reason"] == "hotfix #12"
    assert event.details["failed"] == ["accuracy 0.5 < min 0.9"]


@pytest.mark.parametrize(
    ("rules", "fragment"),
    [
        ("accuracy >= 0.9", "rules: must be a list"),
        ([{"min": 0.9}], "rules[0].metric"),
        ([{"metric": "accuracy"}], "exactly one of"),
        ([{"metric": "accuracy", "min": "high"}], "rules[0].min: must be a number"),
    ],
)
def test_bad_rules_are_refused(
    registry: Registry, tmp_path: Path, rules: object, fragment: str
) -> None:
    _version(registry, tmp_path, 0.9)
    with pytest.raises(InvalidInputError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        registry.set_gate("m", rules, actor="t")
    assert registry.get_gate("m") == []
