"""``[server]``, ``[store]`` and ``[log]``: how the daemon itself runs."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import (
    AfterValidator,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from monitor.config._base import (
    Duration,
    Name,
    PositiveDuration,
    Section,
    http_url,
    resolve_path,
)
from monitor.durations import format_duration

Scope = Literal["read", "write"]


def _endpoint_prefix(value: str) -> str:
    parts = urlsplit(http_url(value))
    if parts.username is not None or parts.password is not None:
        raise ValueError("a prefix must not carry credentials (user:password@)")
    if parts.query or parts.fragment:
        raise ValueError("a prefix is scheme://host[:port][/path], without '?' or '#'")
    return value


EndpointPrefix = Annotated[str, AfterValidator(_endpoint_prefix)]


class TokenConfig(Section):
    """``[[server.tokens]]``: a bearer token for the API, taken from the environment.

    ``token = "${MONITOR_WRITE_TOKEN}"``; the value is a ``SecretStr``, so it never shows
    in a dump, a log line or an error message.
    """

    name: Name
    token: SecretStr
    scopes: tuple[Scope, ...] = ("read",)

    @field_validator("token")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 16:
            raise ValueError("a token must be at least 16 characters long")
        return value


class ServerConfig(Section):
    """``[server]``: the HTTP API and ``/metrics``."""

    host: str = "127.0.0.1"
    port: int = Field(8787, ge=0, le=65535)
    public_url: str | None = None
    shutdown_grace: Duration = timedelta(seconds=5)
    tokens: tuple[TokenConfig, ...] = ()
    allowed_endpoint_prefixes: tuple[EndpointPrefix, ...] = ()
    """Where ``POST /v1/runs`` may send a model's requests besides the configured URLs:
    an ad-hoc ``endpoint`` must match one of these on scheme, host, port and path prefix.
    Empty (the default): no ad-hoc endpoints at all."""
    max_body_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    """The largest request body any route accepts (stream ingest has its own limit)."""
    header_timeout: Duration = Field(timedelta(seconds=10), gt=timedelta(0))
    """A request's line and headers must arrive within this of its first byte (or of the
    connection opening), else the connection is closed: slow clients cannot hold it."""
    body_timeout: Duration = Field(timedelta(seconds=60), gt=timedelta(0))
    """A request's body must arrive within this of its headers."""
    max_connections: int = Field(1000, ge=1)
    """Open HTTP connections at most; one more is closed at once. Lowered at start when
    the open-files limit minus ``fd_reserve`` is smaller."""
    fd_reserve: int = Field(256, ge=16)
    """File descriptors kept free for the scheduler (model connections, the store, files)
    whatever the HTTP clients do."""
    open_reads: bool = False
    """Let anyone read ``/v1`` without a token even when tokens are configured (writes
    still need one). For a daemon that only listens on loopback, like the demo."""
    adhoc_series_ttl: PositiveDuration = timedelta(days=1)
    """How long ``/metrics`` keeps exporting a suite x model or stream that is not in the
    configuration (an ad-hoc model of ``POST /v1/runs``, a model or stream removed from
    the file) after its last run or report: then its series end, so ad-hoc ids do not
    pile up series forever. Configured ones are exported whatever their age."""

    @field_validator("public_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else http_url(value).rstrip("/")


class RetentionConfig(Section):
    """``[store.retention]``: how long each kind of history is kept, and how the daemon
    deletes what is older (``monitor.store.retention`` lists what is never deleted)."""

    enabled: bool = True
    runs: PositiveDuration = timedelta(days=90)
    """Finished runs with their case results, metrics and slices, by finish time."""
    verdicts: PositiveDuration = timedelta(days=90)
    """Verdicts and their per-metric rows, by creation time. A run a kept verdict refers
    to is kept with it."""
    drift_reports: PositiveDuration = timedelta(days=90)
    """Drift reports (and their HTML), by creation time."""
    alert_history: PositiveDuration = timedelta(days=180)
    """Alert phase changes, by time."""
    outbox: PositiveDuration = timedelta(days=7)
    """Delivered, superseded and discarded notifications, by creation time; pending ones
    and dead letters are never deleted."""
    every: PositiveDuration = timedelta(minutes=10)
    """How often the daemon deletes what expired."""
    batch_size: int = Field(500, ge=10, le=10_000)
    """Rows of one kind deleted per transaction: each batch is one short transaction."""
    max_cases: int = Field(5000, ge=100, le=100_000)
    """Case result rows deleted per transaction at most (a run's cases go with it)."""


class StoreConfig(Section):
    """``[store]``: where runs live. Without ``url``, a SQLite file in ``data_dir``."""

    url: str | None = None
    data_dir: Path = Field(Path("monitor-data"), validate_default=True)
    heartbeat_every: Duration = timedelta(seconds=10)
    """How often a process refreshes the heartbeat of the runs it owns (queued or
    running), and how often the daemon sweeps for abandoned runs."""
    stale_after: Duration = timedelta(minutes=1)
    """A queued or running run whose heartbeat is older than this was abandoned (its
    process died or lost the store): any replica's sweep finishes it ``interrupted``."""
    retry_for: Duration = timedelta(minutes=15)
    """How long a run keeps retrying its writes while the store is unreachable; past it
    the run gives up and is stored ``failed`` as soon as the store answers."""
    buffer_cases: int = Field(5000, ge=1)
    """Case results a run holds while the store is unreachable (or slow) before it stops
    asking the model and waits."""
    election_every: Duration = timedelta(seconds=2)
    """PostgreSQL: how often a replica that does not lead tries to take the scheduling
    lock, and how often the leader checks the connection that holds it."""
    claim_every: Duration = timedelta(seconds=1)
    """How often a replica looks for queued runs (it also looks at once when it queued
    one itself)."""
    max_runs: int = Field(8, ge=1)
    """Runs one replica executes at once (one per suite x model in any case)."""
    retention: RetentionConfig = RetentionConfig()

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

    @field_validator("heartbeat_every", "stale_after", "retry_for", "election_every", "claim_every")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be a positive duration")
        return value

    @model_validator(mode="after")
    def _beats_before_stale(self) -> StoreConfig:
        if self.stale_after < 3 * self.heartbeat_every:
            raise ValueError(
                f"stale_after ({format_duration(self.stale_after)}) must be at least"
                f" 3 x heartbeat_every ({format_duration(self.heartbeat_every)}): a live"
                " run would be swept after a missed beat"
            )
        return self

    @property
    def effective_url(self) -> str:
        return self.url or f"sqlite:///{self.data_dir / 'monitor.db'}"

    @property
    def shown_url(self) -> str:
        """``effective_url`` with any password replaced by ``***``, safe to print. The
        standard library splits it, so ``check-config`` does not import SQLAlchemy to print
        one line; it agrees with the store's ``redact_url`` (a test compares the two)."""
        url = self.effective_url
        try:
            parts = urlsplit(url)
            if parts.password is None:
                return url
        except ValueError:
            return "<unparseable database url>"
        host = parts.netloc.rpartition("@")[2]
        return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


class LogConfig(Section):
    """``[log]``: the daemon's own logging."""

    level: Literal["debug", "info", "warning", "error"] = "info"
