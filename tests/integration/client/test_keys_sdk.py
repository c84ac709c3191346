"""API keys through the SDK, against a real server on loopback over a SQLite registry.

The server runs with ``MAAS_AUTH=auto`` (the default): it answers without keys until the
first one exists, and requires one on every request from then on.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from maas.client import ApiKey, AsyncClient, Client, CreatedKey
from maas.errors import (
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    RateLimitedError,
    UnauthenticatedError,
)

TOKEN = re.compile(r"maas_([0-9a-f]{12})_[A-Za-z0-9_-]{43}")
KEY_FIELDS = {
    "id",
    "name",
    "scopes",
    "models",
    "rate_per_s",
    "created_at",
    "created_by",
    "revoked_at",
    "revoked_by",
}


@pytest.fixture
def admin(client: Client, server: str, linear: Path) -> Iterator[tuple[CreatedKey, Client]]:
    """Model ``linear`` version 1 uploaded while the server was open, then the first key
    (admin), and a client that sends it."""
    client.upload("linear", linear)
    created = client.create_key("admin", ["admin"])
    with Client(server, api_key=created.token) as opened:
        yield created, opened


def test_the_first_key_closes_the_server_to_callers_without_one(
    client: Client, server: str, linear: Path
) -> None:
    client.upload("linear", linear)
    created = client.create_key("admin", ["admin"])

    match = TOKEN.fullmatch(created.token)
    assert match is not None and match[1] == created.id
    assert (created.name, created.scopes, created.models, created.rate_per_s) == (
        "admin",
        ("admin",),
        None,
        None,
    )
    assert created.revoked_at is None and created.created_at.tzinfo is not None
    assert created.token not in repr(created) and created.token not in str(created)
    assert created.token not in repr(created.key)

    with pytest.raises(UnauthenticatedError) as refused:
        client.list_models()
    assert refused.value.code == "unauthenticated"
    with Client(server, api_key=created.token) as keyed:
        assert [m.name for m in keyed.list_models()] == ["linear"]
        assert created.token not in repr(keyed)
        assert keyed.list_keys() == [created.key]
    wrong = created.token[:-4] + ("AAAA" if not created.token.endswith("AAAA") else "BBBB")
    with Client(server, api_key=wrong) as forged, pytest.raises(UnauthenticatedError):
        forged.list_models()


def test_a_read_key_reads_but_may_not_make_keys_or_change_models(
    admin: tuple[CreatedKey, Client], server: str, linear: Path
) -> None:
    _, operator = admin
    reader = operator.create_key("dashboard", ["read"])
    with Client(server, api_key=reader.token) as read_only:
        assert [m.name for m in read_only.list_models()] == ["linear"]
        assert read_only.get_version("linear", 1).version == 1
        with pytest.raises(ForbiddenError) as refused:
            read_only.create_key("sneaky", ["admin"])
        assert refused.value.code == "forbidden"
        with pytest.raises(ForbiddenError):
            read_only.list_keys()
        with pytest.raises(ForbiddenError):
            read_only.upload("linear", linear)
    assert [key.name for key in operator.list_keys()] == ["admin", "dashboard"]


def test_listed_keys_carry_neither_token_nor_hash(
    admin: tuple[CreatedKey, Client], server: str
) -> None:
    created, operator = admin
    limited = operator.create_key("ci", ["deploy", "train"], models=["linear"], rate_per_s=50)
    assert (limited.scopes, limited.models, limited.rate_per_s) == (
        ("deploy", "train"),
        ("linear",),
        50.0,
    )

    listed = operator.list_keys()
    assert listed == [created.key, limited.key]
    assert all(isinstance(key, ApiKey) and not hasattr(key, "token") for key in listed)
    raw = httpx.get(
        f"{server}/api/keys", headers={"Authorization": f"Bearer {created.token}"}, timeout=10
    )
    assert raw.status_code == 200
    assert [set(doc) for doc in raw.json()] == [KEY_FIELDS, KEY_FIELDS]
    for token in (created.token, limited.token):
        assert token[-43:] not in raw.text
    assert "scrypt" not in raw.text


def test_a_revoked_key_fails_at_once_on_the_server_that_revoked_it(
    admin: tuple[CreatedKey, Client], server: str
) -> None:
    created, operator = admin
    doomed = operator.create_key("temporary", ["read"])
    with Client(server, api_key=doomed.token) as holder:
        assert holder.get_model("linear").name == "linear"

        revoked = operator.revoke_key(doomed.id)
        assert revoked.id == doomed.id and revoked.revoked_at is not None
        assert revoked.revoked_by == f"key:admin/{created.id}"

        with pytest.raises(UnauthenticatedError):
            holder.get_model("linear")
    assert [key.id for key in operator.list_keys()] == [created.id]
    everything = operator.list_keys(include_revoked=True)
    assert [(key.id, key.revoked_at is not None) for key in everything] == [
        (created.id, False),
        (doomed.id, True),
    ]
    with pytest.raises(ConflictError):
        operator.revoke_key(doomed.id)
    with pytest.raises(NotFoundError):
        operator.revoke_key("000000000000")


def test_a_key_limited_to_a_model_acts_only_on_routes_naming_it(
    admin: tuple[CreatedKey, Client], server: str
) -> None:
    _, operator = admin
    scoped = operator.create_key("linear-only", ["predict", "read"], models=["linear"])
    x = np.zeros((2, 4), np.float32)
    with Client(server, api_key=scoped.token) as caller:
        assert caller.get_model("linear").name == "linear"
        assert caller.infer("linear", {"input": x})["logits"].shape == (2, 3)
        with pytest.raises(ForbiddenError):
            caller.get_model("other")
        with pytest.raises(ForbiddenError):
            caller.list_models()  # every model at once


def test_a_key_over_its_rate_is_told_to_wait(admin: tuple[CreatedKey, Client], server: str) -> None:
    _, operator = admin
    slow = operator.create_key("slow", ["read"], rate_per_s=1)
    with Client(server, api_key=slow.token) as caller:
        caller.get_model("linear")
        with pytest.raises(RateLimitedError) as limited:
            caller.get_model("linear")
    assert limited.value.details["retry_after_s"] > 0


def test_the_async_client_sends_its_key_and_manages_keys(
    admin: tuple[CreatedKey, Client], server: str
) -> None:
    created, _ = admin

    async def scenario() -> None:
        async with AsyncClient(server) as anonymous:
            with pytest.raises(UnauthenticatedError):
                await anonymous.list_models()
        async with AsyncClient(server, api_key=created.token) as operator:
            assert created.token not in repr(operator)
            made = await operator.create_key("async", ["predict"])
            assert made.token not in repr(made)
            assert [k.name for k in await operator.list_keys()] == ["admin", "async"]
            revoked = await operator.revoke_key(made.id)
            assert revoked.revoked_at is not None
            assert [k.name for k in await operator.list_keys(include_revoked=True)] == [
                "admin",
                "async",
            ]
        async with AsyncClient(server, api_key=made.token) as gone:
            with pytest.raises(UnauthenticatedError):
                await gone.model_metadata("linear")

    asyncio.run(scenario())


def test_keys_that_cannot_be_sent_are_refused_before_any_request(server: str) -> None:
    for bad in ("", "   ", "maas_abc def", "maas_ké"):
        with pytest.raises(InvalidInputError) as refused:
            Client(server, api_key=bad)
        assert bad.strip() == "" or bad not in refused.value.message
    with Client(server, api_key="  maas_0123456789ab_token\n") as padded:
        assert padded.live()  # health is open; the key was trimmed, not refused


def test_create_key_refuses_a_string_where_a_list_belongs(
    admin: tuple[CreatedKey, Client],
) -> None:
    _, operator = admin
    with pytest.raises(InvalidInputError):
        operator.create_key("x", "read")
    with pytest.raises(InvalidInputError) as refused:
        operator.create_key("x", ["superuser"])
    assert "superuser" in refused.value.message
