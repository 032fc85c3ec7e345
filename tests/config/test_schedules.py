"""Schedules: crontab weekdays as cron means them, intervals, jitter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.triggers.interval import IntervalTrigger

from monitor.config import ScheduleConfig
from monitor.config.schedules import build_trigger, cron_trigger
from monitor.durations import format_duration, parse_duration

SUNDAY_NOON = datetime(2026, 11, 22, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expr", "weekday"),
    [
        ("0 9 * * 1", "Mon"),
        ("0 9 * * 0", "Sun"),
        ("0 9 * * 7", "Sun"),
        ("0 9 * * 6", "Sat"),
        ("0 9 * * 2-5", "Tue"),
    ],
    ids=["1-is-monday", "0-is-sunday", "7-is-sunday", "6-is-saturday", "range"],
)
def test_crontab_weekdays_follow_cron(expr: str, weekday: str) -> None:
    fire = cron_trigger(expr).get_next_fire_time(None, SUNDAY_NOON)
    assert fire is not None and fire.strftime("%a") == weekday


def test_sunday_based_range_includes_sunday_and_weekdays() -> None:
    trigger = cron_trigger("0 9 * * 0-2")
    days, now = [], SUNDAY_NOON
    for _ in range(4):
        now = trigger.get_next_fire_time(None, now + timedelta(seconds=1))
        days.append(now.strftime("%a"))
    assert days == ["Mon", "Tue", "Sun", "Mon"]


def test_cron_is_utc_and_validates() -> None:
    fire = cron_trigger("30 * * * *").get_next_fire_time(None, SUNDAY_NOON)
    assert fire == datetime(2026, 11, 22, 12, 30, tzinfo=UTC)
    with pytest.raises(ValueError, match="expected 5 fields"):
        cron_trigger("* * *")


def test_interval_trigger_with_jitter() -> None:
    trigger = build_trigger(ScheduleConfig(every="5m", jitter="10s"))  # type: ignore[arg-type]
    assert isinstance(trigger, IntervalTrigger)
    assert trigger.interval == timedelta(minutes=5) and trigger.jitter == 10


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("5m", 300),
        ("1h", 3600),
        ("1h30m", 5400),
        ("250ms", 0.25),
        ("2d", 172800),
        (15, 15),
    ],
    ids=["s", "m", "h", "combined", "ms", "d", "number"],
)
def test_parse_duration(text: object, seconds: float) -> None:
    value = parse_duration(text)
    assert value.total_seconds() == seconds
    assert parse_duration(format_duration(value)) == value


@pytest.mark.parametrize("bad", ["", "5", "5 m", "-5s", "5x", True, None, -1], ids=str)
def test_parse_duration_rejects(bad: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)
