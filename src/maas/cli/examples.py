"""The example request that ``maas quickstart`` prints a curl for."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Example", "write_digits_example"]


@dataclass(frozen=True, slots=True)
class Example:
    path: Path
    label: int


def write_digits_example(path: Path, index: int = 0) -> Example:
    """Write a V2 request holding one held-out digit image (8x8, scaled to [0, 1])."""
    from maas.training.datasets import load_digits

    dataset = load_digits()
    image, label = dataset.x_val[index], int(dataset.y_val[index])
    request = {
        "inputs": [
            {
                "name": "input",
                "datatype": "FP32",
                "shape": [1, int(image.size)],
                "data": [round(float(v), 6) for v in image.ravel()],
            }
        ]
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(request) + "\n")
    return Example(path.absolute(), label)
