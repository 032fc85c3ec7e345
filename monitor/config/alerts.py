"""``[alerts]``: alert rules, the sinks that deliver them, and how delivery retries.

A rule is one table whose ``kind`` says which of its keys apply; a sink likewise. Both are
checked once at load, so the engine never meets a threshold rule without a metric or a
webhook without a URL. Routing lives on the sink: it takes the severities and labels it
matches (``severities``, ``match``); a sink with neither takes every alert.
"""

from __future__ import annotations

import base64
import binascii
from datetime import timedelta
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from monitor.config._base import Duration, Name, PositiveDuration, Section, http_url
from monitor.durations import parse_duration

RuleKind = Literal[
    "regression",
    "threshold",
    "drift",
    "performance",
    "fairness",
    "divergence",
    "run_failed",
    "error_rate",
    "latency",
    "stale",
]
SinkKind = Literal["webhook", "slack", "alertmanager"]
Severity = Literal["critical", "warning", "info"]
Operator = Literal["<", "<=", ">", ">="]

# Which optional rule keys each kind needs, and which it accepts at all.
_RULE_NEEDS: dict[str, tuple[str, ...]] = {
    "threshold": ("metric", "op", "value"),
    "error_rate": ("value",),
    "latency": ("value",),
    "stale": ("after",),
    "regression": (),
    "drift": (),
    "performance": (),
    "fairness": ("value",),
    "divergence": ("value",),
    "run_failed": (),
}
_RULE_TAKES: dict[str, tuple[str, ...]] = {
    "threshold": ("suite", "model", "metric", "op", "value"),
    "error_rate": ("suite", "model", "value"),
    "latency": ("suite", "model", "metric", "op", "value"),
    "stale": ("suite", "model", "stream", "after"),
    "regression": ("suite", "model", "metrics"),
    "drift": ("stream", "columns"),
    "performance": ("stream", "metrics"),
    "fairness": ("suite", "model", "stream", "metric", "value"),
    "divergence": ("stream", "metric", "value"),
    "run_failed": ("suite", "model"),
}
_FAIRNESS = (
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
)
_DIVERGENCE = ("disagreement_share", "mean_difference")
_OPTIONAL = ("suite", "model", "stream", "metric", "op", "value", "after", "metrics", "columns")


def _for_value(value: Any) -> int | timedelta:
    """``for``: a whole number of consecutive evaluations, or a duration string."""
    if isinstance(value, bool):
        raise ValueError("expected a count of evaluations (e.g. 3) or a duration (e.g. '10m')")
    if isinstance(value, int):
        if value < 1:
            raise ValueError("a count of evaluations must be at least 1")
        return value
    return parse_duration(value)


class RuleConfig(Section):
    """``[[alerts.rules]]``: a condition over runs, verdicts, drift reports or time."""

    name: Name
    kind: RuleKind
    severity: Severity = "warning"
    labels: dict[str, str] = Field(default_factory=dict)
    for_: int | timedelta = Field(1, alias="for")
    repeat_interval: Duration | None = None
    send_resolved: bool = True
    summary: str | None = None
    # Kind-specific keys (see _RULE_TAKES).
    suite: str | None = None
    model: str | None = None
    stream: str | None = None
    metric: str | None = None
    op: Operator | None = None
    value: float | None = None
    after: Duration | None = None
    metrics: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()

    @field_validator("for_", mode="before")
    @classmethod
    def _for(cls, value: Any) -> int | timedelta:
        return _for_value(value)

    @field_validator("labels")
    @classmethod
    def _no_reserved_labels(cls, value: dict[str, str]) -> dict[str, str]:
        reserved = {"alertname", "severity", "rule_kind"} & set(value)
        if reserved:
            raise ValueError(f"labels {sorted(reserved)} are set by monitor itself")
        return value

    @model_validator(mode="after")
    def _fits_kind(self) -> RuleConfig:
        missing = [key for key in _RULE_NEEDS[self.kind] if getattr(self, key) is None]
        if missing:
            raise ValueError(f"kind {self.kind!r} needs {', '.join(repr(k) for k in missing)}")
        stray = [
            key
            for key in _OPTIONAL
            if key not in _RULE_TAKES[self.kind] and getattr(self, key) not in (None, ())
        ]
        if stray:
            raise ValueError(
                f"kind {self.kind!r} does not take {', '.join(repr(k) for k in stray)}"
                f" (it takes: {', '.join(_RULE_TAKES[self.kind])})"
            )
        if self.stream is not None and (self.suite is not None or self.model is not None):
            raise ValueError(f"kind {self.kind!r} watches suites or a stream, not both")
        if self.kind == "fairness" and self.metric not in (None, *_FAIRNESS):
            raise ValueError(
                f"metric {self.metric!r} is not a fairness measure; expected one of:"
                f" {', '.join(_FAIRNESS)}"
            )
        if self.kind == "divergence":
            self._check_divergence()
        return self

    def _check_divergence(self) -> None:
        if self.metric not in (None, *_DIVERGENCE):
            raise ValueError(
                f"metric {self.metric!r} is not a divergence measure; expected one of:"
                f" {', '.join(_DIVERGENCE)}"
            )
        assert self.value is not None
        if self.value < 0 or (self.metric == "disagreement_share" and self.value >= 1):
            raise ValueError(
                f"value: a divergence limit must be at least 0 (a disagreement share below"
                f" 1), got: {self.value:g}"
            )

    @property
    def for_count(self) -> int:
        """Consecutive active evaluations needed before firing (1 for a duration ``for``)."""
        return self.for_ if isinstance(self.for_, int) else 1

    @property
    def for_duration(self) -> timedelta:
        """How long the condition must hold before firing (zero for a count ``for``)."""
        return self.for_ if isinstance(self.for_, timedelta) else timedelta(0)

    @property
    def metric_name(self) -> str:
        """The metric a threshold or latency rule reads (latency defaults to p95)."""
        return self.metric or ("latency-p95" if self.kind == "latency" else "")

    @property
    def operator(self) -> Operator:
        """The comparison that means "bad" (latency defaults to ``>``)."""
        return self.op or (">" if self.kind == "latency" else "<")


