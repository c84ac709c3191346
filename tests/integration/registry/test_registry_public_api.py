from __future__ import annotations

import maas.registry


def test_registry_public_names_are_pinned() -> None:
    assert sorted(maas.registry.__all__) == [
        "Alias",
        "AuditEvent",
        "ConfigRevision",
        "Model",
        "ModelVersion",
        "Registry",
    ]
