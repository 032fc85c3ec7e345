"""monitor: keeps deployed ML and LLM models honest in production.

A long-running daemon, configured by one TOML file, that re-runs evaluation suites against
model endpoints on a schedule, stores every run, and exports what it learns as Prometheus
metrics. See README.md and ``config.example.toml``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from monitor.errors import (
    AdapterError,
    BatchError,
    ConfigError,
    DatasetError,
    MonitorError,
    RegistryError,
    SourceError,
    StartupError,
    StoreBusy,
    StoreError,
    StoreUnavailable,
)

if TYPE_CHECKING:
    from monitor.config import Config, load_config

__version__ = "0.1.0"

__all__ = [
    "AdapterError",
    "BatchError",
    "Config",
    "ConfigError",
    "DatasetError",
    "MonitorError",
    "RegistryError",
    "SourceError",
    "StartupError",
    "StoreBusy",
    "StoreError",
    "StoreUnavailable",
    "__version__",
    "load_config",
]


def __getattr__(name: str) -> Any:
    # The configuration (pydantic models, the metric registry) loads on first use, so
    # ``monitor --version`` and ``--help`` do not pay for it (PEP 562).
    if name in ("Config", "load_config"):
        from monitor import config

        return getattr(config, name)
    raise AttributeError(f"module 'monitor' has no attribute {name!r}")
