from __future__ import annotations

import maas.client


def test_client_public_names_are_pinned() -> None:
    assert sorted(maas.client.__all__) == [
        "Alias",
        "AliasMove",
        "ApiKey",
        "Archive",
        "Artifact",
        "AsyncClient",
        "AuditEvent",
        "Client",
        "CreatedKey",
        "Deployment",
        "DeploymentState",
        "InferResult",
        "Job",
        "JobLogLine",
        "Model",
        "RegistryInfo",
        "RepositoryEntry",
        "ServingConfig",
        "Traffic",
        "Version",
    ]
    for name in maas.client.__all__:
        assert getattr(maas.client, name).__module__.startswith("maas.client.")
