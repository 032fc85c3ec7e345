"""A suite with ``slices`` through the real runner against a loopback model: the run's
slice gap carries its interval, stored with the run and answered by ``GET /v1/runs/{id}``,
the same as scoring the model's answers again in any order gives."""

from __future__ import annotations

import json
import random
from pathlib import Path

import httpx
import pytest

from monitor.config import SuiteConfig, parse_config
from monitor.records import Run, RunStatus
from monitor.scoring import build_metric
from monitor.scoring.evaluation import Attempt, Evaluation
from monitor.store import Store
from monitor.wire.runs import RunOut
from tests.api.conftest import served_app
from tests.runs.test_runner_fairness import N, _run, answer, gender, truth
from tests.servers import deadline


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Run, SuiteConfig]:
    tmp = tmp_path_factory.mktemp("slice-gaps")
    path = tmp / "cases.jsonl"
    rows = [{"id": f"c{x:03d}", "x": x, "label": truth(x), "gender": gender(x)} for x in range(N)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    suite = SuiteConfig.model_validate(
        {
            "name": "loans",
            "dataset": str(path),
            "task": "classification",
            "metrics": ["accuracy", {"name": "f1", "average": "macro"}],
            "models": ["m"],
            "expected": "label",
            "inputs": ["x"],
            "metadata": ["gender"],
            "slices": ["gender"],
            "seed": 11,
        }
    )
    url = f"sqlite:///{tmp / 'monitor.db'}"
    store = Store(url)
    store.upgrade()
    try:
        run = _run(store, suite)
        again = store.runs.get_run(run.id)
    finally:
        store.close()
    assert again is not None
    return url, again, suite


def test_the_stored_gaps_carry_intervals_that_rescoring_reproduces(
    stored: tuple[str, Run, SuiteConfig],
) -> None:
    _, run, suite = stored
    assert run.status is RunStatus.SUCCEEDED and run.n_cases == N
    gaps = {g.metric: g for g in run.gaps}
    assert set(gaps) == {"accuracy", "f1"}
    for gap in gaps.values():
        assert gap.best == "f"  # the model is right on every f case
        assert gap.lower is not None and gap.upper is not None
        assert 0 < gap.lower <= gap.gap <= gap.upper
    # The same answers scored again, in another order, give the same intervals.
    evaluation = Evaluation(
        [build_metric("accuracy"), build_metric({"name": "f1", "average": "macro"})],
        slices=["gender"],
        seed=suite.seed,
    )
    xs = list(range(N))
    random.Random(4).shuffle(xs)
    for x in xs:
        evaluation.add(f"c{x:03d}", str(truth(x)), [Attempt(answer(x))], {"gender": gender(x)})
    assert tuple(evaluation.results().gaps) == run.gaps


def test_the_api_answers_the_gaps_with_their_intervals(
    stored: tuple[str, Run, SuiteConfig], tmp_path: Path
) -> None:
    url, run, _ = stored
    config = parse_config(
        {"store": {"url": url}, "server": {"open_reads": True}}, base_dir=tmp_path
    )
    store = Store(url)
    try:
        with served_app(config, store) as base:
            answered = httpx.get(f"{base}/v1/runs/{run.id}", timeout=deadline(10))
    finally:
        store.close()
    assert answered.status_code == 200
    shown = answered.json()["slice_gaps"]
    assert shown == RunOut.of(run).model_dump(mode="json")["slice_gaps"]
    assert all(g["lower"] is not None and g["lower"] > 0 for g in shown)
