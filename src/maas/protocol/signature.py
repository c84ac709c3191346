"""What a model takes and returns: names, V2 datatypes and shapes (-1 = variable dim)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from maas.errors import InvalidInputError
from maas.protocol.datatypes import DATATYPES

__all__ = ["Signature", "TensorSpec"]


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """One named input or output.

    >>> TensorSpec("input", "FP32", (-1, 64)).to_dict()
    {'name': 'input', 'datatype': 'FP32', 'shape': [-1, 64]}
    """

    name: str
    datatype: str
    shape: tuple[int, ...]

    def __post_init__(self) -> None:
        if self.datatype not in DATATYPES:
            raise InvalidInputError(f"tensor {self.name!r}: unknown datatype {self.datatype!r}")
        if any(d < -1 for d in self.shape):
            raise InvalidInputError(f"tensor {self.name!r}: dims must be >= -1, got {self.shape}")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TensorSpec:
        return cls(str(data["name"]), str(data["datatype"]), tuple(int(d) for d in data["shape"]))


@dataclass(frozen=True, slots=True)
class Signature:
    """The inputs and outputs of a model version, as V2 metadata reports them."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    @property
    def batchable(self) -> bool:
        """Whether rows of several requests can be stacked: every first dim is -1."""
        return all(t.shape and t.shape[0] == -1 for t in (*self.inputs, *self.outputs))

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs": [t.to_dict() for t in self.inputs],
            "outputs": [t.to_dict() for t in self.outputs],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Signature:
        return cls(
            tuple(TensorSpec.from_dict(t) for t in data["inputs"]),
            tuple(TensorSpec.from_dict(t) for t in data["outputs"]),
        )
