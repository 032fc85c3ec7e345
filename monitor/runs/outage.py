"""One process's view of whether the store answers: an outage is logged once with its
cause, and once when it ends, however many operations fail in between.

Everything that talks to the store on the daemon's behalf (run writes, heartbeats, the
sweep, the alert timer, drift jobs) reports here instead of logging each failure, so a
PostgreSQL restart is two log lines rather than a traceback per attempt. ``up_for`` tells
the sweep how long the store has answered without a break: it judges heartbeats only
once live owners have had time to refresh theirs after an outage.

Call it from the event loop that owns it: callbacks run there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from monitor.clock import Clock, utc_now
from monitor.durations import format_duration

logger = logging.getLogger(__name__)


class StoreOutage:
    """Whether the store answered last time anyone asked, and since when."""

    def __init__(self, *, clock: Clock = utc_now) -> None:
        self._clock = clock
        self.down_since: datetime | None = None
        self.up_since: datetime = clock()
        self.on_recovered: list[Callable[[], object]] = []
        """Called (in order) when the store answers again after an outage."""

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def failed(self, error: BaseException) -> None:
        """The store did not answer (``StoreUnavailable``): log the first such failure."""
        if self.down_since is None:
            self.down_since = self._clock()
            logger.warning(
                "store unreachable: %s; runs keep their results and retry, scheduled slots"
                " are kept until it answers",
                error,
            )

    def answered(self) -> None:
        """The store answered: log the end of an outage and run ``on_recovered``."""
        if self.down_since is None:
            return
        now = self._clock()
        outage, self.down_since, self.up_since = now - self.down_since, None, now
        logger.warning("store reachable again after %s", format_duration(_whole(outage)))
        for callback in list(self.on_recovered):
            try:
                callback()
            except Exception:
                logger.exception("after the store outage: %r failed", callback)

    def up_for(self, now: datetime) -> timedelta:
        """How long the store has answered without a break (zero while it does not)."""
        return timedelta(0) if self.down_since is not None else now - self.up_since


def _whole(duration: timedelta) -> timedelta:
    return timedelta(seconds=max(1, round(duration.total_seconds())))
