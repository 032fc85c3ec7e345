"""monitor: keeps deployed ML and LLM models honest in production.

A long-running daemon, configured by one TOML file, that re-runs evaluation suites against
model endpoints on a schedule, stores every run, and exports what it learns as Prometheus
metrics. See README.md and ``config.example.toml``.
"""

from __future__ import annotations

from monitor.config import Config, load_config
from monitor.errors import (
    AdapterError,
    ConfigError,
    DatasetError,
    MonitorError,
    StoreError,
)

__version__ = "0.1.0"

__all__ = [
    "AdapterError",
    "Config",
    "ConfigError",
    "DatasetError",
    "MonitorError",
    "StoreError",
    "__version__",
    "load_config",
]
