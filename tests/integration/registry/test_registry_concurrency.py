from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from maas.protocol.signature import Signature
from maas.registry import Registry
from maas.store import LocalStore

ArtifactFactory = Callable[..., Path]
THREADS = 8


def test_concurrent_registrations_get_distinct_consecutive_numbers(
    registry: Registry, signature: Signature, make_artifact: ArtifactFactory
) -> None:
    artifacts = [make_artifact(b"model %d" % i) for i in range(THREADS)]

    def register(artifact: Path) -> int:
        return registry.register_version(
            "iris", artifact, artifact_format="onnx", signature=signature
        ).version

    with ThreadPoolExecutor(THREADS) as pool:
        numbers = list(pool.map(register, artifacts))

    assert sorted(numbers) == list(range(1, THREADS + 1))
    assert [v.version for v in registry.list_versions("iris")] == list(range(1, THREADS + 1))
    actions = [e.action for e in registry.audit_log()]
    assert actions.count("model.create") == 1
    assert actions.count("version.create") == THREADS


def test_separate_registries_on_one_database_number_in_turn(
    database_url: str, signature: Signature, make_artifact: ArtifactFactory, tmp_path: Path
) -> None:
    """Like several processes (CLI, server, trainer) sharing one database."""
    registries = [Registry(database_url, LocalStore(tmp_path / "artifacts")) for _ in range(4)]
    try:
        registries[0].upgrade()
        jobs = [(registries[i % 4], make_artifact(b"m%d" % i)) for i in range(THREADS)]
        with ThreadPoolExecutor(THREADS) as pool:
            numbers = list(
                pool.map(
                    lambda job: (
                        job[0]
                        .register_version(
                            "mnist", job[1], artifact_format="onnx", signature=signature
                        )
                        .version
                    ),
                    jobs,
                )
            )
        assert sorted(numbers) == list(range(1, THREADS + 1))
    finally:
        for registry in registries:
            registry.close()
