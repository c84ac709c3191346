"""The control plane: one owner for every management action and its rules.

Models and versions (``models``), aliases and promotion (``aliases``), traffic policies
(``traffic``), whether a model is served (``deployments``), training jobs (``jobs``)
and the audit log, each validated, gated and audited here. It sits above the registry
and the job runner and below the server; transports and the CLI are adapters over it.
"""

from __future__ import annotations

from maas.control.plane import ControlPlane
from maas.control.warmup import LocalWarmup, Warmup

__all__ = ["ControlPlane", "LocalWarmup", "Warmup"]
