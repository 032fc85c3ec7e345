"""Baselines and verdicts against the store: which run a run is judged against, judging it,
and keeping the result. The statistics themselves are pure (``compare``, ``decide``,
``stats``); this module is the one that reads and writes.

Which baseline a run of suite S on model M is judged against:

- an explicit run id (``monitor gate --baseline 12``), or ``production``: the active
  baseline of S on the suite's production model;
- otherwise the active baseline of S x M, and failing that, for a model whose role is not
  ``production`` (a candidate, a shadow), the production model's baseline: candidates are
  judged against what serves today.

A run of a tier (``monitor gate --tier smoke``) is judged only against a baseline of the
same tier: the active baselines above are looked up per tier, and a named run of
another tier is refused. A smoke run's 100 cases say nothing against a full run's scores.

A baseline scored another version of the dataset than the run (its sha256 differs):
the comparison is refused with a clear message, unless the suite sets
``allow_dataset_change`` or the caller allows it; an allowed comparison is marked
``dataset_changed``.

A suite with ``review = "on-regression"`` or ``"always"`` stores the verdict of a gate or
API run as ``needs_review`` (see ``review``); a person decides it with
``Store.verdicts.review_verdict``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from monitor.config import AnyModelConfig, SuiteConfig
from monitor.records import Run, RunStatus, Verdict
from monitor.scoring.operations import Price
from monitor.store.parts import RunsAndVerdicts
from monitor.verdicts.compare import compare_cases
from monitor.verdicts.review import review_for

BaselineChoice = int | str | None
"""A run id, ``"production"``, or None for the run's own baseline (then production's)."""


class Catalog(Protocol):
    """What judging needs of the configuration: its suites and models (``Config`` is
    one)."""

    @property
    def suites(self) -> Sequence[SuiteConfig]: ...

    @property
    def models(self) -> Sequence[AnyModelConfig]: ...


@dataclass(frozen=True, slots=True)
class Configured:
    """A catalog from the suites and models an API app holds."""

    suites: Sequence[SuiteConfig]
    models: Sequence[AnyModelConfig]


class VerdictError(Exception):
    """A verdict cannot be given: no baseline, a changed dataset, an unusable run. The
    message says which and what to do."""


@dataclass(frozen=True, slots=True)
class Reference:
    """The run a verdict compares with, and why that one."""

    run: Run
    source: str


def find_baseline(
    store: RunsAndVerdicts,
    config: Catalog,
    suite: str,
    model: str,
    choice: BaselineChoice = None,
    tier: str = "",
) -> Reference:
    """The baseline run for a run of ``suite`` on ``model`` of ``tier`` (see the module
    docstring); ``VerdictError`` when there is none."""
    of = f" (tier {tier})" if tier else ""
    if isinstance(choice, int) or (
        isinstance(choice, str) and choice.isascii() and choice.isdigit()
    ):
        run_id = int(choice)
        run = store.runs.get_run(run_id)
        if run is None:
            raise VerdictError(f"baseline run {run_id} not found")
        if run.suite != suite:
            raise VerdictError(
                f"baseline run {run_id} is a run of suite {run.suite!r}, not {suite!r}"
            )
        if run.status != RunStatus.SUCCEEDED:
            raise VerdictError(
                f"baseline run {run_id} is {run.status}; only a succeeded run compares"
            )
        if run.tier != tier:
            raise VerdictError(
                f"baseline run {run_id} ran {_tier_name(run.tier)}, this run"
                f" {_tier_name(tier)}: a run is judged against a baseline of its own tier"
            )
        return Reference(run, f"run {run_id}")
    if choice not in (None, "production"):
        raise VerdictError(f"baseline must be a run id or 'production', got {choice!r}")
    if choice is None:
        own = store.verdicts.active_baseline(suite, model, tier)
        if own is not None:
            return _reference(store, own.run_id, f"the baseline of {suite} on {model}{of}")
        role = _role(config, model)
        if role == "production":
            how = (
                f"promote a run of tier {tier} with `monitor baseline promote RUN_ID`"
                if tier
                else "promote a run with `monitor baseline promote RUN_ID`, or set"
                ' baseline = "auto" on the suite'
            )
            raise VerdictError(f"{suite} on {model} has no baseline{of}: {how}")
    production = [m for m in _suite(config, suite).models if _role(config, m) == "production"]
    found = [
        (m, b)
        for m in production
        if (b := store.verdicts.active_baseline(suite, m, tier)) is not None
    ]
    if not found:
        raise VerdictError(
            f"no production model of {suite} ({', '.join(production) or 'none configured'})"
            f" has a baseline{of} to judge against"
        )
    if len(found) > 1:
        names = ", ".join(m for m, _ in found)
        raise VerdictError(
            f"{suite} has several production models with baselines ({names}):"
            " name the baseline run with --baseline RUN_ID"
        )
    name, baseline = found[0]
    return _reference(store, baseline.run_id, f"the baseline of {suite} on {name} (production){of}")


def judge_run(
    store: RunsAndVerdicts,
    config: Catalog,
    run: Run,
    *,
    at: datetime,
    baseline: BaselineChoice | Reference = None,
    allow_dataset_change: bool = False,
) -> Verdict:
    """Judge a succeeded ``run`` against its baseline (a choice as ``find_baseline``
    takes, or the ``Reference`` it already found), store the verdict and return it."""
    if run.status != RunStatus.SUCCEEDED:
        raise VerdictError(f"run {run.id} is {run.status}: only a succeeded run is judged")
    suite = _suite(config, run.suite)
    reference = (
        baseline
        if isinstance(baseline, Reference)
        else find_baseline(store, config, run.suite, run.model, baseline, run.tier)
    )
    if reference.run.id == run.id:
        raise VerdictError(f"run {run.id} is itself the baseline")
    changed = reference.run.dataset_sha256 != run.dataset_sha256
    if changed and not (allow_dataset_change or suite.allow_dataset_change):
        raise VerdictError(
            f"the dataset of suite {run.suite} changed since {reference.source} (run"
            f" {reference.run.id}, sha256 {reference.run.dataset_sha256[:12]}) and run {run.id}"
            f" (sha256 {run.dataset_sha256[:12]}): promote a run on the new dataset, or allow"
            " the comparison (allow_dataset_change = true, or --allow-dataset-change)"
        )
    base_cases = store.runs.list_cases(reference.run.id, limit=None)
    new_cases = store.runs.list_cases(run.id, limit=None)
    try:
        judgement = compare_cases(
            suite, base_cases, new_cases, price=_price(_model(config, run.model))
        )
    except ValueError as exc:
        raise VerdictError(f"run {run.id} against run {reference.run.id}: {exc}") from None
    verdict_id = store.verdicts.add_verdict(
        run_id=run.id,
        baseline_run_id=reference.run.id,
        suite=run.suite,
        model=run.model,
        outcome=judgement.outcome,
        reason=judgement.reason,
        at=at,
        dataset_changed=changed,
        metrics=judgement.metrics,
        changes=judgement.changes,
        review=review_for(suite.review, judgement.outcome, run.trigger),
    )
    verdict = store.verdicts.get_verdict(verdict_id)
    assert verdict is not None
    return verdict


def auto_promote(store: RunsAndVerdicts, config: Catalog, run: Run, *, at: datetime) -> bool:
    """With ``baseline = "auto"``, make a succeeded scheduled run the baseline of its suite
    x model when it has none. True when ``run`` became the baseline."""
    suite = next((s for s in config.suites if s.name == run.suite), None)
    if suite is None or suite.baseline != "auto" or run.status != RunStatus.SUCCEEDED:
        return False
    if run.trigger != "schedule":
        return False
    promoted = store.verdicts.promote_baseline(
        run.id,
        by="auto",
        reason='baseline = "auto": the first succeeded run',
        at=at,
        only_if_none=True,
    )
    return promoted is not None


def _tier_name(tier: str) -> str:
    return f"tier {tier!r}" if tier else "no tier"


def _reference(store: RunsAndVerdicts, run_id: int, source: str) -> Reference:
    run = store.runs.get_run(run_id)
    if run is None:  # the runs table keeps baselines (no cascade); only a manual delete
        raise VerdictError(f"{source} is run {run_id}, which no longer exists")
    return Reference(run, source)


def _suite(config: Catalog, name: str) -> SuiteConfig:
    for suite in config.suites:
        if suite.name == name:
            return suite
    raise VerdictError(f"suite {name!r} is not in the configuration")


def _model(config: Catalog, name: str) -> AnyModelConfig | None:
    return next((m for m in config.models if m.name == name), None)


def _role(config: Catalog, name: str) -> str:
    model = _model(config, name)
    return model.role if model is not None else "candidate"


def _price(model: AnyModelConfig | None) -> Price | None:
    if model is None or model.price is None:
        return None
    price = model.price
    return Price(price.prompt, price.completion, price.per_tokens, price.currency)
