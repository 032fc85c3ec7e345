"""Model registries: where a model's version (and maybe its URL) comes from, and where a
passing gate or canary promotes it. One module per registry; MLflow's is the only one so
far (see docs/models.md, "Model registry", for what another would need)."""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from monitor.config.models import RegistryConfig
from monitor.registry.mlflow import MlflowRegistry

__all__ = ["MlflowRegistry", "open_registry"]


def open_registry(
    config: RegistryConfig,
    *,
    transport: httpx.BaseTransport | None = None,
    environ: Mapping[str, str] | None = None,
) -> MlflowRegistry:
    """A client of the registry ``config`` names (``kind``)."""
    return MlflowRegistry(config, transport=transport, environ=environ)
