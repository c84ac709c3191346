"""A version's serving config: its owner validates it here; the registry stores revisions.

The document users write (JSON or TOML)::

    {"batching": {"max_batch_size": 32, "max_queue_delay_s": 0.0,
                  "preferred_batch_sizes": [], "max_queue_size": 1024,
                  "default_timeout_s": null, "max_requests_per_s": null},
     "instances": {"count": 1, "kind": "auto", "intra_op_threads": null, "spinning": false,
                   "inline_max_s": 0.0002},
     "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 64]}],   # optional
     "outputs": [...]}                                                        # optional

``inputs``/``outputs`` override the signature the runtime reports (TorchScript files
carry none, so there they are required). ``warmup`` shapes the request a version must
answer, within its signature, before any traffic moves to it::

     "warmup": {"enabled": true, "shapes": {"input": [1, 3, 224, 224]}}          # optional

(default: one row, and 1 for every other variable dim).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from maas.errors import InvalidInputError
from maas.protocol.datatypes import DATATYPES
from maas.protocol.signature import Signature, TensorSpec
from maas.scheduling.policy import BatchingPolicy, InstancePolicy

__all__ = ["ModelConfig", "WarmupConfig", "parse_model_config"]

_STRICT = ConfigDict(extra="forbid", frozen=True)


class BatchingConfig(BaseModel):
    model_config = _STRICT

    max_batch_size: int = Field(32, ge=0, le=65536, description="Rows per batch; 0 or 1: off.")
    max_queue_delay_s: float = Field(0.0, ge=0, le=10)
    preferred_batch_sizes: list[int] = Field(default_factory=list)
    max_queue_size: int = Field(1024, ge=1, le=1_000_000)
    default_timeout_s: float | None = Field(None, gt=0)
    max_requests_per_s: float | None = Field(
        None, gt=0, le=1e6, description="Requests a second this version takes (beyond: 429)."
    )

    @model_validator(mode="after")
    def _preferred_within_max(self) -> BatchingConfig:
        for size in self.preferred_batch_sizes:
            if not 1 <= size <= max(self.max_batch_size, 1):
                raise ValueError(
                    f"preferred batch size {size} must be between 1 and max_batch_size "
                    f"({self.max_batch_size})"
                )
        return self


class InstancesConfig(BaseModel):
    model_config = _STRICT

    count: int = Field(
        1,
        ge=1,
        le=16,
        description="Runtime instances of the version (at most 16; worker processes are also "
        "bounded per server by MAAS_MAX_WORKER_PROCESSES).",
    )
    kind: Literal["auto", "thread", "process"] = "auto"
    intra_op_threads: int | None = Field(
        None,
        ge=1,
        le=256,
        description="Threads inside one batch. Unset: one for a model whose full batch runs "
        "in under inline_max_s (it runs on the event loop), else the cores shared out among "
        "the instances.",
    )
    spinning: bool = Field(
        False,
        description="Let the runtime's threads go on spinning between batches: lower latency "
        "for a lone busy version, one core kept busy per version (ONNX Runtime). Off, they "
        "spin only while a batch runs.",
    )
    inline_max_s: float = Field(
        0.0002,
        ge=0,
        le=0.01,
        description="Batches that typically run faster than this skip the thread hand-off.",
    )


class TensorConfig(BaseModel):
    model_config = _STRICT

    name: str = Field(min_length=1)
    datatype: str
    shape: list[int]

    @model_validator(mode="after")
    def _known(self) -> TensorConfig:
        if self.datatype not in DATATYPES:
            raise ValueError(f"unknown datatype {self.datatype!r}")
        if any(d < -1 for d in self.shape):
            raise ValueError("dims must be >= -1 (-1: variable)")
        return self


class WarmupConfig(BaseModel):
    model_config = _STRICT

    enabled: bool = Field(
        True, description="Run a warm-up request and check its outputs before serving."
    )
    shapes: dict[str, list[int]] = Field(
        default_factory=dict,
        description="Input name -> the full shape of its warm-up tensor (dims >= 1).",
    )

    @model_validator(mode="after")
    def _positive(self) -> WarmupConfig:
        for name, shape in self.shapes.items():
            if not shape or any(d < 1 for d in shape) or len(shape) > 64:
                raise ValueError(f"shapes.{name}: give 1 to 64 dims, each >= 1")
        return self


class ModelConfig(BaseModel):
    model_config = _STRICT

    batching: BatchingConfig = Field(default_factory=BatchingConfig)
    instances: InstancesConfig = Field(default_factory=InstancesConfig)
    inputs: list[TensorConfig] | None = None
    outputs: list[TensorConfig] | None = None
    warmup: WarmupConfig = Field(default_factory=WarmupConfig)

    def batching_policy(self) -> BatchingPolicy:
        b = self.batching
        return BatchingPolicy(
            max_batch_size=b.max_batch_size,
            max_queue_delay_s=b.max_queue_delay_s,
            preferred_batch_sizes=tuple(b.preferred_batch_sizes),
            max_queue_size=b.max_queue_size,
            default_timeout_s=b.default_timeout_s,
            max_requests_per_s=b.max_requests_per_s,
        )

    def instance_policy(self) -> InstancePolicy:
        i = self.instances
        return InstancePolicy(
            count=i.count,
            kind=i.kind,
            intra_op_threads=i.intra_op_threads,
            spinning=i.spinning,
            inline_max_s=i.inline_max_s,
        )

    def signature_override(self) -> Signature | None:
        if self.inputs is None or self.outputs is None:
            return None
        return Signature(
            tuple(TensorSpec(t.name, t.datatype, tuple(t.shape)) for t in self.inputs),
            tuple(TensorSpec(t.name, t.datatype, tuple(t.shape)) for t in self.outputs),
        )


def parse_model_config(document: Any) -> ModelConfig:
    """Validate a config document; errors name the field (``batching.max_batch_size: ...``)."""
    if document is None:
        return ModelConfig()
    try:
        return ModelConfig.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'config'}: {e['msg']}" for e in exc.errors()
        )
        first = exc.errors()[0]
        raise InvalidInputError(
            f"invalid model config: {problems}",
            {"field": ".".join(str(p) for p in first["loc"])},
        ) from None
