from __future__ import annotations

import maas.store


def test_store_public_names_are_pinned() -> None:
    assert sorted(maas.store.__all__) == ["ArtifactStore", "LocalStore", "StoredArtifact"]
