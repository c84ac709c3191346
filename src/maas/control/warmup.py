"""The rule that no traffic moves to a version before it has loaded and answered a
warm-up request, and the check itself where no server holds the version.

``Warmup`` is the seam: the control plane calls ``prepare`` before it moves an alias or
sets a traffic policy. A server implements it by loading the version into its own
deployments (so the switch that follows is instant); without a server, ``LocalWarmup``
loads the version in this process, runs the warm-up request, and lets it go.
"""

from __future__ import annotations

import logging
from typing import Protocol

from maas.control.model_config import ModelConfig, parse_model_config
from maas.errors import MaasError, NotServableError, describe
from maas.protocol.warmup import check_warmup_outputs, warmup_feed
from maas.registry.entities import ModelVersion
from maas.registry.service import Registry
from maas.runtimes.base import LoadOptions
from maas.runtimes.discovery import load_runtime

__all__ = ["LocalWarmup", "Warmup", "not_servable"]

log = logging.getLogger(__name__)


class Warmup(Protocol):
    """Makes sure a version can serve before traffic moves to it."""

    def prepare(self, version: ModelVersion, config: ModelConfig | None = None) -> None:
        """Load ``version`` and answer its warm-up request; ``NotServableError`` naming
        the reason when it cannot. With ``config``: under that config instead of its
        stored one (a config change about to be recorded), as a trial."""


def not_servable(version: ModelVersion, reason: str) -> NotServableError:
    """The one way a version that cannot serve is refused: the reason, in words and in
    ``details``."""
    return NotServableError(
        f"version {version.version} of {version.model_name!r} cannot serve: {reason}",
        {"model": version.model_name, "version": version.version, "reason": reason},
    )


class LocalWarmup:
    """Loads the version here, runs its warm-up request, checks the outputs, closes it."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    def prepare(self, version: ModelVersion, config: ModelConfig | None = None) -> None:
        """``config``: check the version with it instead of its stored one (a config
        change about to be recorded)."""
        if config is None:
            revision = self._registry.get_config(version.model_name, version.version)
            config = parse_model_config(revision.config if revision else None)
        signature = config.signature_override() or version.signature
        try:
            path = self._registry.artifact_path(version)
            runtime = load_runtime(version.artifact_format, path, LoadOptions(signature=signature))
        except MaasError as exc:
            raise not_servable(version, f"it does not load: {exc.message}") from None
        try:
            if config.warmup.enabled:
                feed = warmup_feed(signature, config.warmup.shapes)
                try:
                    outputs = runtime.predict(feed)
                except MaasError:
                    raise
                except Exception as exc:
                    raise not_servable(
                        version, f"its warm-up request raised {describe(exc)}"
                    ) from None
                check_warmup_outputs(signature, feed, outputs)
        except NotServableError:
            raise
        except MaasError as exc:
            raise not_servable(version, exc.message) from None
        finally:
            runtime.close()
        log.info("version %d of %s loads and warms up", version.version, version.model_name)
