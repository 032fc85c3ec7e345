"""The delivery worker: drains the outbox into sinks, at least once, with a stable id.

An asyncio task owned by the daemon. Each round it leases due rows from the store (at
most one per sink and alert, the oldest, after older states a newer one supersedes are
set aside), sends them concurrently, and records each attempt: delivered; retried later
with capped exponential backoff and jitter (or the receiver's ``Retry-After``) after a
transient failure; dead after a permanent one (a 4xx other than 408/429) or once the
row has been retried for ``max_age``. The payload and its id are stored, so a retry
after a crash sends the same bytes under the same id; a crash between sending and
recording means one duplicate, never a loss.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Mapping
from datetime import timedelta

from monitor.alerts.records import OutboxMessage, OutboxStatus
from monitor.clock import Clock, utc_now
from monitor.config.alerts import DeliveryConfig
from monitor.sinks import SendResult, Sink
from monitor.store.parts import HasAlerts

logger = logging.getLogger(__name__)

BATCH = 20


def backoff_delay(
    attempts: int,
    config: DeliveryConfig,
    *,
    retry_after: float | None = None,
    jitter: float = 1.0,
) -> timedelta:
    """Wait before attempt ``attempts + 1``: ``backoff * 2**(attempts-1)`` capped at
    ``max_backoff``, scaled by ``jitter`` in [0.5, 1] ("equal jitter", so retries of many
    rows spread out without collapsing to zero). A receiver's ``Retry-After`` wins when
    longer."""
    # Attempts are unbounded now: cap the exponent before 2**n overflows a float.
    base = config.backoff.total_seconds() * 2.0 ** min(max(attempts - 1, 0), 60)
    delay = min(base, config.max_backoff.total_seconds()) * min(max(jitter, 0.5), 1.0)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return timedelta(seconds=delay)


class DeliveryWorker:
    """Sends queued notifications; ``run()`` loops until cancelled."""

    def __init__(
        self,
        config: DeliveryConfig,
        store: HasAlerts,
        sinks: Mapping[str, Sink],
        *,
        clock: Clock = utc_now,
        jitter: Callable[[], float] = lambda: random.uniform(0.5, 1.0),
    ) -> None:
        self.config = config
        self._store = store
        self._sinks = dict(sinks)
        self._clock = clock
        self._jitter = jitter
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Look at the outbox now rather than at the next poll (thread-safe via loop)."""
        self._wake.set()

    async def run(self) -> None:
        """Deliver until cancelled; a store outage is logged and retried next poll."""
        poll = self.config.poll_interval.total_seconds()
        while True:
            try:
                sent = await self.deliver_due()
            except Exception as exc:  # the worker must outlive a store hiccup
                logger.warning("alert delivery: %s: %s", type(exc).__name__, exc)
                sent = 0
            if sent:
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=poll)

    async def deliver_due(self) -> int:
        """One round: lease due rows, send them, record the outcomes; return how many."""
        now = self._clock()
        claimed = await asyncio.to_thread(
            self._store.alerts.claim_notifications,
            now=now,
            lease_until=now + self.config.lease,
            limit=BATCH,
        )
        await asyncio.gather(*(self._deliver(m) for m in claimed))
        return len(claimed)

    async def _deliver(self, message: OutboxMessage) -> None:
        sink = self._sinks.get(message.sink)
        if sink is None:
            result = SendResult(False, f"sink {message.sink!r} is not configured", permanent=True)
        else:
            result = await sink.send(message)
        now = self._clock()
        attempts = message.attempts + 1
        since = message.retry_since or message.created_at
        error = result.error
        if result.ok:
            status, next_at = OutboxStatus.DELIVERED, None
            logger.info(
                "delivered %s %s (sequence %d) to %s",
                message.event,
                message.id,
                message.sequence,
                message.sink,
            )
        elif result.permanent or now - since >= self.config.max_age:
            status, next_at = OutboxStatus.DEAD, None
            if not result.permanent:
                error = f"{error} (still failing after max_age {self.config.max_age})"
            logger.error("dead letter %s after %d attempt(s): %s", message.id, attempts, error)
        else:
            delay = backoff_delay(
                attempts, self.config, retry_after=result.retry_after, jitter=self._jitter()
            )
            status, next_at = OutboxStatus.PENDING, now + delay
            logger.warning(
                "delivery of %s failed (attempt %d, retry in %.1fs): %s",
                message.id,
                attempts,
                delay.total_seconds(),
                error,
            )
        await asyncio.to_thread(
            self._store.alerts.record_delivery_attempt,
            message.id,
            at=now,
            status=status,
            next_attempt_at=next_at,
            error=error,
        )

    async def aclose(self) -> None:
        """Close every sink's HTTP client."""
        for sink in self._sinks.values():
            await sink.aclose()
