"""Training: turn a dataset and a model family into a verified, registered ONNX version.

The package import stays light (no torch) because torch is the optional ``[torch]``
extra; import the modules you need:

- ``maas.training.datasets``   bundled datasets as fixed, hashed train/validation splits
- ``maas.training.zoo``        model builders
- ``maas.training.trainer``    the deterministic training loop
- ``maas.training.evaluation`` accuracy and macro P/R/F1 from logits
- ``maas.training.export``     ONNX export checked against torch with ONNX Runtime
- ``maas.training.signature``  the V2 signature read back from an exported graph
- ``maas.training.finetune``   ``init_from``: a trained version's TorchScript weights as a start
- ``maas.training.version_report`` any registered version evaluated on a labelled dataset
- ``maas.training.pipeline``   all of the above, ending in ``register_version``
"""

from __future__ import annotations

__all__: list[str] = []
