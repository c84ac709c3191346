"""Making registered models smaller and faster, each result a new version with a report.

- ``maas.optimize.spec``      the job specs of the three kinds (torch-free: the server parses them)
- ``maas.optimize.parents``   the parent pinned and checked, defaults from its lineage (torch-free)
- ``maas.optimize.datasets``  the specs' data sets, refusals naming the spec's own field
- ``maas.optimize.quantize``  int8 (dynamic, static with calibration) and float16 with ONNX Runtime
- ``maas.optimize.census``    which operators of a quantised model run in int8 and which stay float
- ``maas.optimize.prune``     structured (channel) and unstructured magnitude pruning with torch
- ``maas.optimize.channels``  the channels torch.fx finds prunable, and the layer surgery
- ``maas.optimize.widths``    the widths kept per layer so enough parameters go
- ``maas.optimize.distill``   knowledge distillation: a teacher's soft targets train a student
- ``maas.optimize.architecture``  a version's network rebuilt from its lineage and weights
- ``maas.optimize.report``    the candidate against its parent on the same rows and machine
- ``maas.optimize.validation`` the checks a submission's validator process runs
- ``maas.optimize.jobs``      one job per kind: parent in, registered version with lineage out
"""

from __future__ import annotations

__all__: list[str] = []
