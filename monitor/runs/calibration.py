"""``monitor judge calibrate``: a suite's judges against the people who labelled its cases.

Each case carries the answer that was labelled (field ``answer``) and its human label
(field ``human``: one value, or a table metric label -> value when the suite has several
judge metrics), both listed in the suite's ``metadata`` (or inputs). Every judge metric
of the suite except ``pairwise`` judges each labelled answer through the judge's own
adapter, exactly as in a run (prompt, schema, ``judge_repeats``); the judge's scores and
the human labels, on the metric's scale, go to ``monitor.scoring.calibration``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from monitor.adapters import Adapter, Prediction, build_adapter
from monitor.config import Config, SuiteConfig
from monitor.errors import AdapterError, DatasetError
from monitor.records import Case, JudgeUsage
from monitor.runs.datasets import field_value, load_dataset
from monitor.runs.judging import Judging
from monitor.scoring.calibration import Calibration, calibrate
from monitor.scoring.judged import BINARY, JudgeMetric, Pairwise, VerdictMetric

# Cases judged at once; each judge's own concurrency limit applies within.
IN_FLIGHT = 64


@dataclass(frozen=True, slots=True)
class SuiteCalibration:
    """Every judge metric of a suite against the human labels, and what judging cost."""

    suite: str
    dataset_sha256: str
    metrics: list[Calibration]
    usage: list[JudgeUsage]
    unlabelled: dict[str, int]
    """Per metric: cases without a human label for it, or that the judge failed."""


async def calibrate_suite(
    config: Config,
    suite: SuiteConfig,
    *,
    answer: str = "answer",
    human: str = "human",
    transport: httpx.AsyncBaseTransport | None = None,
) -> SuiteCalibration:
    """Judge every labelled answer of ``suite`` and measure agreement with the labels.
    ``ValueError`` when the suite has no judge metric to calibrate; ``DatasetError``
    naming the file and case for a missing answer or an off-scale label; ``AdapterError``
    when a judge answered nothing because it could not be reached."""
    metrics = [
        m
        for m in suite.build_metrics()
        if isinstance(m, JudgeMetric) and not isinstance(m, Pairwise)
    ]
    if not metrics:
        raise ValueError(f"suite {suite.name!r} has no judge metric to calibrate (pairwise aside)")
    dataset = await asyncio.to_thread(load_dataset, suite)
    labels = [_labels(suite, case, metrics, answer, human) for case in dataset.cases]
    adapters: dict[str, Adapter] = {}

    def adapter(model: Any) -> Adapter:
        if model.name not in adapters:
            adapters[model.name] = build_adapter(model, transport=transport)
        return adapters[model.name]

    judges = {m.name: m for m in config.models if m.role in ("judge", "embedder")}
    judging = Judging(
        metrics, judges, adapter, repeats=suite.judge_repeats, reducer=suite.judge_reducer
    )
    limit = asyncio.Semaphore(IN_FLIGHT)

    async def judge(case: Case, text: Any) -> Mapping[str, float | None]:
        async with limit:
            (judged,) = await judging.judge(case, [Prediction(text, 0.0)])
        return judged.judged or {}

    try:
        results = await asyncio.gather(
            *(judge(case, given) for case, (given, _) in zip(dataset.cases, labels, strict=True))
        )
    finally:
        for each in adapters.values():
            await each.aclose()
    usage = judging.usage()
    _check_reached(usage)
    return _agreement(suite, dataset.sha256, metrics, labels, results, usage)


def _check_reached(usage: Sequence[JudgeUsage]) -> None:
    """Raise ``AdapterError`` when a judge answered none of its requests because it could
    not be reached (connection refused, timed out): there is nothing to calibrate, and an
    empty report would read as a judge that was never asked."""
    for u in usage:
        error = u.first_error or ""
        kind = error.partition(":")[0]
        if u.requests == 0 and u.errors and kind in ("connection", "timeout"):
            raise AdapterError(
                "timeout" if kind == "timeout" else "connection",
                f"judge {u.judge!r} of metric {u.metric!r} answered none of {u.errors}"
                f" requests: {error}",
            )


def _agreement(
    suite: SuiteConfig,
    sha256: str,
    metrics: Sequence[JudgeMetric],
    labels: Sequence[tuple[Any, Mapping[str, float]]],
    results: Sequence[Mapping[str, float | None]],
    usage: list[JudgeUsage],
) -> SuiteCalibration:
    found: list[Calibration] = []
    unlabelled: dict[str, int] = {}
    for metric in metrics:
        pairs = [
            (scores[metric.label], people[metric.label])
            for (_, people), scores in zip(labels, results, strict=True)
            if metric.label in people and scores.get(metric.label) is not None
        ]
        unlabelled[metric.label] = len(labels) - len(pairs)
        if pairs:
            judge_scores = [float(j) for j, _ in pairs if j is not None]
            found.append(
                calibrate(metric.label, judge_scores, [h for _, h in pairs], seed=suite.seed)
            )
    return SuiteCalibration(suite.name, sha256, found, usage, unlabelled)


def _labels(
    suite: SuiteConfig, case: Case, metrics: Sequence[JudgeMetric], answer: str, human: str
) -> tuple[Any, dict[str, float]]:
    """The labelled answer of ``case`` and its human labels, as scores on each metric's
    scale."""
    where = f"{suite.dataset.name}: case {case.id!r}"
    given = field_value(case, answer)
    if given is None:
        raise DatasetError(f"{where}: no field {answer!r} (the answer people labelled)")
    value = field_value(case, human)
    if value is None:
        return given, {}
    if isinstance(value, Mapping):
        raw = {m.label: value[m.label] for m in metrics if m.label in value}
    elif len(metrics) == 1:
        raw = {metrics[0].label: value}
    else:
        raise DatasetError(
            f"{where}: field {human!r} must be a table of metric -> label when the suite"
            f" has several judge metrics ({', '.join(m.label for m in metrics)})"
        )
    by_label = {m.label: m for m in metrics}
    try:
        return given, {label: human_score(by_label[label], v) for label, v in raw.items()}
    except ValueError as exc:
        raise DatasetError(f"{where}: field {human!r}: {exc}") from None


def human_score(metric: JudgeMetric, value: Any) -> float:
    """A human label as a score on ``metric``'s scale: a verdict (``"pass"``, ``4``,
    ``"good"``), ``true``/``false`` or 1/0 for a binary scale, a number for a share."""
    if not isinstance(metric, VerdictMetric):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"expected a number for {metric.label}, got {value!r}")
        return float(value)
    scale = metric.scale_values()
    if scale == BINARY and (isinstance(value, bool) or value in (0, 1)):
        return float(bool(value))
    if value not in scale:
        shown = ", ".join(repr(v) for v in scale)
        raise ValueError(f"{value!r} is not on the scale of {metric.label} ({shown})")
    return metric.parse({"reasoning": "", "verdict": value})
