"""The Triton ``ModelConfig`` shape of a deployed version, which perf_analyzer and other
Triton tools read (``GET /v2/models/{name}/config``, gRPC ``ModelConfig``)."""

from __future__ import annotations

from typing import Any

from maas.control.model_config import ModelConfig
from maas.protocol.signature import Signature, TensorSpec

__all__ = ["triton_config"]


def _triton_type(datatype: str) -> str:
    return "TYPE_STRING" if datatype == "BYTES" else f"TYPE_{datatype}"


def triton_config(
    name: str, platform: str, signature: Signature, config: ModelConfig, batchable: bool
) -> dict[str, Any]:
    """The Triton ``ModelConfig`` (JSON form) of a deployed version.

    With batching on, dims leave out the batch dim, as Triton does.
    """
    batching = config.batching
    max_batch_size = batching.max_batch_size if batchable and batching.max_batch_size > 1 else 0

    def tensors(specs: tuple[TensorSpec, ...]) -> list[dict[str, Any]]:
        return [
            {
                "name": t.name,
                "data_type": _triton_type(t.datatype),
                "dims": list(t.shape[1:] if max_batch_size else t.shape),
            }
            for t in specs
        ]

    document: dict[str, Any] = {
        "name": name,
        "platform": platform,
        "backend": platform.split("_")[0],
        "max_batch_size": max_batch_size,
        "input": tensors(signature.inputs),
        "output": tensors(signature.outputs),
        "instance_group": [
            {"name": f"{name}_0", "kind": "KIND_CPU", "count": config.instances.count}
        ],
    }
    if max_batch_size:
        document["dynamic_batching"] = {
            "preferred_batch_size": list(batching.preferred_batch_sizes),
            "max_queue_delay_microseconds": round(batching.max_queue_delay_s * 1_000_000),
        }
    return document
