"""Ask the judges of a run's judge metrics about each answer, and count what they cost.

A judge metric (``monitor.scoring.judged``) says what to ask and how to read the answer;
this stage asks, through the judge model's own adapter, so a judge's calls share its
transport with every other run that uses it: its concurrency (adaptive under 429), its
``rate_limit``, its bounded retries and ``Retry-After``. A worker judges its case's
answers before handing them to scoring, so a case is scored once its judges have answered.

A judge request that fails, or an answer that is not valid JSON for the metric, is a judge
error: that answer has no score for the metric, the error is counted with the run
(``JudgeUsage``), and the case itself is not failed (the model did answer). Judge tokens
and cost go to one ``OperationsRecorder`` per metric, at the judge's price, never to the
model's.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from monitor.adapters import Adapter, Prediction
from monitor.adapters.http import render
from monitor.config import AnyModelConfig, SuiteConfig
from monitor.errors import AdapterError, StoreError
from monitor.records import Case, JudgeUsage
from monitor.scoring.judged import (
    JudgeAnswerError,
    JudgeMetric,
    Pairwise,
    SemanticSimilarity,
    reduce_judgements,
)
from monitor.scoring.operations import OperationsRecorder, Price

if TYPE_CHECKING:
    from collections.abc import Callable

    from monitor.store.parts import HasRuns, RunsAndVerdicts

logger = logging.getLogger(__name__)


@dataclass
class _Tally:
    """One judge metric's requests, errors and usage in a run."""

    metric: JudgeMetric
    judge: AnyModelConfig | None
    recorder: OperationsRecorder
    errors: int = 0
    first_error: str | None = None
    answered: int = field(default=0)
    cached: int = 0
    agreement_sum: float = 0.0
    agreement_cases: int = 0

    def usage(self) -> JudgeUsage:
        summary = self.recorder.summary(0.0)
        if not self.answered:
            # Nothing asked (every answer kept, or every request failed): nothing spent,
            # which is known; a cost stays unknown without a price.
            priced = self.judge is not None and self.judge.price is not None
            summary = replace(
                summary,
                prompt_tokens=0,
                completion_tokens=0,
                cost=0.0 if priced else None,
            )
        return JudgeUsage(
            metric=self.metric.label,
            judge=self.metric.judge,
            prompt_sha256=self.metric.prompt_sha256,
            requests=self.answered,
            errors=self.errors,
            prompt_tokens=summary.prompt_tokens,
            completion_tokens=summary.completion_tokens,
            cost=summary.cost,
            currency=summary.currency,
            first_error=self.first_error,
            cached=self.cached,
            agreement=self.agreement_sum / self.agreement_cases if self.agreement_cases else None,
        )


@dataclass(frozen=True, slots=True)
class BaselineAnswers:
    """The answers a ``pairwise`` metric compares with: the baseline run's, by case id."""

    run_id: int | None = None
    answers: Mapping[str, Any] = field(default_factory=dict)


