"""Making registered models smaller and faster, each result a new version with a report.

- ``maas.optimize.spec``      the job specs of the three kinds (torch-free: the server parses them)
- ``maas.optimize.quantize``  int8 (dynamic, static with calibration) and float16 with ONNX Runtime
- ``maas.optimize.prune``     structured (channel) and unstructured magnitude pruning with torch
- ``maas.optimize.distill``   knowledge distillation: a teacher's soft targets train a student
- ``maas.optimize.report``    the candidate against its parent on the same rows and machine
- ``maas.optimize.jobs``      one job per kind: parent in, registered version with lineage out
"""

from __future__ import annotations

__all__: list[str] = []
