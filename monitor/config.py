"""The configuration: one TOML file, validated once into frozen models.

``load_config(path)`` reads the file, expands ``${VAR}`` / ``${VAR:-default}`` from the
environment, validates every section and cross-reference, and either returns a ``Config``
or raises one ``ConfigError`` listing every problem, each naming its key path
(``suites[1].schedule.cron``), the bad value and what was expected.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tomllib
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from monitor.config_errors import format_validation_error, raw_problems
from monitor.durations import format_duration, parse_duration
from monitor.errors import ConfigError
from monitor.schedules import cron_trigger
from monitor.scoring import TASKS, Task, metric_names, unknown_metric_message

Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
# Names end up as Prometheus label values and in URLs: keep them short and plain.
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]


def _known_metric(name: str) -> str:
    if name not in metric_names():
        raise ValueError(unknown_metric_message(name))
    return name


MetricName = Annotated[str, AfterValidator(_known_metric)]
Role = Literal["production", "candidate", "shadow", "previous"]

_ENV_REF = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ServerConfig(_Section):
    """``[server]``: the HTTP API and ``/metrics``."""

    host: str = "127.0.0.1"
    port: int = Field(8787, ge=0, le=65535)
    public_url: str | None = None
    shutdown_grace: Duration = timedelta(seconds=5)

    @field_validator("public_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else _http_url(value).rstrip("/")


class StoreConfig(_Section):
    """``[store]``: where runs live. Without ``url``, a SQLite file in ``data_dir``."""

    url: str | None = None
    data_dir: Path = Field(Path("monitor-data"), validate_default=True)

    @field_validator("data_dir")
    @classmethod
    def _relative_to_config(cls, value: Path, info: ValidationInfo) -> Path:
        return _resolve(value, info)

    @field_validator("url")
    @classmethod
    def _known_backend(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("sqlite:", "postgresql:", "postgresql+")):
            raise ValueError("expected a 'sqlite:///PATH' or 'postgresql://...' URL")
        return value

    @property
    def effective_url(self) -> str:
        return self.url or f"sqlite:///{self.data_dir / 'monitor.db'}"


class LogConfig(_Section):
    """``[log]``: the daemon's own logging."""

    level: Literal["debug", "info", "warning", "error"] = "info"