class Judging:
    """The judge metrics of one run and the adapters of their judges. ``baseline`` holds
    the answers ``pairwise`` metrics compare with (set before the first case)."""

    baseline = BaselineAnswers()

    def __init__(
        self,
        metrics: Sequence[JudgeMetric],
        judges: Mapping[str, AnyModelConfig],
        adapter: Callable[[AnyModelConfig], Adapter],
        *,
        repeats: int = 1,
        reducer: str = "mean",
        cache: AnswerCache | None = None,
        cache_enabled: bool | None = None,
    ) -> None:
        self._repeats = repeats
        self._reducer = reducer
        self._cache = cache
        self._cache_enabled = cache_enabled
        self._tallies = []
        for metric in metrics:
            judge = judges.get(metric.judge)
            price = _price(judge) if judge is not None else None
            self._tallies.append(_Tally(metric, judge, OperationsRecorder(price)))
        self._adapter = adapter

    def __bool__(self) -> bool:
        return bool(self._tallies)

    @property
    def needs_baseline(self) -> bool:
        """Whether a metric compares with the baseline run's answers."""
        return any(
            t.metric.needs_baseline and t.metric.settings["against"] == "baseline"
            for t in self._tallies
        )

    async def judge(self, case: Case, predictions: Sequence[Prediction]) -> list[Prediction]:
        """``predictions``, each with its judge metrics' scores (``None`` on a judge
        error). Every judge request of the case is sent at once; the judges' transports
        bound them."""
        if not self._tallies:
            return list(predictions)
        judged = []
        for prediction in predictions:
            results = await asyncio.gather(
                *(self._judged(tally, case, prediction) for tally in self._tallies)
            )
            scores: dict[str, float | None] = {}
            for tally, (score, agreement) in zip(self._tallies, results, strict=True):
                scores[tally.metric.label] = score
                if agreement is not None:
                    scores[agreement_key(tally.metric.label)] = agreement
            judged.append(replace(prediction, judged=scores))
        return judged

    async def _judged(
        self, tally: _Tally, case: Case, prediction: Prediction
    ) -> tuple[float | None, float | None]:
        """The answer's score, reduced over ``judge_repeats`` judgements, and the judge's
        agreement with itself on it (with repeats); a failed judgement is left out."""
        values = [await self._ask(tally, case, prediction, r) for r in range(self._repeats)]
        kept = [v for v in values if v is not None]
        if not kept:
            return None, None
        score, agreement = reduce_judgements(kept, self._reducer)
        if self._repeats == 1:
            return score, None
        tally.agreement_sum += agreement
        tally.agreement_cases += 1
        return score, agreement

    async def _ask(
        self, tally: _Tally, case: Case, prediction: Prediction, repeat: int = 0
    ) -> float | None:
        metric = tally.metric
        if tally.judge is None:  # the configuration check refuses this; an API run may not
            return tally_error(tally, f'no model {metric.judge!r} with role = "judge"')
        if isinstance(metric, SemanticSimilarity):
            return await self._similarity(tally, metric, case, prediction)
        against = None
        if isinstance(metric, Pairwise):
            against = self._against(metric, case)
            if against is None:
                return tally_error(tally, self._missing(metric, case))
        try:
            asks = metric.asks(case.inputs, prediction.value, case.expected, against)
            prompts = [str(render(metric.prompt, fields)) for fields in asks]
        except KeyError as exc:
            return tally_error(tally, f"the prompt names field {exc}, which the case lacks")
        answers, logprobs = [], []
        for prompt in prompts:
            try:
                value, tokens = await self._answer(tally, prompt, repeat)
            except AdapterError as exc:
                return tally_error(tally, f"{exc.kind}: {exc}")
            answers.append(value)
            logprobs.append(tokens)
        try:
            return metric.combine(answers, logprobs if metric.wants_logprobs else None)
        except JudgeAnswerError as exc:
            return tally_error(tally, str(exc))

    async def _similarity(
        self, tally: _Tally, metric: SemanticSimilarity, case: Case, prediction: Prediction
    ) -> float | None:
        assert tally.judge is not None
        try:
            vectors, cost = await self._adapter(tally.judge).embed(
                metric.texts(prediction.value, case.expected)
            )
        except AdapterError as exc:
            return tally_error(tally, f"{exc.kind}: {exc}")
        tally.answered += 1
        tally.recorder.request(cost.latency_seconds, cost.prompt_tokens, cost.completion_tokens)
        try:
            return metric.similarity(vectors)
        except JudgeAnswerError as exc:
            return tally_error(tally, str(exc))

    async def _answer(self, tally: _Tally, prompt: str, repeat: int) -> tuple[Any, Any]:
        """The judge's answer to ``prompt`` (and its logprobs): kept from an earlier run
        when the cache holds it, else asked and kept."""
        metric, judge = tally.metric, tally.judge
        assert judge is not None
        key = None
        if self._cache is not None and self._caches(judge):
            key = cache_key(judge, metric, prompt, repeat)
            kept = await self._cache.get(key)
            if kept is not None:
                tally.cached += 1
                return kept
        reply = await self._adapter(judge).judge(
            prompt, metric.schema(), logprobs=metric.wants_logprobs
        )
        tally.answered += 1
        tally.recorder.request(reply.latency_seconds, reply.prompt_tokens, reply.completion_tokens)
        if key is not None and self._cache is not None:
            await self._cache.put(key, judge.name, reply.value, reply.scores)
        return reply.value, reply.scores

    def _caches(self, judge: AnyModelConfig) -> bool:
        if self._cache_enabled is not None:
            return self._cache_enabled
        return getattr(judge, "temperature", None) == 0.0

    def _against(self, metric: Pairwise, case: Case) -> Any:
        source = str(metric.settings["against"])
        if source != "baseline":
            return case.inputs.get(source, case.metadata.get(source))
        return self.baseline.answers.get(case.id)

    def _missing(self, metric: Pairwise, case: Case) -> str:
        source = str(metric.settings["against"])
        if source != "baseline":
            return f"the case has no field {source!r} to compare with"
        if self.baseline.run_id is None:
            return "no baseline run to compare with (promote one)"
        return f"baseline run {self.baseline.run_id} has no answer to this case"

    def usage(self) -> list[JudgeUsage]:
        """Each judge metric's usage so far, in the suite's metric order."""
        return [tally.usage() for tally in self._tallies]


