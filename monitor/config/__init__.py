"""The configuration: one TOML file, validated once into frozen models, one per section.

``load_config(path)`` is the entry point; ``parse_config`` validates already-parsed data
(the demo builds its configuration that way). Each section's model lives in its own
module and receives only what it needs.
"""

from __future__ import annotations

from monitor.config.loader import Config, config_hash, load_config, parse_config
from monitor.config.models import ADAPTERS, HttpModelConfig, ModelConfig, PriceConfig, Role
from monitor.config.server import LogConfig, ServerConfig, StoreConfig, TokenConfig
from monitor.config.streams import (
    FilesSourceConfig,
    IngestSourceConfig,
    ReferenceConfig,
    SqlSourceConfig,
    StreamConfig,
    WindowConfig,
)
from monitor.config.suites import ScheduleConfig, SuiteConfig
from monitor.scoring import TASKS

__all__ = [
    "ADAPTERS",
    "TASKS",
    "Config",
    "FilesSourceConfig",
    "HttpModelConfig",
    "IngestSourceConfig",
    "LogConfig",
    "ModelConfig",
    "PriceConfig",
    "ReferenceConfig",
    "Role",
    "ScheduleConfig",
    "ServerConfig",
    "SqlSourceConfig",
    "StoreConfig",
    "StreamConfig",
    "SuiteConfig",
    "TokenConfig",
    "WindowConfig",
    "config_hash",
    "load_config",
    "parse_config",
]
