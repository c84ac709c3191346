"""The two benchmark models, built in code (no downloads) and exported to ONNX.

- ``cnn``: a ResNet-18-sized CNN (the standard ResNet-18 layout in plain torch, random
  weights from a fixed seed): input ``input`` FP32 [-1, 3, 224, 224] -> ``logits`` [-1, 1000].
- ``mlp``: 64 -> 256 -> 256 -> 10 with ReLU: input ``input`` FP32 [-1, 64] -> ``logits``.

Both have a dynamic batch dimension. Files are cached under ``benchmarks/.cache/``.

    .venv/bin/python benchmarks/models.py     # writes and prints both paths
"""

from __future__ import annotations

import warnings
from pathlib import Path

CACHE_DIR = Path(__file__).resolve().parent / ".cache"
SEED = 0

#: name -> per-item input shape (without the batch dimension)
INPUT_SHAPES: dict[str, tuple[int, ...]] = {"cnn": (3, 224, 224), "mlp": (64,)}
MODELS = tuple(INPUT_SHAPES)


def _build(name: str, seed: int = SEED):  # type: ignore[no-untyped-def]  # torch is lazy
    import torch
    from torch import nn

    class BasicBlock(nn.Module):
        def __init__(self, c_in: int, c_out: int, stride: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(c_out)
            self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(c_out)
            self.relu = nn.ReLU(inplace=True)
            self.down: nn.Module = nn.Identity()
            if stride != 1 or c_in != c_out:
                self.down = nn.Sequential(
                    nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)
                )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.relu(self.bn1(self.conv1(x)))
            y = self.bn2(self.conv2(y))
            return self.relu(y + self.down(x))

    torch.manual_seed(seed)
    if name == "mlp":
        return nn.Sequential(
            nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10)
        )
    layers: list[nn.Module] = [
        nn.Conv2d(3, 64, 7, 2, 3, bias=False),
        nn.BatchNorm2d(64),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2, 1),
    ]
    c_in = 64
    for i, c_out in enumerate([64, 128, 256, 512]):
        stride = 1 if i == 0 else 2
        layers += [BasicBlock(c_in, c_out, stride), BasicBlock(c_out, c_out, 1)]
        c_in = c_out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, 1000)]
    return nn.Sequential(*layers)


def model_path(name: str, cache_dir: Path = CACHE_DIR, seed: int = SEED) -> Path:
    """The ONNX file of model ``name`` ("cnn" or "mlp"), exported on first use.

    Another ``seed`` gives other weights (distinct versions for the memory check)."""
    if name not in INPUT_SHAPES:
        raise ValueError(f"unknown benchmark model {name!r}; choose from {MODELS}")
    path = cache_dir / (f"{name}.onnx" if seed == SEED else f"{name}-seed{seed}.onnx")
    if path.exists():
        return path
    import torch

    cache_dir.mkdir(parents=True, exist_ok=True)
    module = _build(name, seed).eval()
    example = torch.zeros((1, *INPUT_SHAPES[name]), dtype=torch.float32)
    tmp = path.with_suffix(".tmp.onnx")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the legacy exporter is fine here
        torch.onnx.export(
            module,
            (example,),
            str(tmp),
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
    tmp.replace(path)
    return path


if __name__ == "__main__":
    for model in MODELS:
        print(model_path(model))