class ScheduleConfig(_Section):
    """``schedule`` of a suite: ``every = "5m"`` or ``cron = "0 * * * *"`` (UTC)."""

    every: Duration | None = None
    cron: str | None = None
    jitter: Duration | None = None
    run_at_start: bool = False
    misfire_grace: Duration = timedelta(minutes=5)

    @field_validator("every")
    @classmethod
    def _positive(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value <= timedelta(0):
            raise ValueError("must be a positive duration")
        return value

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                cron_trigger(value)
            except ValueError as exc:
                raise ValueError(f"invalid cron expression: {exc}") from None
        return value

    def describe(self) -> str:
        """``"every 30s"`` or ``"cron '0 * * * *'"``, plus jitter."""
        when = (
            f"cron {self.cron!r}"
            if self.cron
            else f"every {format_duration(self.every or timedelta(0))}"
        )
        return when + (f" (jitter {format_duration(self.jitter)})" if self.jitter else "")

    @model_validator(mode="after")
    def _one_kind(self) -> ScheduleConfig:
        if (self.every is None) == (self.cron is None):
            raise ValueError("set exactly one of 'every' (a duration) or 'cron'")
        return self


class _ModelBase(_Section):
    name: Name
    url: str
    headers: dict[str, SecretStr] = {}
    timeout: Duration = timedelta(seconds=30)
    concurrency: int = Field(4, ge=1, le=1024)
    role: Role = "production"

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _http_url(value)


class HttpModelConfig(_ModelBase):
    """A model behind any JSON API. ``body`` is a template: a string ``"{{field}}"`` is
    replaced by that case field's value (any JSON type); without ``body`` the case's input
    fields are sent as one JSON object. ``prediction`` is a JMESPath into the response."""

    adapter: Literal["http"]
    method: Literal["POST", "PUT", "GET"] = "POST"
    params: dict[str, str] = {}
    body: Any = None
    prediction: str = "prediction"

    @field_validator("prediction")
    @classmethod
    def _jmespath(cls, value: str) -> str:
        import jmespath
        from jmespath.exceptions import JMESPathError

        try:
            jmespath.compile(value)
        except JMESPathError as exc:
            raise ValueError(f"invalid JMESPath expression: {exc}") from None
        return value


ModelConfig = Annotated[HttpModelConfig, Field(discriminator="adapter")]
ADAPTERS = ("http",)


class SuiteConfig(_Section):
    """``[[suites]]``: a dataset, how to score it, which models, and when."""

    name: Name
    dataset: Path
    task: Task
    metrics: tuple[MetricName, ...] = Field(min_length=1)
    models: tuple[str, ...] = Field(min_length=1)
    id: str | None = "id"
    inputs: tuple[str, ...] | None = None
    expected: str = "expected"
    schedule: ScheduleConfig | None = None
    max_error_rate: float = Field(0.1, ge=0.0, le=1.0)

    @field_validator("dataset")
    @classmethod
    def _readable_file(cls, value: Path, info: ValidationInfo) -> Path:
        path = _resolve(value, info)
        if not path.is_file() or not os.access(path, os.R_OK):
            raise ValueError(f"no readable file at '{path}'")
        return path


class Config(_Section):
    """The whole validated configuration."""

    # Sections default to an empty table validated in context, so relative paths in their
    # defaults resolve against the config file's directory too.
    server: ServerConfig = Field(default_factory=dict, validate_default=True)
    store: StoreConfig = Field(default_factory=dict, validate_default=True)
    log: LogConfig = Field(default_factory=dict, validate_default=True)
    models: tuple[ModelConfig, ...] = ()
    suites: tuple[SuiteConfig, ...] = ()

    def model(self, name: str) -> HttpModelConfig:
        """The model called ``name`` (validation guarantees suites only name real ones)."""
        return next(m for m in self.models if m.name == name)

    def jobs(self) -> list[tuple[SuiteConfig, HttpModelConfig]]:
        """Every suite x model pair, in config order."""
        return [(s, self.model(m)) for s in self.suites for m in s.models]


def config_hash(*sections: BaseModel) -> str:
    """A stable hash of config sections, with secrets already masked by ``SecretStr``."""
    dumped = [s.model_dump(mode="json") for s in sections]
    return hashlib.sha256(json.dumps(dumped, sort_keys=True).encode()).hexdigest()[:16]


def load_config(path: str | Path, environ: Mapping[str, str] | None = None) -> Config:
    """Read, expand and validate the config file at ``path``; ``ConfigError`` lists every
    problem at once."""
    path = Path(path)
    source = str(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError([f"cannot read the file: {exc.strerror or exc}"], source=source) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError([f"not valid TOML: {exc}"], source=source) from None
    return parse_config(raw, base_dir=path.parent, environ=environ, source=source)


def parse_config(
    raw: dict[str, Any],
    *,
    base_dir: Path,
    environ: Mapping[str, str] | None = None,
    source: str = "config",
) -> Config:
    """Validate already-parsed TOML data; relative paths resolve against ``base_dir``."""
    env = os.environ if environ is None else environ
    templates: dict[str, str] = {}
    problems: list[str] = []
    expanded = _expand(raw, env, "", templates, problems)
    problems += raw_problems(expanded)
    config: Config | None = None
    try:
        config = Config.model_validate(expanded, context={"base_dir": base_dir})
    except ValidationError as exc:
        problems += format_validation_error(exc, templates, ADAPTERS)
    if problems:
        raise ConfigError(list(dict.fromkeys(problems)), source=source)
    assert config is not None
    return config


def _expand(
    value: Any, env: Mapping[str, str], path: str, templates: dict[str, str], problems: list[str]
) -> Any:
    """Expand environment references in every string, remembering the unexpanded text of
    each so that messages show ``${TOKEN}`` rather than the secret it stands for."""
    if isinstance(value, dict):
        return {
            k: _expand(v, env, f"{path}.{k}" if path else k, templates, problems)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_expand(v, env, f"{path}[{i}]", templates, problems) for i, v in enumerate(value)]
    if not isinstance(value, str) or "$" not in value:
        return value

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        problems.append(f"{path}: environment variable {name!r} is not set")
        return ""

    templates[path] = value
    return _ENV_REF.sub(substitute, value)


def _resolve(value: Path, info: ValidationInfo) -> Path:
    base = (info.context or {}).get("base_dir")
    value = value.expanduser()
    if base is not None and not value.is_absolute():
        value = Path(base) / value
    return value.resolve()


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("expected an http:// or https:// URL with a host")
    return value


__all__ = [
    "ADAPTERS",
    "TASKS",
    "Config",
    "HttpModelConfig",
    "LogConfig",
    "ModelConfig",
    "ScheduleConfig",
    "ServerConfig",
    "StoreConfig",
    "SuiteConfig",
    "config_hash",
    "load_config",
    "parse_config",
]
