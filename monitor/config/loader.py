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
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from monitor.config._base import Section
from monitor.config.alerts import AlertsConfig
from monitor.config.models import ADAPTERS, AnyModelConfig, ModelConfig
from monitor.config.problems import MAX_DEPTH, format_validation_error, raw_problems, too_deep
from monitor.config.server import LogConfig, ServerConfig, StoreConfig
from monitor.config.streams import StreamConfig
from monitor.config.suites import SuiteConfig
from monitor.errors import ConfigError

_ENV_REF = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class Config(Section):
    """The whole validated configuration."""

    # Sections default to an empty table validated in context, so relative paths in their
    # defaults resolve against the config file's directory too.
    server: ServerConfig = Field(default_factory=dict, validate_default=True)
    store: StoreConfig = Field(default_factory=dict, validate_default=True)
    log: LogConfig = Field(default_factory=dict, validate_default=True)
    models: tuple[ModelConfig, ...] = ()
    suites: tuple[SuiteConfig, ...] = ()
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    streams: tuple[StreamConfig, ...] = ()

    def model(self, name: str) -> AnyModelConfig:
        """The model called ``name`` (validation guarantees suites only name real ones)."""
        return next(m for m in self.models if m.name == name)

    def stream(self, name: str) -> StreamConfig | None:
        """The stream called ``name``, or ``None``."""
        return next((s for s in self.streams if s.name == name), None)

    def jobs(self) -> list[tuple[SuiteConfig, AnyModelConfig]]:
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
        text = path.read_text(encoding="utf-8")
        raw = tomllib.loads(text)
    except OSError as exc:
        raise ConfigError([f"cannot read the file: {exc.strerror or exc}"], source=source) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError([f"not valid TOML: {exc}"], source=source) from None
    except RecursionError:
        # tomllib parses nested arrays and inline tables by recursion.
        raise ConfigError([too_deep(text)], source=source) from None
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
    if deep := _too_deep(raw, "", 0):
        key = re.sub(r"(?:\[\d+\])+$", "", deep) or deep  # the key, not a[0][0][0]...
        raise ConfigError([f"{key}: nested more than {MAX_DEPTH} levels deep"], source=source)
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


def _too_deep(value: Any, path: str, depth: int) -> str | None:
    """The key path of the first value nested past ``MAX_DEPTH``, if any (before anything
    else walks the data recursively)."""
    if depth > MAX_DEPTH:
        return path or "(top level)"
    items: Any = ()
    if isinstance(value, dict):
        items = ((f"{path}.{k}" if path else str(k), v) for k, v in value.items())
    elif isinstance(value, list):
        items = ((f"{path}[{i}]", v) for i, v in enumerate(value))
    for child_path, child in items:
        if found := _too_deep(child, child_path, depth + 1):
            return found
    return None


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
