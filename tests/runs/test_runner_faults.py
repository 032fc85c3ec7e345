"""The real runner, a real SQLite store and a faulty endpoint: the run finishes, every case
is accounted for (a prediction or an error kind), and no secret is stored."""

from __future__ import annotations

import json
from pathlib import Path
from typing import get_args

import pytest

from monitor.config import SuiteConfig
from monitor.errors import ErrorKind
from monitor.records import RunStatus
from monitor.runs.runner import Runner
from monitor.store import Store
from tests.adapters.endpoints import Endpoint
from tests.adapters.models import HEADER_SECRET, SECRET, model_for

# Against real servers: once per HTTP client under the transport.
pytestmark = pytest.mark.usefixtures("http_client")

N = 40


@pytest.fixture
def suite(tmp_path: Path) -> SuiteConfig:
    path = tmp_path / "cases.jsonl"
    rows = [
        {"id": f"c{i}", "x": i - N / 2, "features": [i - N / 2, 0.0], "label": "pos"}
        for i in range(N)
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return SuiteConfig.model_validate(
        {
            "name": "s",
            "dataset": str(path),
            "task": "classification",
            "metrics": ["accuracy"],
            "models": ["m"],
            "expected": "label",
            "max_error_rate": 0.5,
        }
    )


@pytest.mark.parametrize("adapter", ["http", "openai", "mlflow", "kserve-v2"])
async def test_run_against_a_faulty_endpoint_accounts_for_every_case(
    endpoint: Endpoint, store: Store, suite: SuiteConfig, adapter: str
) -> None:
    endpoint.script(
        "500", "429:0", "truncated", "500", "schema", "slow:1", "500", "400", "500", "500"
    )
    batching = {"batch_size": 4} if adapter in ("mlflow", "kserve-v2") else {}
    model = model_for(adapter, endpoint.url, timeout="400ms", concurrency=3, **batching)
    runner = Runner(store)
    try:
        run = await runner.run(suite, model)
    finally:
        await runner.aclose()
    assert run.status in (RunStatus.SUCCEEDED, RunStatus.FAILED)
    cases = store.runs.list_cases(run.id)
    assert sorted(c.case_id for c in cases) == sorted(f"c{i}" for i in range(N))
    for c in cases:
        assert (c.prediction is None) != (c.error_kind is None), c
        assert c.error_kind is None or c.error_kind in get_args(ErrorKind)
    kinds = {c.error_kind for c in cases} - {None}
    assert "bad_response" in kinds  # truncated JSON and a wrong schema are never retried
    assert run.n_cases == N and run.n_errors == sum(c.error_kind is not None for c in cases)
    stored = repr(cases) + repr(run) + repr(store.runs.list_runs())
    for secret in (SECRET, HEADER_SECRET, "querysecret"):
        assert secret not in stored
