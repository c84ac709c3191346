from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from maas.protocol.signature import Signature, TensorSpec


@pytest.fixture
def signature() -> Signature:
    return Signature(
        inputs=(TensorSpec("input", "FP32", (-1, 4)),),
        outputs=(TensorSpec("probabilities", "FP32", (-1, 3)),),
    )


@pytest.fixture
def make_artifact(tmp_path: Path) -> Callable[..., Path]:
    """Write ``data`` to a fresh file outside the store; the registry does not parse it."""
    counter = iter(range(1_000_000))

    def make(data: bytes = b"fake onnx") -> Path:
        path = tmp_path / f"model-{next(counter)}.onnx"
        path.write_bytes(data)
        return path

    return make
