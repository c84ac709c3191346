"""Input references: setting and reading the statistics drift is measured against.

The document's owner is here: ``Reference.from_dict`` validates it (errors name the
field), and it must describe inputs the version has, with rows that fit their shapes.
Training stores a version's reference as it registers it; for an uploaded version
``maas models reference NAME VERSION --dataset ...`` builds one on the caller's machine
and sends it here (``PUT /api/models/{name}/versions/{v}/reference``).
"""

from __future__ import annotations

from typing import Any

from maas.errors import InvalidInputError, NotFoundError
from maas.monitoring.drift import Reference
from maas.protocol.signature import Signature
from maas.registry.entities import InputReference
from maas.registry.service import Registry

__all__ = ["References", "check_fits"]


def check_fits(reference: Reference, signature: Signature) -> None:
    """Every input the reference describes is one of the version's, and its rows fit the
    input's declared shape (variable dims fit any size)."""
    declared = {spec.name: spec for spec in signature.inputs}
    for i, described in enumerate(reference.inputs):
        spec = declared.get(described.name)
        if spec is None:
            raise InvalidInputError(
                f"reference.inputs[{i}].name: the version has no input {described.name!r}; "
                f"its inputs are {', '.join(repr(n) for n in declared)}",
                {"field": f"reference.inputs[{i}].name"},
            )
        row = spec.shape[1:] if len(spec.shape) == len(described.row_shape) + 1 else spec.shape
        if len(row) != len(described.row_shape) or any(
            d not in (-1, r) for d, r in zip(row, described.row_shape, strict=True)
        ):
            raise InvalidInputError(
                f"reference.inputs[{i}].row_shape: rows of {list(described.row_shape)} do not "
                f"fit input {spec.name!r} of shape {list(spec.shape)}",
                {"field": f"reference.inputs[{i}].row_shape"},
            )


class References:
    """>>> control.references.set("digits", 3, document, actor="cli:ann")  # doctest: +SKIP"""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    def set(self, name: str, ref: str | int, document: Any, *, actor: str) -> InputReference:
        """Validate ``document`` and make it the version's reference (replacing any);
        audited with ``actor``."""
        version = self._registry.resolve(name, ref)
        reference = Reference.from_dict(document)
        check_fits(reference, version.signature)
        return self._registry.references.put(
            name,
            version.version,
            reference.to_dict(),
            actor=actor,
            details=reference.summary(),
        )

    def get(self, name: str, ref: str | int) -> InputReference:
        """The version's reference; ``NotFoundError`` when it has none."""
        version = self._registry.resolve(name, ref)
        found = self._registry.references.get(name, version.version)
        if found is None:
            raise NotFoundError(
                f"version {version.version} of {name!r} has no input reference: set one with "
                f"`maas models reference {name} {version.version} --dataset ...`",
                {"model": name, "version": version.version},
            )
        return found
