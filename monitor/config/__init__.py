"""The configuration: one TOML file, validated once into frozen models, one per section.

``load_config(path)`` is the entry point; ``parse_config`` validates already-parsed data
(the demo builds its configuration that way). Each section's model lives in its own
module and receives only what it needs.

May import: the shared vocabulary, pydantic and ``scoring`` (to validate metric names and
options). SQLAlchemy and APScheduler are imported only by the validators that need them
(a SQL URL, a cron expression), so importing the configuration stays cheap.
"""

from __future__ import annotations

from monitor.config.alerts import AlertsConfig, DeliveryConfig, RuleConfig, SinkConfig
from monitor.config.loader import Config, config_hash, load_config, parse_config
from monitor.config.models import (
    ADAPTERS,
    AnyModelConfig,
    HttpModelConfig,
    KServeModelConfig,
    MlflowModelConfig,
    ModelConfig,
    OpenAIModelConfig,
    PriceConfig,
    RateLimit,
    RegistryConfig,
    RetryConfig,
    Role,
    TensorConfig,
)
from monitor.config.server import (
    LogConfig,
    RetentionConfig,
    ServerConfig,
    StoreConfig,
    TokenConfig,
)
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
    "AlertsConfig",
    "AnyModelConfig",
    "Config",
    "DeliveryConfig",
    "FilesSourceConfig",
    "HttpModelConfig",
    "IngestSourceConfig",
    "KServeModelConfig",
    "LogConfig",
    "MlflowModelConfig",
    "ModelConfig",
    "OpenAIModelConfig",
    "PriceConfig",
    "RateLimit",
    "ReferenceConfig",
    "RegistryConfig",
    "RetentionConfig",
    "RetryConfig",
    "Role",
    "RuleConfig",
    "ScheduleConfig",
    "ServerConfig",
    "SinkConfig",
    "SqlSourceConfig",
    "StoreConfig",
    "StreamConfig",
    "SuiteConfig",
    "TensorConfig",
    "TokenConfig",
    "WindowConfig",
    "config_hash",
    "load_config",
    "parse_config",
]
