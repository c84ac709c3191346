"""A trained version is registered with its input reference: the statistics of the
training split's inputs, recorded in the same transaction and audited."""

from __future__ import annotations

from maas.monitoring.drift import Reference, score
from maas.registry import Registry
from maas.training.datasets import load_digits
from maas.training.pipeline import train_job
from maas.training.spec import parse_spec


def test_a_trained_version_gets_the_reference_of_its_training_split(registry: Registry) -> None:
    spec = parse_spec(
        {
            "model_name": "digits",
            "model": {"name": "mlp", "options": {"hidden": [16]}},
            "hyperparameters": {"epochs": 1, "seed": 3},
        }
    )
    version = train_job(registry, spec)

    stored = registry.references.get("digits", version.version)
    assert stored is not None and (stored.revision, stored.actor) == (1, "train")
    reference = Reference.from_dict(stored.document)
    digits = load_digits(seed=3)
    assert reference.rows == len(digits.x_train) == 1437
    assert reference.source.to_dict() == {
        "kind": "training",
        "description": "the training split of digits",
        "dataset": "digits",
        "sha256": digits.content_sha256,
        "split": "train",
    }
    assert [i.name for i in reference.inputs] == [version.signature.inputs[0].name] == ["input"]
    assert len(reference.features) == 64 and reference.features[12].name == "input[12]"
    # The held-out split of the same data is quiet against it.
    held_out = score(reference, reference.extract([{"input": digits.x_val}]))
    assert held_out.score is not None and held_out.drifted is False

    (event,) = registry.audit_log("digits", action="reference.set")
    assert event.version == version.version and event.actor == "train"
    assert event.details["rows"] == 1437 and event.details["source"]["split"] == "train"
    assert event.details["revision"] == 1 and event.details["replaced"] is None
