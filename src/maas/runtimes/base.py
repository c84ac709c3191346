"""The contract every runtime implements; the scheduler and data plane call only this.

A runtime is found by artifact format through the ``maas.runtimes`` entry-point group
(see ``discovery.py``), so a plugin package can add a framework without touching maas.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from maas.protocol.signature import Signature

__all__ = ["LoadOptions", "Runtime"]


@dataclass(frozen=True, slots=True)
class LoadOptions:
    """How one instance should use the machine; runtimes ignore what does not apply."""

    #: Threads inside one predict call (None: the runtime's own default).
    intra_op_threads: int | None = None
    #: Let those threads go on spinning after a call, waiting for the next (ONNX Runtime's
    #: own default): lower latency for a lone busy version, a core per version kept busy.
    #: Off, they spin only while a call runs.
    spinning: bool = False
    #: The version's registered signature, for formats whose files carry none
    #: (TorchScript); runtimes that read it from the artifact (ONNX) ignore it.
    signature: Signature | None = None


class Runtime(ABC):
    """One loaded model instance.

    Example::

        runtime = OnnxRuntime.load(Path("model.onnx"))
        outputs = runtime.predict({"input": np.zeros((1, 64), np.float32)})
    """

    #: The artifact format this runtime loads, as stored with each registered version.
    format: ClassVar[str]
    #: Name reported as ``platform`` in V2 model metadata.
    platform: ClassVar[str]
    #: True when predict releases the GIL, so instances can share a process as threads;
    #: False puts each instance in a worker process of its own.
    releases_gil: ClassVar[bool] = True
    #: True for formats whose files are programs (TorchScript): a server takes them over
    #: its API only when allowed (``MAAS_ALLOW_CODE_ARTIFACTS``) and from a ``code`` key.
    carries_code: ClassVar[bool] = False

    def __init__(self, signature: Signature) -> None:
        self.signature = signature

    @classmethod
    @abstractmethod
    def load(cls, path: Path, options: LoadOptions = LoadOptions()) -> Runtime:
        """Load the artifact at ``path``; raise ``InvalidArtifactError`` if it is not one."""

    @property
    def on_cpu(self) -> bool:
        """Whether predict keeps the calling thread's CPU busy for as long as it runs (no
        accelerator it waits on), so that its CPU time is its cost to an event loop."""
        return True

    @property
    def batchable(self) -> bool:
        """Whether rows of several requests can be stacked: every tensor's first dim is -1."""
        return self.signature.batchable

    @abstractmethod
    def predict(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one batch. Inputs are already validated against ``signature``."""

    def close(self) -> None:  # noqa: B027 - optional hook, most runtimes hold nothing to release
        """Release what ``load`` acquired."""
