"""Bounded /metrics: series of suites x models and streams outside the configuration end
``server.adhoc_series_ttl`` after their last activity; configured ones never do."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from monitor.config import Config, parse_config
from monitor.daemon.lifecycle import Daemon
from monitor.errors import ConfigError
from monitor.metrics.instruments import RequestMetrics
from monitor.records import MetricValue, NewDriftReport, RunStatus
from monitor.store import Store

T0 = datetime(2026, 11, 22, 12, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store(f"sqlite:///{tmp_path / 'monitor.db'}")
    store.upgrade()
    yield store
    store.close()


def configured(tmp_path: Path, ttl: str = "1h") -> Config:
    (tmp_path / "d.jsonl").write_text('{"id": 1, "expected": "a"}\n')
    return parse_config(
        {
            "server": {"adhoc_series_ttl": ttl},
            "models": [{"name": "prod", "adapter": "http", "url": "http://127.0.0.1:1/p"}],
            "suites": [
                {
                    "name": "qa",
                    "dataset": "d.jsonl",
                    "task": "classification",
                    "metrics": ["accuracy"],
                    "models": ["prod"],
                }
            ],
        },
        base_dir=tmp_path,
    )


def finished(store: Store, model: str, at: datetime) -> int:
    run_id = store.runs.create_run(
        suite="qa", model=model, trigger="api", dataset_sha256="d", config_hash="c", at=at
    )
    store.runs.finish_run(
        run_id,
        status=RunStatus.SUCCEEDED,
        at=at,
        metrics=[MetricValue("accuracy", 0.75, 0.5, 1.0, 4)],
    )
    return run_id


def models_on(config: Config, store: Store, now: datetime) -> dict[str, set[str]]:
    """Per family, the models (or streams) it has a sample of, scraped at ``now``."""
    daemon = Daemon(config, store=store, clock=lambda: now)
    found: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(generate_latest(daemon.registry).decode()):
        for sample in family.samples:
            key = sample.labels.get("model") or sample.labels.get("stream")
            if key:
                found.setdefault(family.name, set()).add(key)
    return found


def test_an_adhoc_model_is_exported_until_its_ttl_after_its_last_run(
    tmp_path: Path, store: Store
) -> None:
    config = configured(tmp_path, ttl="1h")
    finished(store, "prod", T0 - timedelta(days=30))
    finished(store, "ci-1234", T0)

    fresh = models_on(config, store, T0 + timedelta(minutes=59))
    expired = models_on(config, store, T0 + timedelta(minutes=61))

    for family in ("monitor_runs_finished", "monitor_eval_score", "monitor_cases"):
        assert fresh[family] == {"prod", "ci-1234"}, family
        assert expired[family] == {"prod"}, family  # configured: exported whatever its age


def test_an_adhoc_run_in_flight_keeps_its_series(tmp_path: Path, store: Store) -> None:
    config = configured(tmp_path, ttl="1h")
    store.runs.create_run(
        suite="qa", model="ci-9", trigger="api", dataset_sha256="d", config_hash="c", at=T0
    )

    scraped = models_on(config, store, T0 + timedelta(days=2))

    assert "ci-9" in scraped["monitor_runs"]


def test_a_stream_outside_the_configuration_expires(tmp_path: Path, store: Store) -> None:
    config = configured(tmp_path, ttl="1h")
    store.streams.add_drift_report(
        NewDriftReport(
            stream="retired",
            window_key="time:0",
            window_start=T0 - timedelta(hours=1),
            window_end=T0,
            created_at=T0,
            status="ok",
            n_rows=10,
            drift_share=0.5,
            dataset_drifted=True,
            columns=(),
        )
    )

    assert "retired" in models_on(config, store, T0)["monitor_drift_share"]
    assert "monitor_drift_share" not in models_on(config, store, T0 + timedelta(hours=2))


def test_the_ttl_must_be_a_positive_duration(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"server\.adhoc_series_ttl: must be a positive"):
        configured(tmp_path, ttl="0s")


def test_request_series_of_an_idle_adhoc_model_end() -> None:
    registry = CollectorRegistry()
    now = [0.0]
    metrics = RequestMetrics(registry, models=["prod"], adhoc_ttl=3600, clock=lambda: now[0])
    metrics.observe_request("ci-1", "ok", 0.5)
    metrics.observe_request("prod", "timeout", 0.5)

    def models() -> set[str]:
        text = generate_latest(registry).decode()
        return {
            s.labels["model"]
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if "model" in s.labels
        }

    now[0] = 3599.0
    metrics.observe_request("ci-2", "ok", 0.5)  # ci-1 idle for less than the TTL
    assert models() == {"prod", "ci-1", "ci-2"}
    now[0] = 3600.0 + 3598.0
    metrics.observe_request("ci-3", "ok", 0.5)  # ci-1 idle past it, ci-2 not yet
    assert models() == {"prod", "ci-2", "ci-3"}
    metrics.observe_request("ci-1", "ok", 0.5)  # back: it starts over
    assert models() == {"prod", "ci-1", "ci-2", "ci-3"}
