"""The contract every runtime implements; the scheduler and data plane call only this.

A runtime is found by artifact format through the ``maas.runtimes`` entry-point group
(see ``discovery.py``), so a plugin package can add a framework without touching maas.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import numpy as np

from maas.protocol.signature import Signature

__all__ = ["Runtime"]


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

    def __init__(self, signature: Signature) -> None:
        self.signature = signature

    @classmethod
    @abstractmethod
    def load(cls, path: Path) -> Runtime:
        """Load the artifact at ``path``; raise ``InvalidArtifactError`` if it is not one."""

    @abstractmethod
    def predict(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one batch. Inputs are already validated against ``signature``."""

    def close(self) -> None:  # noqa: B027 - optional hook, most runtimes hold nothing to release
        """Release what ``load`` acquired."""
