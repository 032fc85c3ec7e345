"""Turn a suite's ``schedule`` into an APScheduler 3 trigger.

Cron expressions follow crontab, where day-of-week 0 and 7 are Sunday and 1 is Monday.
APScheduler 3 numbers weekdays from Monday = 0 (its issue 286), so numeric weekdays are
rewritten as names before they reach it: ``"0 9 * * 1"`` fires on Mondays, as in cron.

Intervals are anchored at the Unix epoch (``every = "30s"`` fires at :00 and :30), so
every replica, and every restart, agrees on a schedule's slots: a slot's time is its
identity in the run queue. ``slots`` lists them (without jitter) for the leader's
catch-up and for naming the slot a firing belongs to.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

if TYPE_CHECKING:
    from monitor.config import ScheduleConfig

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
"""Where interval schedules start counting."""

_TICK = timedelta(microseconds=1)

_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RANGE = re.compile(r"^(\d)-(\d)$")


def crontab_weekdays(field: str) -> str:
    """Rewrite crontab day-of-week numbers as names APScheduler reads the crontab way."""
    parts = []
    for part in field.split(","):
        base, slash, step = part.partition("/")
        span = _RANGE.match(base)
        if span and int(span.group(1)) == 0 and not slash:
            # "0-5" is Sunday through Friday: Sunday plus a range that starts on Monday.
            end = int(span.group(2))
            parts.append("sun" if end == 0 else f"sun,mon-{_DAYS[end]}")
        elif span:
            parts.append(f"{_DAYS[int(span.group(1))]}-{_DAYS[int(span.group(2))]}{slash}{step}")
        elif base.isdigit() and int(base) <= 7:
            parts.append(f"{_DAYS[int(base)]}{slash}{step}")
        else:
            parts.append(part)
    return ",".join(parts)


def cron_trigger(expr: str, *, jitter: int | None = None) -> CronTrigger:
    """A UTC ``CronTrigger`` for a five-field crontab expression. ``ValueError`` if invalid."""
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"expected 5 fields (minute hour day month weekday), got {len(fields)}")
    minute, hour, day, month, weekday = fields
    return CronTrigger(
        minute=minute,
        hour=hour,
        day=day,
        month=month,
        day_of_week=crontab_weekdays(weekday),
        timezone="UTC",
        jitter=jitter,
    )


def build_trigger(schedule: ScheduleConfig) -> BaseTrigger:
    """The trigger for ``schedule``; jitter is rounded to whole seconds, as APScheduler takes."""
    jitter = round(schedule.jitter.total_seconds()) if schedule.jitter else None
    if schedule.cron is not None:
        return cron_trigger(schedule.cron, jitter=jitter)
    assert schedule.every is not None
    return IntervalTrigger(
        seconds=schedule.every.total_seconds(), start_date=EPOCH, timezone="UTC", jitter=jitter
    )


def slots(schedule: ScheduleConfig, *, after: datetime, until: datetime) -> Iterator[datetime]:
    """The schedule's slot times in ``(after, until]``, oldest first, without jitter."""
    trigger = build_trigger(schedule.model_copy(update={"jitter": None}))
    at = trigger.get_next_fire_time(None, after + _TICK)
    while at is not None and at <= until:
        if at > after:
            yield at
        at = trigger.get_next_fire_time(at, at + _TICK)


def slot_at(schedule: ScheduleConfig, now: datetime, *, lookback: timedelta) -> datetime:
    """The slot a firing at ``now`` belongs to: the newest slot time at or before it
    (within ``lookback``; ``now`` itself if none is, as for a run at start)."""
    newest = now
    for at in slots(schedule, after=now - lookback, until=now):
        newest = at
    return newest
