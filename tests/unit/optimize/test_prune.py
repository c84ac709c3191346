from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from maas.errors import InvalidInputError
from maas.optimize import channels, prune, widths
from maas.optimize.prune import apply_structure, prune_structured, prune_unstructured
from maas.optimize.spec import PruneSpec
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


def _matches_its_export(model: nn.Module, sample: torch.Tensor, path: Path) -> None:
    export_onnx(model, sample, path, output_names=("logits", "label"))
    logits, label = model(sample)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    onnx_logits, onnx_label = session.run(["logits", "label"], {"input": sample.numpy()})
    np.testing.assert_allclose(onnx_logits, logits.detach().numpy(), rtol=0, atol=1e-5)
    np.testing.assert_array_equal(onnx_label, label.numpy())


@pytest.mark.parametrize(("amount", "multiple"), [(0.3, 8), (0.5, 8), (0.5, 1)])
@pytest.mark.parametrize("family", FAMILIES)
def test_structured_shrinks_the_model_and_its_onnx_export(
    family: str, amount: float, multiple: int, sample: torch.Tensor, tmp_path: Path
) -> None:
    head = _head(family)
    export_onnx(head, sample, tmp_path / "before.onnx", output_names=("logits", "label"))
    result = prune_structured(head, amount, sample, multiple=multiple)

    assert result.parameters_before == parameter_count(_head(family))
    assert result.parameters_after == parameter_count(head)
    assert result.parameters_after <= (1 - amount) * result.parameters_before
    assert result.parameters_after > (1 - amount - 0.1) * result.parameters_before  # smallest cut
    assert result.structure == {layer["layer"]: layer["after"] for layer in result.layers}
    for layer in result.layers:
        producer = head.get_submodule(layer["layer"])
        assert isinstance(producer, nn.Conv2d | nn.Linear)
        assert layer["after"] == producer.weight.shape[0] < layer["before"], layer
        assert layer["after"] % multiple == 0, layer
    logits, label = head(sample)
    assert logits.shape == (16, 10) and label.shape == (16,)

    _matches_its_export(head, sample, tmp_path / "after.onnx")
    kept = result.parameters_after / result.parameters_before
    weights = _weight_bytes(tmp_path / "after.onnx") / _weight_bytes(tmp_path / "before.onnx")
    size = (tmp_path / "after.onnx").stat().st_size / (tmp_path / "before.onnx").stat().st_size
    assert abs(weights - kept) < 0.02, f"weights {weights:.3f} vs parameters {kept:.3f}"
    assert size < kept + 0.1, f"file {size:.3f} vs parameters {kept:.3f}"


@pytest.mark.parametrize(
    ("family", "multiple", "structure", "removed"),
    [
        ("mlp", 1, {"model.1": 78, "model.3": 39}, 0.504),  # the exact uniform fraction
        ("mlp", 8, {"model.1": 80, "model.3": 32}, 0.529),
        ("cnn", 1, {"model.1": 22, "model.5": 44}, 0.514),
        ("cnn", 8, {"model.1": 24, "model.5": 40}, 0.519),  # rounding alone: 24/48 0.43, 16/32 0.74
        ("cnn", 16, {"model.1": 16, "model.5": 48}, 0.606),  # the least of {16,32} x {16..64}
        ("resnet", 16, {"model.5.body.0": 16, "model.6.body.0": 16}, 0.624),  # 16 wide: kept
    ],
)
def test_widths_are_multiples_that_remove_the_amount_with_little_overshoot(
    family: str, multiple: int, structure: dict[str, int], removed: float, sample: torch.Tensor
) -> None:
    result = prune_structured(_head(family), 0.5, sample, multiple=multiple)
    assert result.structure == structure
    assert round(1 - result.parameters_after / result.parameters_before, 3) == removed


def test_the_default_multiple_is_sixteen_in_the_pruner_and_the_job_spec(
    sample: torch.Tensor,
) -> None:
    default = inspect.signature(prune_structured).parameters["multiple"].default
    assert default == PruneSpec.model_fields["channel_multiple"].default == 16
    assert prune_structured(_head("cnn"), 0.5, sample).structure == {"model.1": 16, "model.5": 48}


def test_the_modules_name_their_public_names() -> None:
    assert prune.__all__ == [
        "PruningResult",
        "apply_structure",
        "prune_structured",
        "prune_unstructured",
    ]
    assert channels.__all__ == [
        "Group",
        "find_groups",
        "get_layer",
        "get_norm",
        "shrink",
        "strongest",
    ]
    assert widths.__all__ == ["count_parameters", "kept_widths"]


def test_a_layer_not_wider_than_the_multiple_keeps_its_width(sample: torch.Tensor) -> None:
    head = ClassifierHead(build_model("cnn", (64,), 10, {"channels": [8, 64]}, seed=0))
    result = prune_structured(head, 0.3, sample, multiple=8)
    assert list(result.structure) == ["model.5"] and result.structure["model.5"] % 8 == 0
    assert head.get_submodule("model.1").out_channels == 8
    with pytest.raises(InvalidInputError, match=r"^amount: .* at most 0\.00 .* multiples of 64"):
        prune_structured(_head("cnn"), 0.3, sample, multiple=64)


