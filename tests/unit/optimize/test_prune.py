from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from maas.errors import InvalidInputError
from maas.optimize.prune import apply_structure, prune_structured, prune_unstructured
from maas.training.datasets import Dataset, load_digits
from maas.training.export import export_onnx, export_torchscript
from maas.training.trainer import TrainConfig, predict_logits, train
from maas.training.zoo import ClassifierHead, build_model, parameter_count

FAMILIES = ["mlp", "cnn", "resnet"]


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_digits()


@pytest.fixture(scope="module")
def sample(digits: Dataset) -> torch.Tensor:
    return torch.from_numpy(digits.x_val[:16].copy())


def _head(family: str, seed: int = 0) -> ClassifierHead:
    return ClassifierHead(build_model(family, (64,), 10, seed=seed)).eval()


def _weight_bytes(path: Path) -> int:
    return sum(
        int(np.prod(t.dims)) * 4 for t in onnx.load(str(path)).graph.initializer if t.data_type == 1
    )


@pytest.mark.parametrize("amount", [0.3, 0.5])
@pytest.mark.parametrize("family", FAMILIES)
def test_structured_shrinks_the_model_and_its_onnx_export(
    family: str, amount: float, sample: torch.Tensor, tmp_path: Path
) -> None:
    head = _head(family)
    export_onnx(head, sample, tmp_path / "before.onnx", output_names=("logits", "label"))
    result = prune_structured(head, amount, sample)

    assert result.parameters_before == parameter_count(_head(family))
    assert result.parameters_after == parameter_count(head)
    assert result.parameters_after <= (1 - amount) * result.parameters_before
    assert result.parameters_after > (1 - amount - 0.1) * result.parameters_before  # smallest cut
    assert result.structure == {layer["layer"]: layer["after"] for layer in result.layers}
    for layer in result.layers:
        producer = head.get_submodule(layer["layer"])
        assert isinstance(producer, nn.Conv2d | nn.Linear)
        assert layer["after"] == producer.weight.shape[0] < layer["before"], layer
    logits, label = head(sample)
    assert logits.shape == (16, 10) and label.shape == (16,)

    export_onnx(head, sample, tmp_path / "after.onnx", output_names=("logits", "label"))
    kept = result.parameters_after / result.parameters_before
    weights = _weight_bytes(tmp_path / "after.onnx") / _weight_bytes(tmp_path / "before.onnx")
    size = (tmp_path / "after.onnx").stat().st_size / (tmp_path / "before.onnx").stat().st_size
    assert abs(weights - kept) < 0.02, f"weights {weights:.3f} vs parameters {kept:.3f}"
    assert size < kept + 0.1, f"file {size:.3f} vs parameters {kept:.3f}"
    session = ort.InferenceSession(str(tmp_path / "after.onnx"), providers=["CPUExecutionProvider"])
    onnx_logits, onnx_label = session.run(["logits", "label"], {"input": sample.numpy()})
    np.testing.assert_allclose(onnx_logits, logits.detach().numpy(), rtol=0, atol=1e-5)
    np.testing.assert_array_equal(onnx_label, label.numpy())


@pytest.mark.parametrize("family", FAMILIES)
def test_apply_structure_rebuilds_the_pruned_model(family: str, sample: torch.Tensor) -> None:
    pruned = _head(family)
    structure = prune_structured(pruned, 0.5, sample).structure
    rebuilt = _head(family, seed=1)
    apply_structure(rebuilt, structure, sample)
    rebuilt.load_state_dict(pruned.state_dict(), strict=True)
    rebuilt.eval()
    with torch.no_grad():
        assert torch.equal(rebuilt(sample)[0], pruned(sample)[0])


def test_resnet_prunes_only_the_inner_block_channels(sample: torch.Tensor) -> None:
    result = prune_structured(_head("resnet"), 0.5, sample)
    assert sorted(result.structure) == ["model.4.body.0", "model.5.body.0", "model.6.body.0"]
    assert result.to_dict()["layers"][0] == {"layer": "model.4.body.0", "before": 16, "after": 8}


def test_pruning_leaves_modes_and_statistics_alone(sample: torch.Tensor, tmp_path: Path) -> None:
    head = _head("cnn").train()
    prune_structured(head, 0.5, sample)
    assert all(m.training for m in head.modules())
    norm = head.get_submodule("model.2")
    assert isinstance(norm, nn.BatchNorm2d) and norm.num_features == 22
    assert norm.running_mean is not None and not norm.running_mean.any()  # no train-mode pass
    assert norm.num_batches_tracked is not None and int(norm.num_batches_tracked) == 0
    export_torchscript(head, sample, tmp_path / "pruned.pt")


