"""``[server]``, ``[store]`` and ``[log]``: how the daemon itself runs."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from monitor.config._base import Duration, Section, http_url, resolve_path


class ServerConfig(Section):
    """``[server]``: the HTTP API and ``/metrics``."""

    host: str = "127.0.0.1"
    port: int = Field(8787, ge=0, le=65535)
    public_url: str | None = None
    shutdown_grace: Duration = timedelta(seconds=5)

    @field_validator("public_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else http_url(value).rstrip("/")


class StoreConfig(Section):
    """``[store]``: where runs live. Without ``url``, a SQLite file in ``data_dir``."""

    url: str | None = None
    data_dir: Path = Field(Path("monitor-data"), validate_default=True)

    @field_validator("data_dir")
    @classmethod
    def _relative_to_config(cls, value: Path, info: ValidationInfo) -> Path:
        return resolve_path(value, info)

    @field_validator("url")
    @classmethod
    def _known_backend(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("sqlite:", "postgresql:", "postgresql+")):
            raise ValueError("expected a 'sqlite:///PATH' or 'postgresql://...' URL")
        return value

    @property
    def effective_url(self) -> str:
        return self.url or f"sqlite:///{self.data_dir / 'monitor.db'}"


class LogConfig(Section):
    """``[log]``: the daemon's own logging."""

    level: Literal["debug", "info", "warning", "error"] = "info"