@pytest.mark.parametrize("multiple", [0, -8, True, 8.0])
def test_multiples_that_are_not_positive_integers_are_refused(
    multiple: int, sample: torch.Tensor
) -> None:
    with pytest.raises(InvalidInputError, match=r"^multiple: ") as caught:
        prune_structured(_head("mlp"), 0.5, sample, multiple=multiple)
    assert caught.value.details["field"] == "multiple"


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
    result = prune_structured(_head("resnet"), 0.5, sample, multiple=8)
    assert sorted(result.structure) == ["model.4.body.0", "model.5.body.0", "model.6.body.0"]
    assert result.to_dict()["layers"][0] == {"layer": "model.4.body.0", "before": 16, "after": 8}


def test_pruning_leaves_modes_and_statistics_alone(sample: torch.Tensor, tmp_path: Path) -> None:
    head = _head("cnn").train()
    prune_structured(head, 0.5, sample, multiple=8)
    assert all(m.training for m in head.modules())
    norm = head.get_submodule("model.2")
    assert isinstance(norm, nn.BatchNorm2d) and norm.num_features == 24
    assert norm.running_mean is not None and not norm.running_mean.any()  # no train-mode pass
    assert norm.num_batches_tracked is not None and int(norm.num_batches_tracked) == 0
    export_torchscript(head, sample, tmp_path / "pruned.pt")


@pytest.mark.parametrize(
    ("multiple", "refusal"),
    [
        (1, "at most 0.93 of this model's parameters (asked 0.95)"),
        (8, "at most 0.78 of this model's parameters with widths in multiples of 8 (asked 0.95)"),
        (16, "at most 0.62 of this model's parameters with widths in multiples of 16 (asked 0.95)"),
    ],
)
def test_an_unreachable_amount_is_refused_with_the_maximum(
    multiple: int, refusal: str, sample: torch.Tensor
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        prune_structured(_head("resnet"), 0.95, sample, multiple=multiple)
    assert caught.value.message.startswith(f"amount: channel pruning can remove {refusal}")
    assert caught.value.details["field"] == "amount"
    most = float(refusal.split()[2])
    prune_structured(_head("resnet"), most, sample, multiple=multiple)  # the maximum is reachable


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


class _SharedNorm(nn.Module):
    """A batch norm reached from two call sites holds state both share: not prunable."""

    def __init__(self) -> None:
        super().__init__()
        self.first, self.second = nn.Linear(64, 16), nn.Linear(16, 16)
        self.norm, self.head = nn.BatchNorm1d(16), nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = self.norm(self.second(self.norm(self.first(x)).relu()))
        return self.head(hidden.relu())  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("model", "reason"),
    [
        (_Branchy(), "method: structured pruning needs a model torch.fx can trace"),
        (nn.Sequential(nn.Linear(64, 10)), "method: structured pruning found no prunable"),
        (_Shared(), "method: structured pruning found no prunable"),
        (_SharedNorm(), "method: structured pruning found no prunable"),
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
    result = prune_structured(model, 0.4, sample, multiple=1)
    assert result.structure == {"conv": 14}
    assert model(sample).shape == (16, 10)


class _TorchvisionBlock(nn.Module):
    """torchvision's BasicBlock: one ``self.relu`` called twice, a downsample shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample: nn.Module | None = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)  # type: ignore[no-any-return]


def _torchvision_resnet(seed: int = 0) -> nn.Module:
    """A tiny torchvision-layout ResNet on digits (the benchmark's cnn, shrunk)."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Unflatten(1, (1, 8, 8)),
        nn.Conv2d(1, 16, 3, 1, 1, bias=False),
        nn.BatchNorm2d(16),
        nn.ReLU(inplace=True),
        _TorchvisionBlock(16, 16, 1),
        _TorchvisionBlock(16, 32, 2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, 10),
    )


def test_a_stateless_module_reused_at_two_call_sites_is_followed(
    sample: torch.Tensor, tmp_path: Path
) -> None:
    head = ClassifierHead(_torchvision_resnet()).eval()
    result = prune_structured(head, 0.4, sample, multiple=8)
    assert result.structure == {"model.4.conv1": 8, "model.5.conv1": 16}  # 16, 32 before
    assert result.parameters_after <= 0.6 * result.parameters_before
    logits, label = head(sample)
    assert logits.shape == (16, 10) and label.shape == (16,)
    _matches_its_export(head, sample, tmp_path / "pruned.onnx")
    rebuilt = ClassifierHead(_torchvision_resnet(seed=1))
    apply_structure(rebuilt, result.structure, sample)
    rebuilt.load_state_dict(head.state_dict(), strict=True)
    with torch.no_grad():
        assert torch.equal(rebuilt.eval()(sample)[0], logits)


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
