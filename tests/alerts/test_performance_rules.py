"""The ``performance`` and ``fairness`` rules on stream window events (pure)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from monitor.alerts import AlertState, evaluate
from monitor.alerts.events import MetricJudged, PerformanceReady
from monitor.alerts.rules import observe
from monitor.config.alerts import RuleConfig

T0 = datetime(2026, 12, 2, tzinfo=UTC)


def event(
    *, worse: bool, latest: bool = True, dpd: float = 0.05, window: str = "rows:0-200"
) -> PerformanceReady:
    accuracy = MetricJudged(
        "accuracy",
        0.9,
        0.7 if worse else 0.89,
        -0.2 if worse else -0.01,
        "fisher-exact",
        0.001 if worse else 0.6,
        worse,
    )
    f1 = MetricJudged("f1", 0.9, 0.88, -0.02, None, None, False)
    return PerformanceReady(
        stream="wine",
        window_key=window,
        at=T0,
        state="provisional",
        n_labelled=180,
        labelled_share=0.9,
        latest=latest,
        baseline="reference",
        metrics=(accuracy, f1),
        report_id=7,
        fairness=(("demographic_parity_difference", dpd), ("demographic_parity_ratio", 0.7)),
    )


def rule(**keys: object) -> RuleConfig:
    return RuleConfig.model_validate({"name": "r", **keys})


def test_a_window_judged_worse_fires_and_a_recovered_one_resolves() -> None:
    (fired,) = observe(rule(kind="performance", stream="wine"), event(worse=True))
    assert fired.active and fired.labels["stream"] == "wine"
    assert "accuracy 0.9 -> 0.7" in fired.summary and "fisher-exact p=0.001" in fired.summary
    assert fired.links == {"drift_report": "/v1/drift/7"}
    (calm,) = observe(rule(kind="performance"), event(worse=False))
    assert not calm.active and "not worse than the reference" in calm.summary


def test_only_watched_metrics_and_only_the_newest_window_count() -> None:
    assert observe(rule(kind="performance", metrics=["f1"]), event(worse=True))[0].active is False
    assert observe(rule(kind="performance"), event(worse=False, latest=False)) == []
    assert observe(rule(kind="performance", stream="other"), event(worse=True)) == []


def test_for_counts_windows_not_the_rescorings_of_one_window() -> None:
    """One window judged worse, re-scored as its labels arrive, is one window: ``for = 3``
    stays pending through its re-scorings and fires on the third window in a row."""
    rules = (rule(kind="performance", **{"for": 3}),)
    states: dict[str, AlertState] = {}

    def feed(e: PerformanceReady) -> list[str]:
        sent = []
        for t in evaluate(rules, states, e):
            states[t.state.fingerprint] = t.state
            sent += [t.notify] if t.notify else []
        return sent

    for _ in range(4):  # provisional, more labels, all labels, final
        assert feed(event(worse=True, window="rows:0-200")) == []
    assert [s.count for s in states.values()] == [1]
    assert feed(event(worse=True, window="rows:200-400")) == []
    assert feed(replace(event(worse=True, window="rows:200-400"), state="final")) == []
    assert feed(event(worse=True, window="rows:400-600")) == ["firing"]
    assert feed(event(worse=False, window="rows:600-800")) == ["resolved"]


def test_a_fairness_measure_beyond_its_limit_fires() -> None:
    limit = rule(kind="fairness", value=0.1)
    assert not observe(limit, event(worse=False, dpd=0.05))[0].active
    (fired,) = observe(limit, event(worse=False, dpd=0.2))
    assert fired.active and fired.labels["measure"] == "demographic_parity_difference"
    ratio = rule(kind="fairness", metric="demographic_parity_ratio", value=0.8)
    assert observe(ratio, event(worse=False))[0].active  # 0.7 < 0.8: a ratio is bad below


def test_a_fairness_rule_names_a_known_measure_and_a_limit() -> None:
    with pytest.raises(ValidationError, match="not a fairness measure"):
        rule(kind="fairness", metric="accuracy", value=0.1)
    with pytest.raises(ValidationError, match="needs 'value'"):
        rule(kind="fairness")
