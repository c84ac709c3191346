"""Management work runs a bounded number of calls at once, so a flood of it (uploads being
validated, job submissions) waits its turn instead of taking the cores inference needs."""

from __future__ import annotations

import asyncio
import threading
import time

from maas.control import ControlPlane
from maas.control.access import KeyRing
from maas.control.warmup import LocalWarmup
from maas.registry import Registry
from maas.serving.access import Gatekeeper
from maas.serving.deployments import Deployments
from maas.serving.rest.access import RouteAccess
from maas.serving.rest.context import ApiContext


def test_at_most_four_control_plane_calls_run_at_once(local_registry: Registry) -> None:
    control = ControlPlane.build(local_registry, warmup=LocalWarmup(local_registry))
    keyring = KeyRing(local_registry.keys, always_required=False)
    api = ApiContext(
        control,
        Deployments(local_registry),
        RouteAccess(Gatekeeper(keyring, local_registry.keys)),
        1,
    )
    lock = threading.Lock()
    release = threading.Event()
    running, peak = 0, 0

    def work() -> list[str]:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        release.wait(timeout=30)  # held until the test has seen how many run at once
        with lock:
            running -= 1
        return [m.name for m in control.models.list_models()]

    async def flood() -> None:
        calls = asyncio.gather(*(api.call(work) for _ in range(12)))
        deadline = time.monotonic() + 30
        while running < 4:
            assert time.monotonic() < deadline, running
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)  # a fifth, were it let in, would have started by now
        assert running == 4
        release.set()
        await calls

    asyncio.run(flood())
    assert peak == 4
