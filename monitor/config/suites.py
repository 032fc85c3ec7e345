"""``[[suites]]``: a dataset, how to score it, which models, and when."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, ValidationInfo, field_validator, model_validator

from monitor.config._base import Duration, Name, Section, resolve_path
from monitor.durations import format_duration
from monitor.scoring import Metric, Task, build_metric

Reducer = Literal["mean", "majority", "pass_at_k", "at_least_k"]


def _valid_metric(spec: str | dict[str, Any], info: ValidationInfo) -> str | dict[str, Any]:
    if isinstance(spec, dict) and isinstance(spec.get("prompt_file"), str):
        # A judge's prompt file, relative to the config file like every path.
        path = resolve_path(Path(spec["prompt_file"]), info)
        if not path.is_file() or not os.access(path, os.R_OK):
            raise ValueError(f"prompt_file: no readable file at '{path}'")
        try:
            path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"prompt_file: '{path}' is not UTF-8 text") from None
        spec = {**spec, "prompt_file": str(path)}
    build_metric(spec)
    return spec


MetricSpec = Annotated[str | dict[str, Any], AfterValidator(_valid_metric)]
"""A metric as users write it: ``"accuracy"``, ``"ndcg@10"`` or a table with ``name``
and options, ``{name = "f1", average = "weighted"}``."""


class ScheduleConfig(Section):
    """``schedule`` of a suite: ``every = "5m"`` or ``cron = "0 * * * *"`` (UTC)."""

    every: Duration | None = None
    cron: str | None = None
    jitter: Duration | None = None
    run_at_start: bool = False
    misfire_grace: Duration = timedelta(minutes=5)

    @field_validator("every")
    @classmethod
    def _positive(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value <= timedelta(0):
            raise ValueError("must be a positive duration")
        return value

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        if value is not None:
            # APScheduler parses the expression; imported only when a schedule has one.
            from monitor.config.schedules import cron_trigger

            try:
                cron_trigger(value)
            except ValueError as exc:
                raise ValueError(f"invalid cron expression: {exc}") from None
        return value

    def describe(self) -> str:
        """``"every 30s"`` or ``"cron '0 * * * *'"``, plus jitter."""
        when = (
            f"cron {self.cron!r}"
            if self.cron
            else f"every {format_duration(self.every or timedelta(0))}"
        )
        return when + (f" (jitter {format_duration(self.jitter)})" if self.jitter else "")

    @model_validator(mode="after")
    def _one_kind(self) -> ScheduleConfig:
        if (self.every is None) == (self.cron is None):
            raise ValueError("set exactly one of 'every' (a duration) or 'cron'")
        return self


OPERATIONAL = ("latency", "tokens", "cost")
"""Per-case operational measures a verdict can judge when ``[suites.verdict.metrics]``
names them (all lower-is-better): latency in seconds, tokens, cost."""


def _drop(value: float | str) -> float | str:
    if isinstance(value, str):
        text = value.strip()
        if not text.endswith("%"):
            raise ValueError(f'expected a number or a percentage like "3%", got {value!r}')
        try:
            share = float(text[:-1]) / 100
        except ValueError:
            raise ValueError(f'expected a percentage like "3%", got {value!r}') from None
        if share < 0:
            raise ValueError("must not be negative")
        return text
    if value < 0:
        raise ValueError("must not be negative")
    return value


Drop = Annotated[float | str, AfterValidator(_drop)]
"""An absolute amount (``0.02``) or a share of the baseline value (``"3%"``)."""


class MetricPolicyConfig(Section):
    """``[suites.verdict.metrics.<metric>]``: how one metric is judged against its baseline.

    ``min`` is a floor (a ceiling for lower-is-better metrics) that regresses whatever the
    statistics say; ``max_drop`` is the drop tolerated before a significant one regresses
    (absolute, or ``"3%"`` of the baseline value); ``min_effect`` the smallest change worth
    telling apart (below it a run is ``pass``, above it but unproven ``inconclusive``);
    ``direction`` defaults to the metric's own (lower is better for error metrics)."""

    min: float | None = None
    max_drop: Drop = 0.0
    min_effect: Drop | None = None
    alpha: float | None = Field(None, gt=0.0, lt=1.0)
    direction: Literal["higher", "lower"] | None = None

    @model_validator(mode="after")
    def _same_terms(self) -> MetricPolicyConfig:
        if self.min_effect is not None and isinstance(self.min_effect, str) != isinstance(
            self.max_drop, str
        ):
            raise ValueError("give max_drop and min_effect both as numbers or both as percentages")
        return self


class VerdictConfig(Section):
    """``[suites.verdict]``: how runs of the suite are compared with their baseline."""

    alpha: float = Field(0.05, gt=0.0, lt=1.0)
    seed: int = 0
    resamples: int = Field(1000, ge=100, le=100_000)
    min_slice_cases: int = Field(20, ge=1)
    changes: int = Field(10, ge=0, le=1000)
    metrics: dict[str, MetricPolicyConfig] = Field(default_factory=dict)


class TierConfig(Section):
    """One of ``[suites.tiers]``: how a named tier runs the suite (``smoke = { sample = 100
    }``, ``full = {}``); unset keys keep the suite's own."""

    sample: int | Literal["full"] | None = None

    @field_validator("sample")
    @classmethod
    def _positive_sample(cls, value: int | str | None) -> int | str | None:
        if isinstance(value, int) and value < 1:
            raise ValueError('must be a positive number of cases or "full"')
        return value


FairnessMeasure = Literal[
    "demographic_parity_difference", "demographic_parity_ratio", "equalized_odds_difference"
]
FAIRNESS_MEASURES: tuple[FairnessMeasure, ...] = (
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
)


