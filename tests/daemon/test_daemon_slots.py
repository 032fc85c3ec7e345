"""Slots kept during a store outage, and the outage's own bookkeeping, with a fixed clock:
which slots are created when the store answers (oldest first, within ``misfire_grace``),
which are skipped, and that an outage is logged once each way."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.config import Config, parse_config
from monitor.daemon.slots import MAX_KEPT, MissedSlots
from monitor.errors import StoreUnavailable
from monitor.runs.outage import StoreOutage

T0 = datetime(2026, 12, 2, 12, tzinfo=UTC)


def config(tmp_path: Path) -> Config:
    dataset = tmp_path / "cases.jsonl"
    dataset.write_text('{"x": 1, "y": "a"}\n')
    suite = {"dataset": str(dataset), "task": "classification", "expected": "y"}
    suite |= {"models": ["m"], "metrics": ["accuracy"]}
    return parse_config(
        {
            "models": [{"name": "m", "adapter": "http", "url": "http://127.0.0.1:1/p"}],
            "suites": [
                {**suite, "name": "patient", "schedule": {"every": "1m", "misfire_grace": "1h"}},
                {**suite, "name": "hasty", "schedule": {"every": "1m", "misfire_grace": "90s"}},
            ],
        },
        base_dir=tmp_path,
    )


def test_kept_slots_come_back_oldest_first_split_by_misfire_grace(tmp_path: Path) -> None:
    (patient, model), (hasty, _) = config(tmp_path).jobs()
    overflow: list[str] = []
    slots = MissedSlots(lambda suite, model: overflow.append(suite.name))
    for minute in range(5):
        slots.keep(hasty, model, T0 + timedelta(minutes=minute))
        slots.keep(patient, model, T0 + timedelta(minutes=minute, seconds=30))
    assert len(slots) == 10

    due, late = slots.take(T0 + timedelta(minutes=5))

    times = [at for _, _, at in due]
    assert times == sorted(times)  # oldest first, across suites
    assert [s.name for s, _, _ in due].count("patient") == 5  # an hour of grace: all
    # 90 s of grace at 12:05: of the hasty slots only the one of 12:04.
    assert [at for s, _, at in due if s.name == "hasty"] == [T0 + timedelta(minutes=4)]
    assert [at for s, _, at in late] == [T0 + timedelta(minutes=m) for m in range(4)]
    assert len(slots) == 0 and slots.take(T0) == ([], []) and overflow == []


def test_beyond_max_kept_the_oldest_slot_is_skipped(tmp_path: Path) -> None:
    (patient, model), _ = config(tmp_path).jobs()
    overflow: list[str] = []
    slots = MissedSlots(lambda suite, model: overflow.append(suite.name))
    for second in range(MAX_KEPT + 3):
        slots.keep(patient, model, T0 + timedelta(seconds=second))
    due, late = slots.take(T0 + timedelta(minutes=5))
    assert overflow == ["patient"] * 3 and late == []
    assert due[0][2] == T0 + timedelta(seconds=3) and len(due) == MAX_KEPT


def test_an_outage_is_logged_once_each_way(caplog: pytest.LogCaptureFixture) -> None:
    now = [T0]
    outage = StoreOutage(clock=lambda: now[0])
    recovered: list[datetime] = []
    outage.on_recovered.append(lambda: recovered.append(now[0]))
    now[0] += timedelta(minutes=2)
    assert outage.up_for(now[0]) == timedelta(minutes=2)
    with caplog.at_level(logging.WARNING, logger="monitor.runs.outage"):
        for _ in range(50):
            outage.failed(StoreUnavailable("connection refused"))
            now[0] += timedelta(seconds=1)
        assert outage.down and outage.up_for(now[0]) == timedelta(0)
        outage.answered()
        outage.answered()
    assert [r.getMessage() for r in caplog.records] == [
        "store unreachable: connection refused; runs keep their results and retry,"
        " scheduled slots are kept until it answers",
        "store reachable again after 50s",
    ]
    assert recovered == [now[0]] and not outage.down
    # The sweep waits for the store to answer for stale_after again from here.
    assert outage.up_for(now[0] + timedelta(seconds=5)) == timedelta(seconds=5)
