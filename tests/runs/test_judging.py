"""Judge metrics in a real run: a loopback model answers, loopback judges score the
answers through the judge's own transport, and the run stores the scores, the prompts'
sha256, judge errors, and the judges' tokens and cost apart from the model's."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from monitor.config import HttpModelConfig, OpenAIModelConfig, SuiteConfig
from monitor.records import JUDGE_CORRECTED, CaseResult, MetricComparison, Run, RunStatus
from monitor.runs.runner import Runner
from monitor.store import Store
from monitor.verdicts.compare import compare_cases
from tests.judge_server import COMPLETION_TOKENS, PROMPT_TOKENS, Judge, running_judge
from tests.servers import serve_in_thread

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
N = 12
CONTEXT = "Paris is the capital of France. The Seine flows through it."


def answer(x: int) -> str:
    """Even cases answer well (GOOD, from the context); odd ones add an unsupported claim."""
    if x % 2 == 0:
        return "GOOD. Paris is the capital of France"
    return "Paris is the capital of France. It has ten million bridges"


def model_app() -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        x = int(json.loads(body)["x"])
        # A candidate at /better answers the odd cases better (twice GOOD), the even alike.
        better = scope["path"] == "/better" and x % 2 == 1
        prediction = "GOOD GOOD" if better else answer(x)
        if scope["path"].startswith("/good/"):
            # /good/80: cases 0-79 of every hundred answered well, the rest not.
            prediction = "GOOD answer" if x % 100 < int(scope["path"][6:]) else "poor answer"
        payload = json.dumps({"prediction": prediction}).encode()
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    return app


@pytest.fixture(scope="module")
def model_url() -> Iterator[str]:
    with serve_in_thread(model_app()) as url:
        yield url


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store(f"sqlite:///{tmp_path / 'monitor.db'}")
    store.upgrade()
    yield store
    store.close()


def suite(tmp_path: Path, metrics: list[Any], *, cases: int = N, **extra: Any) -> SuiteConfig:
    path = tmp_path / "cases.jsonl"
    rows = [{"id": f"c{x:03d}", "x": x, "context": CONTEXT, "answer": ""} for x in range(cases)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return SuiteConfig.model_validate(
        {
            "name": "rag",
            "dataset": str(path),
            "task": "text",
            "metrics": metrics,
            "models": ["m"],
            "expected": "answer",
            "inputs": ["x", "context"],
            # Exact request counts: identical prompts (faithfulness sees only the context
            # and the answer) would otherwise be answered once; the cache has its own test.
            "judge_cache": False,
            **extra,
        }
    )


def judge_model(url: str, **extra: Any) -> OpenAIModelConfig:
    return OpenAIModelConfig.model_validate(
        {
            "name": "j",
            "adapter": "openai",
            "url": url,
            "model": "judge-1",
            "role": "judge",
            "concurrency": 3,
            "retry": {"attempts": 3, "backoff": "1ms", "max_backoff": "1ms"},
            "price": {"prompt": 2.0, "completion": 4.0, "per_tokens": 1000},
            **extra,
        }
    )


async def run(
    store: Store, suite: SuiteConfig, model_url: str, judge: Judge, path: str = "/predict"
) -> Run:
    model = HttpModelConfig.model_validate(
        {"name": "m", "adapter": "http", "url": f"{model_url}{path}", "body": {"x": "{{x}}"}}
    )
    runner = Runner(store, clock=lambda: NOW, models=[model, judge_model(judge.url)])
    try:
        return await runner.run(suite, model)
    finally:
        await runner.aclose()


METRICS = [
    {"name": "rubric", "judge": "j", "criterion": "says GOOD"},
    {"name": "faithfulness", "judge": "j"},
    {"name": "answer-relevance", "judge": "j", "title": "strict"},
    "contains",
]


async def test_judge_metrics_score_the_run_and_their_usage_is_kept_apart(
    store: Store, tmp_path: Path, model_url: str
) -> None:
    with running_judge() as judge:
        result = await run(store, suite(tmp_path, METRICS), model_url, judge)
    assert result.status is RunStatus.SUCCEEDED, result.error
    metrics = {m.name: m for m in result.metrics}
    assert metrics["rubric"].value == pytest.approx(0.5)
    assert metrics["rubric"].n == N
    # Even: one supported claim of one ("GOOD" is not in the context: 1 of 2); odd: 1 of 2.
    assert metrics["faithfulness"].value == pytest.approx(0.5)
    assert metrics["answer-relevance:strict"].value == pytest.approx(0.5)
    assert metrics["rubric"].lower is not None and metrics["rubric"].upper is not None

    usage = {j.metric: j for j in result.judges}
    assert set(usage) == {"rubric", "faithfulness", "answer-relevance:strict"}
    for item in usage.values():
        assert (item.judge, item.requests, item.errors) == ("j", N, 0)
        assert item.prompt_tokens == N * PROMPT_TOKENS
        assert item.completion_tokens == N * COMPLETION_TOKENS
        assert item.cost == pytest.approx(
            (N * PROMPT_TOKENS * 2 + N * COMPLETION_TOKENS * 4) / 1000
        )
        assert item.currency == "USD"
    packaged = Path(__file__).parents[2] / "monitor/scoring/prompts/faithfulness.txt"
    assert usage["faithfulness"].prompt_sha256 == hashlib.sha256(packaged.read_bytes()).hexdigest()
    # The model reported no usage: its tokens stay unknown, never the judges'.
    assert result.operations is not None and result.operations.prompt_tokens is None
    assert len(judge.requests) == 3 * N
    sent = judge.requests[0]
    assert sent["model"] == "judge-1"
    assert sent["response_format"]["type"] == "json_schema"
    assert sent["response_format"]["json_schema"]["strict"] is True
    stored = store.runs.get_run(result.id)
    assert stored is not None and stored.judges == result.judges


@pytest.mark.parametrize("mode", ["malformed", "wrong-schema"])
async def test_an_unparseable_judge_answer_is_a_judge_error_never_a_score(
    store: Store, tmp_path: Path, model_url: str, mode: str
) -> None:
    metrics = [{"name": "rubric", "judge": "j", "criterion": "c"}, "contains"]
    with running_judge(mode=mode) as judge:
        result = await run(store, suite(tmp_path, metrics), model_url, judge)
    assert result.status is RunStatus.SUCCEEDED  # the model answered every case
    assert [m.name for m in result.metrics] == ["contains"]
    (usage,) = result.judges
    assert (usage.requests, usage.errors) == (N, N)
    assert usage.first_error is not None and "judge's answer" in usage.first_error
    cases = store.runs.list_cases(result.id, limit=None)
    assert len(cases) == N
    assert all("rubric" not in c.scores and "contains" in c.scores for c in cases)


async def test_a_judge_answering_429_is_retried_through_its_transport(
    store: Store, tmp_path: Path, model_url: str
) -> None:
    metrics = [{"name": "rubric", "judge": "j", "criterion": "says GOOD"}]
    with running_judge() as judge:
        judge.script("429", "429", "429")
        result = await run(store, suite(tmp_path, metrics), model_url, judge)
    (usage,) = result.judges
    assert (usage.requests, usage.errors) == (N, 0)
    assert len(judge.requests) == N + 3
    assert result.metrics[0].value == pytest.approx(0.5)


async def test_a_prompt_file_is_what_the_judge_reads_and_its_hash_is_stored(
    store: Store, tmp_path: Path, model_url: str
) -> None:
    prompt = tmp_path / "strict.txt"
    prompt.write_text("Criterion: {{criterion}}\n\nAnswer to grade:\n{{answer}}\n", "utf-8")
    metrics = [{"name": "rubric", "judge": "j", "criterion": "GOOD", "prompt_file": str(prompt)}]
    with running_judge() as judge:
        result = await run(store, suite(tmp_path, metrics), model_url, judge)
    (usage,) = result.judges
    assert usage.prompt_sha256 == hashlib.sha256(prompt.read_bytes()).hexdigest()
    assert judge.requests[0]["messages"][-1]["content"].startswith("Criterion: GOOD\n")
    assert result.metrics[0].value == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("mode", "wins", "ties"),
    [
        pytest.param("deterministic", N // 2, N // 2, id="fair-judge"),
        pytest.param("position-biased", 0, N, id="position-biased-judge"),
    ],
)
async def test_pairwise_judges_both_orders_against_the_baseline_answers(
    store: Store, tmp_path: Path, model_url: str, mode: str, wins: int, ties: int
) -> None:
    metrics = [{"name": "pairwise", "judge": "j", "criterion": "more GOOD"}, "contains"]
    config = suite(tmp_path, metrics)
    with running_judge(mode=mode) as judge:
        first = await run(store, config, model_url, judge)
        (usage,) = first.judges  # no baseline yet: nothing to compare with
        assert usage.errors == N and "no baseline run" in str(usage.first_error)
        store.verdicts.promote_baseline(first.id, by="test", reason="golden", at=NOW)
        judge.requests.clear()
        second = await run(store, config, model_url, judge, path="/better")
    # Even cases were already GOOD (a tie); odd ones win, in both orders.
    (usage,) = second.judges
    assert (usage.requests, usage.errors) == (2 * N, 0)
    cases = store.runs.list_cases(second.id, limit=None)
    scores = sorted(c.scores["pairwise"] for c in cases)
    assert scores == [0.5] * ties + [1.0] * wins
    prompts = [r["messages"][-1]["content"] for r in judge.requests]
    assert sum("Answer A:\nGOOD GOOD\n" in p for p in prompts) == N // 2  # candidate first
    assert sum("Answer B:\nGOOD GOOD\n" in p for p in prompts) == N // 2  # and second


@pytest.mark.parametrize(
    ("mode", "reducer"),
    [
        pytest.param("deterministic", "mean", id="steady"),
        pytest.param("noisy", "majority", id="noisy"),
    ],
)
async def test_judge_repeats_reduce_and_report_the_judges_agreement(
    store: Store, tmp_path: Path, model_url: str, mode: str, reducer: str
) -> None:
    config = suite(tmp_path, [{"name": "rubric", "judge": "j", "criterion": "says GOOD"}])
    config = config.model_copy(update={"judge_repeats": 3, "judge_reducer": reducer})
    with running_judge(mode=mode, error_rate=0.3, seed=5) as judge:
        result = await run(store, config, model_url, judge)
    (usage,) = result.judges
    assert (usage.requests, usage.errors) == (3 * N, 0)
    cases = store.runs.list_cases(result.id, limit=None)
    agreements = [c.scores["rubric.agreement"] for c in cases]
    assert all(a in (1.0, 2 / 3) for a in agreements)
    assert usage.agreement == pytest.approx(sum(agreements) / N)
    if mode == "deterministic":
        assert usage.agreement == 1.0 and judge.flips == 0
        assert result.metrics[0].value == pytest.approx(0.5)
    else:
        # Each flipped judgement costs its case a third of its agreement.
        assert judge.flips > 0
        assert usage.agreement < 1.0
        assert all(c.scores["rubric"] in (0.0, 1.0) for c in cases)  # a majority verdict


@pytest.mark.parametrize("logprobs", [True, False], ids=["with-logprobs", "plain"])
async def test_g_eval_weights_the_scale_by_the_judges_probabilities(
    store: Store, tmp_path: Path, model_url: str, logprobs: bool
) -> None:
    # Even answers have one GOOD (verdict 1), odd ones none (clipped to 1 as well).
    metrics = [{"name": "g-eval", "judge": "j", "criterion": "GOOD count"}]
    with running_judge(logprobs=logprobs) as judge:
        result = await run(store, suite(tmp_path, metrics), model_url, judge)
    assert judge.requests[0]["logprobs"] is True and judge.requests[0]["top_logprobs"] == 5
    (value,) = result.metrics
    # With logprobs: 1 (0.6) and 2 (0.3) renormalised, the off-scale token left out.
    expected = (0.6 * 1 + 0.3 * 2) / 0.9 if logprobs else 1.0
    assert value.value == pytest.approx(expected)


@pytest.mark.parametrize(("judge_cache", "cached"), [(None, N), (False, 0)], ids=["auto", "off"])
async def test_an_unchanged_case_judged_again_is_answered_from_the_cache(
    store: Store, tmp_path: Path, model_url: str, judge_cache: bool | None, cached: int
) -> None:
    config = suite(tmp_path, [{"name": "rubric", "judge": "j", "criterion": "says GOOD"}])
    config = config.model_copy(update={"judge_cache": judge_cache})
    with running_judge() as judge:
        first = await run(store, config, model_url, judge)
        second = await run(store, config, model_url, judge)
    assert first.judges[0].cached == 0
    (usage,) = second.judges
    assert (usage.cached, usage.requests) == (cached, N - cached)
    assert len(judge.requests) == 2 * N - cached
    assert usage.prompt_tokens == (N - cached) * PROMPT_TOKENS  # a kept answer costs nothing
    assert second.metrics[0].value == first.metrics[0].value


async def test_semantic_similarity_is_the_cosine_of_embeddings(
    store: Store, tmp_path: Path, model_url: str
) -> None:
    from sklearn.metrics.pairwise import cosine_similarity

    from tests.judge_server import embedding

    config = suite(tmp_path, [{"name": "semantic-similarity", "embedder": "e"}])
    rows = [json.loads(line) for line in config.dataset.read_text().splitlines()]
    for row in rows:
        row["answer"] = ["Paris is the capital", "the Seine"]
    config.dataset.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with running_judge() as judge:
        embedder = judge_model(judge.url).model_copy(update={"name": "e", "role": "embedder"})
        model = HttpModelConfig.model_validate(
            {"name": "m", "adapter": "http", "url": f"{model_url}/predict", "body": {"x": "{{x}}"}}
        )
        runner = Runner(store, clock=lambda: NOW, models=[model, embedder])
        try:
            result = await runner.run(config, model)
        finally:
            await runner.aclose()
    expected = []
    for x in range(N):
        vectors = [embedding(t) for t in (answer(x), *rows[x]["answer"])]
        expected.append(float(cosine_similarity([vectors[0]], vectors[1:]).max()))
    (value,) = result.metrics
    assert value.value == pytest.approx(sum(expected) / N)
    (usage,) = result.judges
    assert (usage.judge, usage.requests, usage.prompt_tokens) == ("e", N, N * PROMPT_TOKENS)
    assert usage.completion_tokens == 0
    assert judge.requests[0]["input"][1:] == rows[0]["answer"]


def rubric(**rates: float) -> list[Any]:
    return [{"name": "rubric", "judge": "j", "criterion": "says GOOD", **rates}]


async def judged_runs(
    store: Store, config: SuiteConfig, model_url: str, judge: Judge, paths: tuple[str, str]
) -> tuple[list[CaseResult], list[CaseResult]]:
    """The cases of a baseline run at ``paths[0]`` and a new run at ``paths[1]``."""
    base, new = [await run(store, config, model_url, judge, path=p) for p in paths]
    assert base.status is new.status is RunStatus.SUCCEEDED
    return store.runs.list_cases(base.id, limit=None), store.runs.list_cases(new.id, limit=None)


async def test_a_noisy_judges_verdict_is_on_the_corrected_scale_of_its_error_rates(
    store: Store, tmp_path: Path, model_url: str
) -> None:
    """A judge wrong on 10% of its judgements (sensitivity = specificity = 0.9, J = 0.8)
    scores a model whose good answers fell from 80% to 50% of 400 cases: the judged drop
    is about 0.8 x 30 points. A tolerance between the judged drop and the corrected one
    passes the judged scale and regresses the corrected one, with the same p-values."""
    cases, error = 400, 0.1
    with running_judge(mode="noisy", error_rate=error, seed=3) as judge:
        base, new = await judged_runs(
            store,
            suite(tmp_path, rubric(), cases=cases),
            model_url,
            judge,
            ("/good/80", "/good/50"),
        )
    assert judge.flips > 0
    rates = {"sensitivity": 1 - error, "specificity": 1 - error}
    j = 2 * (1 - error) - 1

    def verdict(metrics: list[Any], max_drop: float) -> MetricComparison:
        verdict = {"metrics": {"rubric": {"max_drop": max_drop}}}
        config = suite(tmp_path, metrics, cases=cases, verdict=verdict)
        (row,) = compare_cases(config, base, new).metrics
        return row

    judged_drop = -verdict(rubric(), 0.0).delta
    tolerance = judged_drop * (1 + 1 / j) / 2  # above the judged drop, below the corrected
    raw, fixed = verdict(rubric(), tolerance), verdict(rubric(**rates), tolerance)
    assert raw.outcome != "regressed" and fixed.outcome == "regressed"
    assert fixed.delta == pytest.approx(raw.delta / j)
    assert abs(fixed.delta - (-0.3)) < 0.15  # near the true drop; the judged one is not
    assert fixed.baseline == pytest.approx((raw.baseline - error) / j)
    assert fixed.p_value == raw.p_value and fixed.p_adjusted == raw.p_adjusted
    assert (fixed.degraded, fixed.improved) == (raw.degraded, raw.improved)
    assert JUDGE_CORRECTED in fixed.reason


@pytest.mark.parametrize(
    "rates",
    [
        pytest.param({}, id="judged"),
        pytest.param({"sensitivity": 0.8, "specificity": 0.8}, id="corrected"),
    ],
)
async def test_a_noisy_judge_on_an_unchanged_model_passes_or_asks_for_more_cases(
    store: Store, tmp_path: Path, model_url: str, rates: dict[str, float]
) -> None:
    """The same model twice, through a judge wrong on 20% of its judgements, each run's
    judgements drawn afresh: the errors do not cancel, yet the paired test holds its level,
    and a drop that matters it cannot rule out makes the verdict inconclusive, with the
    cases that would tell, not regressed. (A false regression stays possible, in at most
    alpha of such runs: bench/judge_quality.py measures the rate; the seeded judge makes
    this run one of the others, the same every time.)"""
    config = suite(tmp_path, rubric(**rates), cases=200)
    with running_judge(mode="noisy", error_rate=0.2, seed=2) as judge:
        base, new = await judged_runs(store, config, model_url, judge, ("/good/80", "/good/80"))
    assert judge.flips > 0
    judgement = compare_cases(config, base, new)
    (row,) = judgement.metrics
    assert row.degraded and row.improved  # the judge disagreed with itself both ways
    assert judgement.outcome == row.outcome
    assert row.outcome in ("pass", "inconclusive"), row.reason
    if row.outcome == "inconclusive":
        assert row.cases_needed is not None and row.cases_needed > row.n
        assert f"about {row.cases_needed} would tell" in row.reason


async def test_context_relevance_is_judged_on_each_cases_context(
    store: Store, tmp_path: Path, model_url: str
) -> None:
    config = suite(tmp_path, [{"name": "context-relevance", "judge": "j"}])
    rows = [json.loads(line) for line in config.dataset.read_text().splitlines()]
    for row in rows:  # every third case retrieved a context that holds the answer
        row["context"] = f"Case {row['x']}: " + ("GOOD context" if row["x"] % 3 == 0 else CONTEXT)
    config.dataset.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with running_judge() as judge:
        result = await run(store, config, model_url, judge)
    (value,) = result.metrics
    assert value.name == "context-relevance"
    assert value.value == pytest.approx(4 / N) and value.n == N
    prompts = sorted(r["messages"][-1]["content"] for r in judge.requests)
    assert len(prompts) == N
    for row in rows:
        assert sum(f"Context:\n{row['context']}\n" in p for p in prompts) == 1
    assert all("relevant to a question" in p for p in prompts)
    cases = {c.case_id: c.scores["context-relevance"] for c in store.runs.list_cases(result.id)}
    assert cases == {r["id"]: float(r["x"] % 3 == 0) for r in rows}


def http_judge_app(requests: list[dict[str, Any]], mode: str) -> Any:
    """A judge behind a plain JSON API (``POST /judge {"prompt": ...}`` answers
    ``{"text": ...}``), with no structured-output mode: its text is JSON when it follows
    the prompt, prose when ``mode`` is ``malformed``."""
    from fastapi import FastAPI

    from tests.judge_server import section

    app = FastAPI()

    @app.post("/judge")
    async def grade(body: dict[str, Any]) -> dict[str, Any]:
        requests.append(body)
        good = "GOOD" in section(body["prompt"], "Answer to grade:")
        if mode == "malformed":
            return {"text": "Looks good to me. Verdict: pass"}
        verdict = {"reasoning": "read it", "verdict": "pass" if good else "fail"}
        return {"text": json.dumps(verdict), "usage": {"in": 7, "out": 3}}

    return app


@pytest.mark.parametrize("mode", ["json", "malformed"])
async def test_a_judge_behind_the_http_adapter_is_parsed_and_validated(
    store: Store, tmp_path: Path, model_url: str, mode: str
) -> None:
    """A judge without a structured-output mode gets the prompt in its request template;
    its answer text is parsed and validated: JSON on the scale is a score, prose a judge
    error (no score)."""
    requests: list[dict[str, Any]] = []
    config = suite(tmp_path, [{"name": "rubric", "judge": "j", "criterion": "says GOOD"}])
    with serve_in_thread(http_judge_app(requests, mode)) as url:
        judge = HttpModelConfig.model_validate(
            {
                "name": "j",
                "adapter": "http",
                "url": f"{url}/judge",
                "role": "judge",
                "body": {"prompt": "{{input}}"},
                "prediction": "text",
                "prompt_tokens": "usage.in",
                "completion_tokens": "usage.out",
            }
        )
        model = HttpModelConfig.model_validate(
            {"name": "m", "adapter": "http", "url": f"{model_url}/predict", "body": {"x": "{{x}}"}}
        )
        runner = Runner(store, clock=lambda: NOW, models=[model, judge])
        try:
            result = await runner.run(config, model)
        finally:
            await runner.aclose()
    assert result.status is RunStatus.SUCCEEDED
    assert len(requests) == N
    assert all(r["prompt"].startswith("You are grading an answer") for r in requests)
    (usage,) = result.judges
    cases = store.runs.list_cases(result.id, limit=None)
    if mode == "json":
        assert (usage.requests, usage.errors) == (N, 0)
        assert usage.prompt_tokens == 7 * N and usage.completion_tokens == 3 * N
        (value,) = result.metrics
        assert value.value == pytest.approx(0.5)
        assert {c.scores["rubric"] for c in cases} == {0.0, 1.0}
    else:
        assert (usage.requests, usage.errors) == (N, N)
        assert usage.first_error is not None and "is not JSON" in usage.first_error
        assert not result.metrics and all("rubric" not in c.scores for c in cases)
