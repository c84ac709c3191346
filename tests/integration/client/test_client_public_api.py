from __future__ import annotations

import maas.client


def test_client_public_names_are_pinned() -> None:
    assert sorted(maas.client.__all__) == [
        "Alert",
        "AlertRule",
        "Alerts",
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
        "Drift",
        "FeatureDrift",
        "InferResult",
        "InputReference",
        "Job",
        "JobLogLine",
        "Model",
        "RegistryInfo",
        "RepositoryEntry",
        "ServingConfig",
        "Traffic",
        "Version",
        "VersionDrift",
    ]
    for name in maas.client.__all__:
        assert getattr(maas.client, name).__module__.startswith("maas.client.")
