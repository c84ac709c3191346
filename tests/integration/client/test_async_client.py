"""``AsyncClient`` over the same real server: the same calls, awaited (a representative set:
its methods share ``Client``'s call descriptions, only the executor differs)."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from maas.client import AsyncClient, Version
from maas.errors import (
    GateFailedError,
    NotFoundError,
    RegistryMismatchError,
    UnavailableError,
)
from maas.registry import Registry

X = np.random.default_rng(5).standard_normal((3, 4)).astype(np.float32)


def test_manage_infer_and_download(
    server: str, registry: Registry, linear: Path, linear_b: Path, tmp_path: Path
) -> None:
    expected = ort.InferenceSession(str(linear)).run(None, {"input": X})[0]

    async def scenario() -> None:
        async with AsyncClient(server, registry_id=registry.registry_id()) as maas:
            assert maas.base_url == server
            first = await maas.upload("lin", linear, description="async")
            assert isinstance(first, Version) and first.version == 1
            await maas.upload("lin", linear_b.read_bytes())
            assert [m.name for m in await maas.list_models()] == ["lin"]
            assert [v.version for v in await maas.list_versions("lin")] == [1, 2]
            assert (await maas.get_version("lin")).version == 2  # newest: no production
            await maas.set_gate("lin", [{"metric": "accuracy", "min": 0.5}])
            with pytest.raises(GateFailedError):
                await maas.promote("lin", 1)
            await maas.promote("lin", 1, force=True, reason="trusted")
            assert (await maas.get_version("lin")).version == 1
            assert [m.forced for m in await maas.alias_history("lin", "production")] == [True]

            assert await maas.live() and await maas.ready() and await maas.model_ready("lin")
            results = await asyncio.gather(
                *(maas.infer("lin", {"input": X}, binary=i % 2 == 0) for i in range(8))
            )
            for result in results:
                assert result.model_version == "1"
                np.testing.assert_array_equal(result["logits"], expected)

            saved = await maas.download("lin", "production", tmp_path)
            assert saved == tmp_path / "lin-1.onnx"
            assert saved.read_bytes() == linear.read_bytes()
            [row] = await maas.deployments("lin")
            assert row.state == "ready"
            events = await maas.audit("lin", action="alias")
            assert [e.action for e in events] == ["alias.set"]
            with pytest.raises(NotFoundError):
                await maas.get_model("nope")

    asyncio.run(scenario())


def test_jobs(server: str, registry: Registry) -> None:
    queued = registry.jobs.submit("digits", {"model_name": "digits"}, actor="alice")

    async def scenario() -> None:
        async with AsyncClient(server) as maas:
            assert (await maas.get_job(queued.id)).state == "queued"
            assert [j.id for j in await maas.list_jobs()] == [queued.id]
            assert [line.message for line in await maas.job_logs(queued.id)] == ["queued by alice"]
            assert await maas.job_epochs(queued.id) == []
            assert (await maas.cancel_job(queued.id)).state == "cancelled"
            assert (await maas.resume_job(queued.id)).state == "queued"

    asyncio.run(scenario())


def test_registry_mismatch_and_unreachable_server(server: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    async def scenario() -> None:
        async with AsyncClient(server, registry_id="another-registry") as wrong:
            with pytest.raises(RegistryMismatchError, match="not this configuration's"):
                await wrong.list_models()
        async with AsyncClient(f"http://127.0.0.1:{port}", timeout_s=5) as nobody:
            with pytest.raises(UnavailableError, match="cannot reach the maas server at"):
                await nobody.live()

    asyncio.run(scenario())
