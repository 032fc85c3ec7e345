"""The ``divergence`` rule on a window's shadow comparison (pure): judged on the
interval, not the point value."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from monitor.alerts.events import DivergenceReady, divergence_event
from monitor.alerts.rules import observe
from monitor.config.alerts import RuleConfig
from monitor.records import DriftReport

T0 = datetime(2026, 12, 2, tzinfo=UTC)


def event(measure: str, value: float, lower: float, upper: float) -> DivergenceReady:
    return DivergenceReady(
        stream="wine",
        report_id=7,
        window_key="rows:0-200",
        at=T0,
        n_pairs=200,
        agreement=0.9,
        measure=measure,
        value=value,
        lower=lower,
        upper=upper,
        confidence=0.95,
    )


def rule(**keys: object) -> RuleConfig:
    return RuleConfig.model_validate({"name": "r", "kind": "divergence", **keys})


@pytest.mark.parametrize(
    ("measure", "value", "lower", "upper", "limit", "active"),
    [
        ("disagreement_share", 0.12, 0.11, 0.13, 0.10, True),
        ("disagreement_share", 0.12, 0.09, 0.15, 0.10, False),
        ("disagreement_share", 0.05, 0.03, 0.08, 0.10, False),
        ("mean_difference", 0.5, 0.3, 0.7, 0.2, True),
        ("mean_difference", -0.5, -0.7, -0.3, 0.2, True),
        ("mean_difference", 0.5, 0.1, 0.9, 0.2, False),
        ("mean_difference", 0.05, -0.1, 0.2, 0.0, False),
    ],
    ids=[
        "share-interval-above",
        "share-point-above-interval-straddles",
        "share-below",
        "mean-above",
        "mean-below-minus-limit",
        "mean-straddles",
        "zero-limit-straddles-zero",
    ],
)
def test_fires_only_when_the_whole_interval_is_beyond_the_limit(
    measure: str, value: float, lower: float, upper: float, limit: float, active: bool
) -> None:
    (seen,) = observe(rule(value=limit), event(measure, value, lower, upper))
    assert seen.active is active
    assert seen.labels["stream"] == "wine" and seen.labels["measure"] == measure
    assert seen.labels["rule_kind"] == "divergence"
    assert seen.details["interval"] == [lower, upper]
    assert seen.links == {"drift_report": "/v1/drift/7"}
    assert ("not beyond it" in seen.summary) is not active


def test_stream_and_measure_scope_the_rule() -> None:
    share = event("disagreement_share", 0.5, 0.4, 0.6)
    assert observe(rule(value=0.1, stream="other"), share) == []
    assert observe(rule(value=0.1, metric="mean_difference"), share) == []
    assert observe(rule(value=0.1, metric="disagreement_share", stream="wine"), share)[0].active


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({}, "needs 'value'"),
        ({"value": 0.1, "metric": "accuracy"}, "not a divergence measure"),
        ({"value": -0.1}, "at least 0"),
        ({"value": 1.0, "metric": "disagreement_share"}, "below 1"),
        ({"value": 0.1, "columns": ["x"]}, "does not take 'columns'"),
    ],
    ids=["no-limit", "unknown-measure", "negative", "share-of-one", "stray-key"],
)
def test_bad_rules_are_refused(keys: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        rule(**keys)


def report(shadow: dict[str, object] | None) -> DriftReport:
    return DriftReport(
        *(7, "wine", "rows:0-200", None, None, T0, "ok", 200, 0.0, False, (), None),
        shadow=shadow,
    )


def test_the_event_comes_from_a_judged_shadow_comparison_only() -> None:
    divergence = {"measure": "disagreement_share", "value": 0.1, "lower": 0.07, "upper": 0.14}
    ok = {"status": "ok", "n_pairs": 200, "agreement": 0.9, "confidence": 0.9}
    made = divergence_event(report({**ok, "divergence": divergence}))
    assert made is not None and (made.lower, made.upper, made.confidence) == (0.07, 0.14, 0.9)
    assert divergence_event(report(None)) is None
    assert divergence_event(report({"status": "insufficient_data", "divergence": None})) is None