class SuiteFairnessConfig(Section):
    """``fairness`` of a classification suite: group fairness of every run over the
    case field ``groups`` (one of the suite's ``metadata`` fields, so every case carries
    it), prediction against expected value; ``positive`` is the favourable outcome."""

    groups: str = Field(min_length=1, max_length=200)
    positive: str = "1"
    metrics: tuple[FairnessMeasure, ...] = Field(FAIRNESS_MEASURES, min_length=1)


class SuiteConfig(Section):
    """``[[suites]]``: a dataset, how to score it, which models, and when."""

    name: Name
    dataset: Path
    task: Task
    metrics: tuple[MetricSpec, ...] = Field(min_length=1)
    models: tuple[str, ...] = Field(min_length=1)
    id: str | None = "id"
    inputs: tuple[str, ...] | None = None
    expected: str = "expected"
    # What the compatible runs API reports as a result's "task" and "dataset".
    benchmark_task: str | None = Field(None, min_length=1, max_length=200)
    benchmark_dataset: str | None = Field(None, min_length=1, max_length=200)
    metadata: tuple[str, ...] = ()
    slices: tuple[str, ...] = ()
    sample: int | Literal["full"] = "full"
    seed: int = 0
    stratify: str | None = None
    repeats: int = Field(1, ge=1, le=100)
    reducer: Reducer = "mean"
    at_least: int | None = Field(None, ge=1)
    pass_score: float = 1.0
    # Judge metrics: ask the judge this many times per answer and reduce.
    judge_repeats: int = Field(1, ge=1, le=20)
    judge_reducer: Literal["mean", "majority"] = "mean"
    # Reuse a judge answer for an unchanged (judge, prompt, inputs, answer); None: only
    # for a deterministic judge (an openai judge at temperature 0).
    judge_cache: bool | None = None
    deadline: Duration | None = None
    schedule: ScheduleConfig | None = None
    max_error_rate: float = Field(0.1, ge=0.0, le=1.0)
    baseline: Literal["manual", "auto"] = "manual"
    allow_dataset_change: bool = False
    # Whether a gate's verdict waits for a person (monitor.verdicts.review).
    review: Literal["never", "on-regression", "always"] = "never"
    # Named tiers a gate picks with --tier; a run of a tier is judged against a baseline
    # of the same tier.
    tiers: dict[Name, TierConfig] = Field(default_factory=dict)
    verdict: VerdictConfig = Field(default_factory=VerdictConfig)
    fairness: SuiteFairnessConfig | None = None

    def for_tier(self, tier: str) -> SuiteConfig:
        """This suite as tier ``tier`` runs it; ``KeyError`` naming the tiers when it
        declares no such one."""
        if tier not in self.tiers:
            known = ", ".join(sorted(self.tiers)) or "none declared"
            raise KeyError(f"suite {self.name!r} has no tier {tier!r} (tiers: {known})")
        chosen = self.tiers[tier]
        return self if chosen.sample is None else self.model_copy(update={"sample": chosen.sample})

    def build_metrics(self) -> list[Metric]:
        """Configured metric instances, in config order (validation guarantees they build)."""
        return [build_metric(spec) for spec in self.metrics]

    @field_validator("sample")
    @classmethod
    def _positive_sample(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 1:
            raise ValueError('must be a positive number of cases or "full"')
        return value

    @field_validator("deadline")
    @classmethod
    def _positive_deadline(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value <= timedelta(0):
            raise ValueError("must be a positive duration")
        return value

    @property
    def task_label(self) -> str:
        """The task the runs API reports: ``benchmark_task``, else the task kind."""
        return self.benchmark_task or self.task

    @property
    def dataset_label(self) -> str:
        """The dataset the runs API reports: ``benchmark_dataset``, else the file's stem."""
        return self.benchmark_dataset or self.dataset.stem

    @model_validator(mode="after")
    def _consistent(self) -> SuiteConfig:
        if self.reducer == "at_least_k":
            if self.at_least is None:
                raise ValueError("reducer 'at_least_k' needs 'at_least' (attempts that must pass)")
            if self.at_least > self.repeats:
                raise ValueError(
                    f"at_least ({self.at_least}) cannot exceed repeats ({self.repeats})"
                )
        if self.stratify is not None and self.sample == "full":
            raise ValueError("'stratify' only applies with 'sample = N'")
        labels = [m.label for m in self.build_metrics()]
        twice = {label for label in labels if labels.count(label) > 1}
        if twice:
            raise ValueError(f"metric {sorted(twice)[0]!r} is listed twice")
        self._check_fairness()
        judged = set(labels) | set(OPERATIONAL)
        unknown = sorted(set(self.verdict.metrics) - judged)
        if unknown:
            raise ValueError(
                f"verdict.metrics.{unknown[0]}: not a metric of this suite"
                f" (expected one of: {', '.join(sorted(judged))})"
            )
        return self

    def _check_fairness(self) -> None:
        fairness = self.fairness
        if fairness is None:
            return
        if self.task != "classification":
            raise ValueError(f"fairness needs a classification suite, this one is {self.task!r}")
        if fairness.groups not in self.metadata:
            listed = ", ".join(repr(m) for m in self.metadata) or "none listed"
            raise ValueError(
                f"fairness.groups: {fairness.groups!r} must be one of the suite's metadata"
                f" fields, so every case carries it (metadata: {listed})"
            )
        twice = sorted({m for m in fairness.metrics if fairness.metrics.count(m) > 1})
        if twice:
            raise ValueError(f"fairness.metrics: {twice[0]!r} is listed twice")

    @field_validator("dataset")
    @classmethod
    def _readable_file(cls, value: Path, info: ValidationInfo) -> Path:
        path = resolve_path(value, info)
        if not path.is_file() or not os.access(path, os.R_OK):
            raise ValueError(f"no readable file at '{path}'")
        return path
