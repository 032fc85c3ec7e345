"""The retention pass as the daemon runs it: ``[store.retention]`` durations per kind, only
on the leader, stopped between batches at shutdown, and a clear error for a bad key."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.config import RetentionConfig, parse_config
from monitor.daemon.retention import Retention
from monitor.errors import ConfigError
from monitor.records import RunStatus
from monitor.store import Store

T0 = datetime(2026, 11, 22, 12, tzinfo=UTC)
DAY = timedelta(days=1)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store(f"sqlite:///{tmp_path / 'monitor.db'}")
    store.upgrade()
    yield store
    store.close()


def runs_on_days(store: Store, days: range) -> list[int]:
    ids = []
    for day in days:
        at = T0 + day * DAY
        run_id = store.runs.create_run(
            suite="qa", model="prod", trigger="schedule", dataset_sha256="d", config_hash="c", at=at
        )
        store.runs.finish_run(run_id, status=RunStatus.FAILED, at=at, error="x")
        ids.append(run_id)
    return ids


def retention(config: dict[str, object], store: Store, **kwargs: object) -> Retention:
    return Retention(
        RetentionConfig.model_validate(config),
        store,
        clock=lambda: T0 + 10 * DAY,
        **kwargs,  # type: ignore[arg-type]
    )


def test_a_pass_deletes_what_each_kind_kept_too_long(store: Store) -> None:
    ids = runs_on_days(store, range(10))

    deleted = retention({"runs": "5d", "batch_size": 10}, store).run_once()

    assert deleted["runs"] == 5  # days 0-4 are older than 5 days at day 10
    assert sorted(r.id for r in store.runs.list_runs()) == ids[5:]
    assert set(deleted) == {"verdicts", "runs", "drift_reports", "alert_history", "outbox"}


def test_only_the_leader_deletes(store: Store) -> None:
    runs_on_days(store, range(3))
    leading = False

    follower = retention({"runs": "1d"}, store, leader=lambda: leading)

    assert follower.run_once() == {}
    leading = True
    assert follower.run_once()["runs"] == 2


def test_disabled_retention_deletes_nothing(store: Store) -> None:
    runs_on_days(store, range(3))

    assert retention({"enabled": False, "runs": "1d"}, store).run_once() == {}
    assert len(store.runs.list_runs()) == 3


def test_a_stopped_pass_ends_before_its_next_batch(store: Store) -> None:
    runs_on_days(store, range(5))
    job = retention({"runs": "1d", "batch_size": 10}, store)

    job.stop()

    assert job.run_once() == {}
    assert len(store.runs.list_runs()) == 5


def test_defaults_are_documented_values(tmp_path: Path) -> None:
    config = parse_config({}, base_dir=tmp_path).store.retention

    assert (config.runs, config.verdicts, config.drift_reports) == (90 * DAY,) * 3
    assert (config.alert_history, config.outbox, config.every) == (
        180 * DAY,
        7 * DAY,
        timedelta(minutes=10),
    )


@pytest.mark.parametrize(
    ("retention_config", "expected"),
    [
        pytest.param({"runs": "0s"}, "store.retention.runs", id="zero"),
        pytest.param({"runs": "soon"}, "store.retention.runs", id="not-a-duration"),
        pytest.param({"batch_size": 1}, "store.retention.batch_size", id="tiny-batch"),
        pytest.param({"cases": "1d"}, "store.retention.cases", id="unknown-key"),
    ],
)
def test_bad_retention_config_names_the_key(
    tmp_path: Path, retention_config: dict[str, object], expected: str
) -> None:
    with pytest.raises(ConfigError, match=expected.replace(".", r"\.")):
        parse_config({"store": {"retention": retention_config}}, base_dir=tmp_path)
