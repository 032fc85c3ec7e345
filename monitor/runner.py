"""Execute one run: a suite's cases against one model, scored and stored.

The runner never lets a misbehaving endpoint crash it: each failed case is recorded with
its error kind, and the run ends ``failed`` with a reason when too many cases failed. A
cancelled run (daemon shutdown) is stored as ``interrupted``, never left ``running``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace

import httpx

from monitor.adapters import Adapter, build_adapter
from monitor.clock import Clock, utc_now
from monitor.config import HttpModelConfig, SuiteConfig, config_hash
from monitor.datasets import Case, Dataset, load_dataset
from monitor.errors import AdapterError, DatasetError
from monitor.records import CaseResult, MetricValue, Run, RunStatus
from monitor.scoring import PerCaseMetric
from monitor.store import Store

logger = logging.getLogger(__name__)

INTERRUPTED = "the daemon stopped before the run finished"


class Runner:
    """Runs suites against models. Keeps one adapter (and HTTP client) per model."""

    def __init__(
        self,
        store: Store,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self._store = store
        self._transport = transport
        self._clock = clock
        self._adapters: dict[str, Adapter] = {}

    async def run(
        self, suite: SuiteConfig, model: HttpModelConfig, *, trigger: str = "schedule"
    ) -> Run:
        """Run ``suite`` against ``model`` and return the stored run, whatever happened."""
        store = self._store
        failure: str | None = None
        try:
            dataset = await asyncio.to_thread(load_dataset, suite)
        except DatasetError as exc:
            dataset, failure = Dataset((), ""), str(exc)
        run_id = await asyncio.to_thread(
            store.create_run,
            suite=suite.name,
            model=model.name,
            trigger=trigger,
            dataset_sha256=dataset.sha256,
            config_hash=config_hash(suite, model),
            at=self._clock(),
        )
        logger.info("run %d started: suite %s, model %s", run_id, suite.name, model.name)
        try:
            if failure is not None:
                await self._finish(run_id, RunStatus.FAILED, failure)
            else:
                await self._execute(run_id, suite, model, dataset.cases)
        except asyncio.CancelledError:
            # Synchronous on purpose: the task is being cancelled and must not await.
            store.finish_run(
                run_id, status=RunStatus.INTERRUPTED, at=self._clock(), error=INTERRUPTED
            )
            logger.warning("run %d interrupted: %s", run_id, INTERRUPTED)
            raise
        except Exception as exc:
            logger.exception("run %d failed with an internal error", run_id)
            await self._finish(
                run_id, RunStatus.FAILED, f"internal error: {type(exc).__name__}: {exc}"
            )
        run = await asyncio.to_thread(store.get_run, run_id)
        assert run is not None
        logger.info("run %d %s%s", run_id, run.status, f": {run.error}" if run.error else "")
        return run

    async def _execute(
        self, run_id: int, suite: SuiteConfig, model: HttpModelConfig, cases: Sequence[Case]
    ) -> None:
        adapter = self._adapter(model)
        results = await asyncio.gather(*(self._ask(adapter, case) for case in cases))
        scored = score_cases(suite, results)
        failure = error_budget_failure(scored.cases, suite.max_error_rate)
        status = RunStatus.FAILED if failure else RunStatus.SUCCEEDED
        metrics = () if failure else scored.metrics
        await self._finish(run_id, status, failure, scored.cases, metrics)

    async def _ask(self, adapter: Adapter, case: Case) -> CaseResult:
        try:
            prediction = await adapter.predict(case)
        except AdapterError as exc:
            return CaseResult(
                case.id, case.inputs, case.expected, error_kind=exc.kind, error=str(exc)
            )
        return CaseResult(
            case.id,
            case.inputs,
            case.expected,
            prediction=prediction.value,
            latency_seconds=prediction.latency_seconds,
        )

    async def _finish(
        self,
        run_id: int,
        status: RunStatus,
        error: str | None,
        cases: Sequence[CaseResult] = (),
        metrics: Sequence[MetricValue] = (),
    ) -> None:
        await asyncio.to_thread(
            self._store.finish_run,
            run_id,
            status=status,
            at=self._clock(),
            error=error,
            cases=cases,
            metrics=metrics,
        )

    def _adapter(self, model: HttpModelConfig) -> Adapter:
        adapter = self._adapters.get(model.name)
        if adapter is None or adapter.config != model:
            adapter = build_adapter(model, transport=self._transport)
            self._adapters[model.name] = adapter
        return adapter

    async def aclose(self) -> None:
        """Close every adapter's HTTP client."""
        adapters, self._adapters = list(self._adapters.values()), {}
        for adapter in adapters:
            await adapter.aclose()


@dataclass(frozen=True, slots=True)
class ScoredCases:
    """Case results with their per-case scores filled in, and the run's aggregates."""

    cases: list[CaseResult]
    metrics: list[MetricValue]


def score_cases(suite: SuiteConfig, results: Sequence[CaseResult]) -> ScoredCases:
    """Score the cases that got an answer; failed cases keep no scores and count only
    toward the error rate."""
    answered = [r for r in results if r.error_kind is None]
    per_case: dict[str, dict[str, float]] = {r.case_id: {} for r in answered}
    metrics: list[MetricValue] = []
    if answered:
        predictions = [r.prediction for r in answered]
        expected = [r.expected for r in answered]
        for metric in suite.build_metrics():
            name = metric.label
            score = metric.compute(predictions, expected)
            metrics.append(MetricValue(name, score.value, score.lower, score.upper, len(answered)))
            if isinstance(metric, PerCaseMetric) and score.per_case is not None:
                for r, s in zip(answered, score.per_case, strict=True):
                    per_case[r.case_id][name] = s
    cases = [replace(r, scores=per_case.get(r.case_id, {})) for r in results]
    return ScoredCases(cases, metrics)


def error_budget_failure(cases: Sequence[CaseResult], max_error_rate: float) -> str | None:
    """The reason a run failed its error budget, or None when it is within it."""
    errors = Counter(c.error_kind for c in cases if c.error_kind is not None)
    failed = sum(errors.values())
    if not cases or (failed / len(cases) <= max_error_rate and failed < len(cases)):
        return None if cases else "the dataset has no cases"
    kinds = ", ".join(f"{kind} x{count}" for kind, count in errors.most_common())
    first = next(c.error for c in cases if c.error_kind is not None)
    return (
        f"error rate {failed / len(cases):.0%} ({failed} of {len(cases)} cases) exceeds"
        f" max_error_rate {max_error_rate:.0%}: {kinds}; first: {first}"
    )
