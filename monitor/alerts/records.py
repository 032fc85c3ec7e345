"""Plain records of alert delivery and operator actions, shared by store, worker and API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class OutboxStatus(StrEnum):
    """``pending`` until sent. ``superseded``: a newer state of the same alert for the same
    sink was queued before this one was delivered, so it is never sent. ``dead``: a
    permanent failure, or still failing after ``max_age``. ``discarded``: a dead letter an
    operator gave up on (kept for the record)."""

    PENDING = "pending"
    DELIVERED = "delivered"
    SUPERSEDED = "superseded"
    DEAD = "dead"
    DISCARDED = "discarded"


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """One notification for one sink. ``id`` is its idempotency id; ``sequence`` orders
    the notifications of one alert (fingerprint): higher is newer. ``retry_since`` is when
    the current retry period began (creation, or the last redrive): ``max_age`` counts
    from it."""

    id: str
    sink: str
    fingerprint: str
    event: str
    payload: dict[str, Any]
    status: OutboxStatus
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    delivered_at: datetime | None = None
    last_error: str | None = None
    sequence: int = 0
    retry_since: datetime | None = None


@dataclass(frozen=True, slots=True)
class Silence:
    """Notifications of alerts whose labels match every matcher are not sent by direct
    sinks between ``starts_at`` and ``ends_at``."""

    id: int
    matchers: dict[str, str]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str

    def matches(self, labels: dict[str, str], at: datetime) -> bool:
        """Whether this silence covers an alert with ``labels`` at ``at``."""
        in_time = self.starts_at <= at < self.ends_at
        return in_time and all(labels.get(k) == v for k, v in self.matchers.items())


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One phase change of one alert."""

    id: int
    fingerprint: str
    rule: str
    from_phase: str
    to_phase: str
    at: datetime
    summary: str
    value: float | None


@dataclass(frozen=True, slots=True)
class OutboxStats:
    """Outbox counts for metrics: rows by status, failed attempts so far, and how many
    times a notification went dead (a counter: redriving or discarding one keeps it)."""

    by_status: dict[str, int]
    failed_attempts: int
    dead_total: int = 0