class AnswerCache:
    """Judge answers kept in the store, by key (``cache_key``). A store that does not
    answer costs the cache, never the run: the judge is asked, and the answer not kept."""

    def __init__(self, store: HasRuns, clock: Callable[[], datetime]) -> None:
        self._store = store
        self._clock = clock

    async def get(self, key: str) -> tuple[Any, Any] | None:
        try:
            return await asyncio.to_thread(self._store.runs.judge_answer, key)
        except StoreError as exc:
            logger.warning("judge answer cache unavailable: %s", exc)
            return None

    async def put(self, key: str, judge: str, answer: Any, logprobs: Any) -> None:
        keep = partial(
            self._store.runs.keep_judge_answer,
            key,
            judge=judge,
            answer=answer,
            logprobs=logprobs,
            at=self._clock(),
        )
        try:
            await asyncio.to_thread(keep)
        except StoreError as exc:
            logger.warning("judge answer not kept: %s", exc)


def cache_key(judge: AnyModelConfig, metric: JudgeMetric, prompt: str, repeat: int) -> str:
    """The sha256 naming a judge answer: the judge (name, adapter, URL and, for openai,
    model, temperature, seed), the prompt template's sha256, the rendered prompt (the
    case's inputs and answer), the answer's schema, logprobs and the repeat."""
    identity = {
        "judge": judge.name,
        "adapter": judge.adapter,
        "url": judge.url,
        "model": getattr(judge, "model", None),
        "temperature": getattr(judge, "temperature", None),
        "seed": getattr(judge, "seed", None),
        "template": metric.prompt_sha256,
        "prompt": prompt,
        "schema": metric.schema(),
        "logprobs": metric.wants_logprobs,
        "repeat": repeat,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def agreement_key(label: str) -> str:
    """Where a case's scores keep the judge's agreement with itself on a metric."""
    return f"{label}.agreement"


def baseline_answers(
    store: RunsAndVerdicts, suite: SuiteConfig, model: AnyModelConfig, roles: Mapping[str, str]
) -> BaselineAnswers:
    """The answers of the run ``pairwise`` compares with: the active baseline of the
    suite on ``model``, else that of the suite's one production model that has one (as a
    verdict chooses), by case id; none when there is no such run."""
    baseline = store.verdicts.active_baseline(suite.name, model.name)
    if baseline is None:
        found = [
            b
            for name in suite.models
            if roles.get(name) == "production"
            and (b := store.verdicts.active_baseline(suite.name, name)) is not None
        ]
        baseline = found[0] if len(found) == 1 else None
    if baseline is None:
        return BaselineAnswers()
    cases = store.runs.list_cases(baseline.run_id, limit=None)
    answers = {c.case_id: c.prediction for c in cases if c.error_kind is None}
    return BaselineAnswers(baseline.run_id, answers)


def tally_error(tally: _Tally, message: str) -> float | None:
    """Count a judge error; the answer gets no score (``None``)."""
    tally.errors += 1
    tally.first_error = tally.first_error or message
    return None


def _price(model: AnyModelConfig) -> Price | None:
    price = model.price
    if price is None:
        return None
    return Price(price.prompt, price.completion, price.per_tokens, price.currency)
