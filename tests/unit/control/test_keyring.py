"""One process's view of the API keys: each key is proven with scrypt once, however many
callers bring it at once; a wrong key is remembered as wrong; a revoked one stops working
at the next refresh."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from maas.control import access
from maas.control.access import ApiKeys, KeyRing, Scope
from maas.errors import UnauthenticatedError
from maas.registry import Registry
from maas.store import LocalStore


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    found = Registry(f"sqlite:///{tmp_path}/maas.db", LocalStore(tmp_path / "artifacts"))
    found.upgrade()
    try:
        yield found
    finally:
        found.close()


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every scrypt check the key ring makes (the real one runs)."""
    made: list[str] = []
    real = access.verify_secret

    def counted(secret: str, stored: str) -> bool:
        made.append(secret)
        return real(secret, stored)

    monkeypatch.setattr(access, "verify_secret", counted)
    return made


def test_callers_arriving_at_once_with_a_new_key_cost_one_scrypt(
    registry: Registry, checks: list[str]
) -> None:
    token = ApiKeys(registry.keys).create("ci", ["predict"], actor="t").token.encode()
    ring = KeyRing(registry.keys, always_required=False)
    ring.refresh()
    start = threading.Barrier(16)
    found = []

    def call() -> None:
        start.wait()
        found.append(ring.authenticate(token))

    threads = [threading.Thread(target=call) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(checks) == 1
    assert {p.key_id for p in found} == {found[0].key_id} and len(found) == 16
    assert ring.known(token) is found[0]
    assert Scope.PREDICT in found[0].granted


def test_a_wrong_key_is_checked_once_then_refused_from_memory(
    registry: Registry, checks: list[str]
) -> None:
    token = ApiKeys(registry.keys).create("ci", ["read"], actor="t").token
    ring = KeyRing(registry.keys, always_required=False)
    ring.refresh()
    wrong = (token[:-1] + ("A" if token[-1] != "A" else "B")).encode()
    for _ in range(3):
        with pytest.raises(UnauthenticatedError):
            ring.authenticate(wrong)
    assert len(checks) == 1
    with pytest.raises(UnauthenticatedError):  # an unknown id: no scrypt at all
        ring.authenticate(b"maas_000000000000_" + b"A" * 43)
    assert len(checks) == 1


def test_keys_are_required_once_one_was_made_and_a_revoked_one_stops_at_refresh(
    registry: Registry,
) -> None:
    ring = KeyRing(registry.keys, always_required=False)
    ring.refresh()
    assert not ring.enforcing
    keys = ApiKeys(registry.keys)
    created = keys.create("ci", ["read"], actor="t")
    ring.refresh()
    assert ring.enforcing
    assert ring.authenticate(created.token.encode()).name == "ci"
    keys.revoke(created.key.key_id, actor="t")
    ring.refresh()
    assert ring.known(created.token.encode()) is None
    with pytest.raises(UnauthenticatedError):
        ring.authenticate(created.token.encode())
    assert ring.enforcing  # revoking the last key (a leaked one) does not reopen the server
