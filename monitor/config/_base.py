"""Building blocks shared by every config section: the frozen base, durations, names."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo

from monitor.durations import parse_duration


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be a positive duration (more than 0s)")
    return value


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
PositiveDuration = Annotated[timedelta, BeforeValidator(parse_duration), AfterValidator(_positive)]
"""A duration that must be more than zero: a timeout of ``"0s"`` fails every request."""
# Names end up as Prometheus label values and in URLs: keep them short and plain.
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]


class Section(BaseModel):
    """A config table: frozen, and an unknown key is an error."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def resolve_path(value: Path, info: ValidationInfo) -> Path:
    """``value`` made absolute against the config file's directory (validation context)."""
    base = (info.context or {}).get("base_dir")
    value = value.expanduser()
    if base is not None and not value.is_absolute():
        value = Path(base) / value
    return value.resolve()


def http_url(value: str) -> str:
    """``value`` if it is an http(s) URL with a host; the message never echoes it."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("expected an http:// or https:// URL with a host")
    return value