class SinkConfig(Section):
    """``[[alerts.sinks]]``: where notifications go, and which alerts a sink takes."""

    name: Name
    kind: SinkKind
    url: str
    severities: tuple[Severity, ...] = ()
    match: dict[str, str] = Field(default_factory=dict)
    timeout: PositiveDuration = timedelta(seconds=10)
    # webhook: the signing secret, ``whsec_`` + base64 (Standard Webhooks).
    secret: SecretStr | None = None
    # alertmanager: basic or bearer auth, and how often a firing alert is re-sent.
    username: str | None = None
    password: SecretStr | None = None
    bearer_token: SecretStr | None = None
    resend_interval: Duration = timedelta(minutes=1)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return http_url(value).rstrip("/")

    @field_validator("secret")
    @classmethod
    def _whsec(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            signing_key(value)
        return value

    @model_validator(mode="after")
    def _fits_kind(self) -> SinkConfig:
        if self.kind == "webhook" and self.secret is None:
            raise ValueError("kind 'webhook' needs 'secret' (e.g. secret = '${WEBHOOK_SECRET}')")
        auth = [k for k in ("username", "password", "bearer_token") if getattr(self, k)]
        if auth and self.kind != "alertmanager":
            raise ValueError(f"only kind 'alertmanager' takes {', '.join(auth)}")
        if self.bearer_token is not None and self.username is not None:
            raise ValueError("set basic auth ('username', 'password') or 'bearer_token', not both")
        if (self.username is None) != (self.password is None):
            raise ValueError("basic auth needs both 'username' and 'password'")
        if self.secret is not None and self.kind != "webhook":
            raise ValueError("only kind 'webhook' takes 'secret'")
        return self

    def takes(self, severity: str, labels: dict[str, str]) -> bool:
        """Whether this sink routes an alert of ``severity`` with ``labels``."""
        if self.severities and severity not in self.severities:
            return False
        return all(labels.get(key) == value for key, value in self.match.items())


def signing_key(secret: SecretStr) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret; raises ``ValueError`` (never echoing
    the secret) for anything else."""
    text = secret.get_secret_value()
    if not text.startswith("whsec_"):
        raise ValueError("expected a secret of the form 'whsec_<base64>'")
    try:
        key = base64.b64decode(text.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("expected base64 after 'whsec_'") from None
    if len(key) < 16:
        raise ValueError("the secret must decode to at least 16 bytes")
    return key


class DeliveryConfig(Section):
    """``[alerts.delivery]``: retries of the outbox worker.

    Transient failures are retried with capped exponential back-off until a notification
    is ``max_age`` old; a count of attempts would turn any outage longer than the budget
    into lost notifications."""

    backoff: Duration = timedelta(seconds=1)
    max_backoff: Duration = timedelta(minutes=5)
    max_age: Duration = timedelta(hours=24)
    poll_interval: Duration = timedelta(seconds=1)
    lease: Duration = timedelta(seconds=60)

    @model_validator(mode="before")
    @classmethod
    def _removed_keys(cls, data: Any) -> Any:
        if isinstance(data, dict) and "max_attempts" in data:
            raise ValueError(
                "'max_attempts' was removed: transient failures are now retried until a"
                " notification is 'max_age' old (default '24h'); delete the key, or set"
                " e.g. max_age = '6h'"
            )
        return data

    @model_validator(mode="after")
    def _positive(self) -> DeliveryConfig:
        for key in ("backoff", "max_backoff", "max_age", "poll_interval", "lease"):
            if getattr(self, key) <= timedelta(0):
                raise ValueError(f"{key!r} must be a positive duration")
        if self.max_backoff < self.backoff:
            raise ValueError("'max_backoff' must be at least 'backoff'")
        return self


class AlertsConfig(Section):
    """``[alerts]``: rules, sinks, delivery, and how often time-based rules are checked."""

    evaluate_every: Duration = timedelta(seconds=30)
    delivery: DeliveryConfig = Field(default_factory=DeliveryConfig)
    rules: tuple[RuleConfig, ...] = ()
    sinks: tuple[SinkConfig, ...] = ()

    @field_validator("evaluate_every")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be a positive duration")
        return value

    def rule(self, name: str) -> RuleConfig | None:
        """The rule called ``name``, if configured."""
        return next((r for r in self.rules if r.name == name), None)

    def sink(self, name: str) -> SinkConfig | None:
        """The sink called ``name``, if configured."""
        return next((s for s in self.sinks if s.name == name), None)
