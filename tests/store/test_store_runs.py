"""Writing and reading runs, case results and the catalog, on every backend."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from monitor.errors import StoreError
from monitor.records import CaseResult, CatalogModel, CatalogSuite, MetricValue, Run, RunStatus
from monitor.store import Store
from monitor.store.tables import case_results, models, run_metrics, suites

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=3)

StartRun = Callable[..., int]
MakeCases = Callable[..., list[CaseResult]]


def _get(store: Store, run_id: int) -> Run:
    run = store.runs.get_run(run_id)
    assert run is not None
    return run


def test_create_run_starts_running(store: Store) -> None:
    run_id = store.runs.create_run(
        suite="qa", model="prod", trigger="manual", dataset_sha256="d1", config_hash="c1", at=T0
    )

    assert _get(store, run_id) == Run(
        id=run_id,
        suite="qa",
        model="prod",
        status=RunStatus.RUNNING,
        trigger="manual",
        created_at=T0,
        started_at=T0,
        finished_at=None,
        dataset_sha256="d1",
        config_hash="c1",
        n_cases=0,
        n_errors=0,
        error=None,
        metrics=(),
    )
    assert store.runs.get_run(run_id + 1) is None


def test_finish_run_stores_cases_and_metrics(
    store: Store, start_run: StartRun, make_cases: MakeCases
) -> None:
    run_id = start_run()
    cases = make_cases(5, errors=2)
    metrics = [MetricValue("f1", 0.5, 0.4, 0.6, 3), MetricValue("exact_match", 1.0, None, None, 3)]

    store.runs.finish_run(run_id, status=RunStatus.SUCCEEDED, at=T1, cases=cases, metrics=metrics)

    run = _get(store, run_id)
    assert (run.status, run.finished_at, run.error) == (RunStatus.SUCCEEDED, T1, None)
    assert (run.n_cases, run.n_errors) == (5, 2)
    assert run.duration_seconds == 180.0
    assert run.metrics == tuple(sorted(metrics, key=lambda metric: metric.name))
    assert store.runs.list_cases(run_id) == cases


def test_list_cases_pages_in_case_id_order(
    store: Store, start_run: StartRun, make_cases: MakeCases
) -> None:
    run_id = start_run()
    cases = make_cases(7)
    store.runs.finish_run(run_id, status=RunStatus.SUCCEEDED, at=T1, cases=list(reversed(cases)))

    assert store.runs.list_cases(run_id, limit=3) == cases[:3]
    assert store.runs.list_cases(run_id, limit=3, offset=3) == cases[3:6]
    assert store.runs.list_cases(run_id, limit=3, offset=6) == cases[6:]
    assert store.runs.list_cases(run_id + 1) == []


def test_finish_run_is_all_or_nothing(
    store: Store, start_run: StartRun, make_cases: MakeCases
) -> None:
    run_id = start_run()
    cases = [*make_cases(3), make_cases(1)[0]]  # case-0000 twice

    with pytest.raises(StoreError, match=f"finishing run {run_id}"):
        store.runs.finish_run(
            run_id,
            status=RunStatus.SUCCEEDED,
            at=T1,
            cases=cases,
            metrics=[MetricValue("f1", 0.5, None, None, 4)],
        )

    run = _get(store, run_id)
    assert (run.status, run.finished_at, run.n_cases, run.metrics) == (
        RunStatus.RUNNING,
        None,
        0,
        (),
    )
    with store.engine.connect() as connection:
        assert connection.scalars(select(case_results.c.case_id)).all() == []
        assert connection.scalars(select(run_metrics.c.name)).all() == []


@pytest.mark.parametrize(
    "final", [RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.INTERRUPTED], ids=str
)
def test_a_finished_run_cannot_be_finished_again(
    store: Store, start_run: StartRun, make_cases: MakeCases, final: RunStatus
) -> None:
    run_id = start_run()
    store.runs.finish_run(run_id, status=final, at=T1, error=None)

    with pytest.raises(StoreError, match=f"run {run_id} is {final.value}, not running"):
        store.runs.finish_run(run_id, status=RunStatus.SUCCEEDED, at=T1, cases=make_cases(2))

    assert _get(store, run_id).status is final
    assert store.runs.list_cases(run_id) == []


def test_finishing_an_unknown_run_fails(store: Store) -> None:
    with pytest.raises(StoreError, match="run 404 does not exist"):
        store.runs.finish_run(404, status=RunStatus.FAILED, at=T1, error="boom")


@pytest.mark.parametrize(
    ("status", "metrics", "message"),
    [
        pytest.param(RunStatus.RUNNING, [], "status must be final", id="running"),
        pytest.param(
            RunStatus.SUCCEEDED,
            [MetricValue("f1", math.nan, None, None, 0)],
            r"metrics\[0\] 'f1': value must be finite, got: nan",
            id="nan-metric",
        ),
        pytest.param(
            RunStatus.SUCCEEDED,
            [MetricValue("f1", 0.5, 0.1, math.inf, 9)],
            r"metrics\[0\] 'f1': upper must be finite",
            id="infinite-bound",
        ),
    ],
)
def test_finish_run_refuses_bad_arguments(
    store: Store,
    start_run: StartRun,
    status: RunStatus,
    metrics: list[MetricValue],
    message: str,
) -> None:
    run_id = start_run()

    with pytest.raises(ValueError, match=message):
        store.runs.finish_run(run_id, status=status, at=T1, metrics=metrics)

    assert _get(store, run_id).status is RunStatus.RUNNING


def test_interrupt_running_marks_only_running_runs(store: Store, start_run: StartRun) -> None:
    done = start_run()
    store.runs.finish_run(done, status=RunStatus.SUCCEEDED, at=T1)
    orphans = [start_run("qa", "prod"), start_run("summarise", "candidate")]

    interrupted = store.runs.interrupt_running(reason="daemon restarted", at=T1)

    assert interrupted == orphans
    for run_id in orphans:
        run = _get(store, run_id)
        assert (run.status, run.error, run.finished_at) == (
            RunStatus.INTERRUPTED,
            "daemon restarted",
            T1,
        )
    assert _get(store, done).status is RunStatus.SUCCEEDED
    assert store.runs.interrupt_running(reason="again", at=T1) == []


def test_list_runs_newest_first_with_filters(store: Store, start_run: StartRun) -> None:
    qa_prod = start_run("qa", "prod")
    qa_cand = start_run("qa", "candidate")
    sum_prod = start_run("summarise", "prod")
    store.runs.finish_run(qa_cand, status=RunStatus.FAILED, at=T1, error="endpoint down")

    def ids(**filters: object) -> list[int]:
        return [run.id for run in store.runs.list_runs(**filters)]  # type: ignore[arg-type]

    assert ids() == [sum_prod, qa_cand, qa_prod]
    assert ids(suite="qa") == [qa_cand, qa_prod]
    assert ids(model="prod") == [sum_prod, qa_prod]
    assert ids(suite="qa", model="prod") == [qa_prod]
    assert ids(status=RunStatus.FAILED) == [qa_cand]
    assert ids(suite="nope") == []


def test_list_runs_pages_with_before_id(store: Store, start_run: StartRun) -> None:
    created = [start_run(at=T0 + timedelta(seconds=index)) for index in range(5)]
    newest_first = list(reversed(created))

    pages: list[list[int]] = []
    before: int | None = None
    while page := store.runs.list_runs(limit=2, before_id=before):
        pages.append([run.id for run in page])
        before = page[-1].id

    assert pages == [newest_first[0:2], newest_first[2:4], newest_first[4:]]


def test_list_runs_carries_metrics(store: Store, add_run: StartRun) -> None:
    run_id = add_run(metrics={"f1": 0.5, "bleu": 0.25})

    (run,) = store.runs.list_runs()

    assert run.id == run_id
    assert [metric.name for metric in run.metrics] == ["bleu", "f1"]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        pytest.param(
            lambda s: s.runs.list_runs(limit=0), "limit must be positive", id="runs-limit"
        ),
        pytest.param(lambda s: s.runs.list_cases(1, offset=-1), "offset >= 0", id="cases-offset"),
    ],
)
def test_reads_refuse_bad_pages(
    store: Store, call: Callable[[Store], object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        call(store)


def test_sync_catalog_upserts_by_name(store: Store) -> None:
    prod = CatalogModel("prod", "openai", "http://prod/v1", "production", "h1")
    cand = CatalogModel("candidate", "openai", "http://cand/v1", "candidate", "h2")
    qa = CatalogSuite("qa", "data/qa.jsonl", "qa", "s1")
    store.runs.sync_catalog([prod, cand], [qa], at=T0)

    moved = CatalogModel("prod", "http", "http://prod/v2", "production", "h3")
    store.runs.sync_catalog([moved], [], at=T1)

    with store.engine.connect() as connection:
        model_rows = connection.execute(
            select(models.c.name, models.c.adapter, models.c.url, models.c.updated_at).order_by(
                models.c.name
            )
        ).all()
        suite_rows = connection.execute(select(suites.c.name, suites.c.updated_at)).all()
    assert [tuple(row) for row in model_rows] == [
        ("candidate", "openai", "http://cand/v1", T0),
        ("prod", "http", "http://prod/v2", T1),
    ]
    assert [tuple(row) for row in suite_rows] == [("qa", T0)]


def test_sync_catalog_refuses_duplicate_names(store: Store) -> None:
    prod = CatalogModel("prod", "openai", "http://prod/v1", "production", "h1")

    with pytest.raises(ValueError, match=r"models\[1\]: duplicate name 'prod'"):
        store.runs.sync_catalog([prod, prod], [], at=T0)