def test_an_unreachable_amount_is_refused_with_the_maximum(sample: torch.Tensor) -> None:
    with pytest.raises(InvalidInputError) as caught:
        prune_structured(_head("resnet"), 0.95, sample)
    assert caught.value.message.startswith(
        "amount: channel pruning can remove at most 0.93 of this model's parameters"
    )
    assert caught.value.details["field"] == "amount"


@pytest.mark.parametrize("structured", [True, False])
@pytest.mark.parametrize("amount", [0.0, 1.0, 1.5, -0.1, float("nan")])
def test_amounts_outside_zero_one_are_refused(
    amount: float, structured: bool, sample: torch.Tensor
) -> None:
    with pytest.raises(InvalidInputError, match=r"^amount: ") as caught:
        if structured:
            prune_structured(_head("mlp"), amount, sample)
        else:
            prune_unstructured(_head("mlp"), amount)
    assert caught.value.details["field"] == "amount"


class _Branchy(nn.Module):
    """Data-dependent control flow: torch.fx cannot trace it."""

    def __init__(self) -> None:
        super().__init__()
        self.first, self.second = nn.Linear(64, 32), nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = self.first(x)
        if hidden.sum() > 0:
            hidden = hidden.relu()
        return self.second(hidden)  # type: ignore[no-any-return]  # nn.Module call is Any


class _Shared(nn.Module):
    """A layer called twice shares its channels with both calls: not prunable."""

    def __init__(self) -> None:
        super().__init__()
        self.first, self.square = nn.Linear(64, 16), nn.Linear(16, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.square(self.square(self.first(x)).relu())  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("model", "reason"),
    [
        (_Branchy(), "method: structured pruning needs a model torch.fx can trace"),
        (nn.Sequential(nn.Linear(64, 10)), "method: structured pruning found no prunable"),
        (_Shared(), "method: structured pruning found no prunable"),
    ],
)
def test_a_model_without_prunable_channels_is_refused(
    model: nn.Module, reason: str, sample: torch.Tensor
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        prune_structured(ClassifierHead(model), 0.3, sample)
    assert caught.value.message.startswith(reason)
    assert caught.value.details == {"field": "method"}


class _Functional(nn.Module):
    """Channel-wise ops written as functions and methods, a flatten of a 1x1 map."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.norm = nn.Conv2d(1, 24, 3, padding=1), nn.BatchNorm2d(24)
        self.head = nn.Linear(24, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = F.max_pool2d(F.relu(self.norm(self.conv(x.view(-1, 1, 8, 8)))), 2)
        pooled = F.adaptive_avg_pool2d(hidden.sigmoid(), 1)
        return self.head(torch.flatten(pooled, 1))  # type: ignore[no-any-return]


def test_functional_channelwise_ops_are_followed(sample: torch.Tensor) -> None:
    model = _Functional()
    result = prune_structured(model, 0.4, sample)
    assert result.structure == {"conv": 14}
    assert model(sample).shape == (16, 10)


def test_apply_structure_refuses_unknown_layers_and_widths(sample: torch.Tensor) -> None:
    for structure in ({"model.9": 4}, {"model.4.body.3": 4}, {"model.4.body.0": 17}):
        with pytest.raises(InvalidInputError, match=r"^structure: ") as caught:
            apply_structure(_head("resnet"), structure, sample)
        assert caught.value.details["field"] == "structure"


@pytest.mark.parametrize("family", FAMILIES)
def test_unstructured_zeroes_the_fraction_asked(family: str, sample: torch.Tensor) -> None:
    head = _head(family)
    result = prune_unstructured(head, 0.5)
    weights = [m.weight for m in head.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    zeros = sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)
    assert 0.5 <= zeros < 0.51
    assert result.parameters_after == result.parameters_before == parameter_count(head)
    assert result.nonzero_after < result.nonzero_before
    assert result.structure == {} and len(result.layers) == len(weights)
    assert all(not hasattr(m, "weight_orig") for m in head.modules())  # made permanent
    assert head(sample)[0].shape == (16, 10)


def test_a_trained_cnn_pruned_by_half_recovers_with_fine_tuning(digits: Dataset) -> None:
    def accuracy(model: nn.Module) -> float:
        return float((predict_logits(model, digits.x_val).argmax(1) == digits.y_val).mean())

    model = build_model("cnn", (64,), 10, seed=0)
    train(model, digits, TrainConfig(epochs=8))
    trained = accuracy(model)
    result = prune_structured(ClassifierHead(model), 0.5, torch.from_numpy(digits.x_val[:8].copy()))
    pruned = accuracy(model)
    train(model, digits, TrainConfig(epochs=3))
    tuned = accuracy(model)
    figures = (
        f"trained {trained:.3f}, pruned {pruned:.3f}, fine-tuned {tuned:.3f}; "
        f"parameters {result.parameters_before} -> {result.parameters_after}"
    )
    assert trained > 0.95, figures
    assert tuned >= trained - 0.03, figures
