"""The verdict in words: the status word, the headline and one sentence saying why.

Shared by the report's ``summary`` line and its Markdown, so the terminal and the pull
request say the same thing. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence

from monitor.wire.runs import RunOut
from monitor.wire.verdicts import MetricComparisonOut, VerdictOut

# Emoji-free status words, one per outcome.
WORDS = {
    "pass": "Pass",
    "improved": "Improved",
    "inconclusive": "Inconclusive",
    "regressed": "Regressed",
}
_NAMES_SHOWN = 5


def word(outcome: str) -> str:
    """The status word of an outcome (a report read from a newer daemon may carry one this
    version does not know: it is shown as it is)."""
    return WORDS.get(outcome, outcome.capitalize())


def headline(verdict: VerdictOut, baseline: RunOut) -> str:
    """``qa on model-x vs baseline run 12`` (naming the baseline's model when a candidate is
    judged against another model's baseline, and the tier when the runs are of one:
    ``qa on model-x, tier smoke, vs ...``)."""
    of = f" of {baseline.model}" if baseline.model != verdict.model else ""
    tier = f", tier {baseline.tier}," if baseline.tier else ""
    return f"{verdict.suite} on {verdict.model}{tier} vs baseline run {baseline.id}{of}"


def review_note(verdict: VerdictOut) -> str:
    """What the review says, in one sentence; empty when the suite asks for none."""
    if verdict.review is None:
        return ""
    if verdict.review == "needs_review":
        return (
            f"Needs review: approve or reject it with `monitor review approve|reject"
            f" {verdict.run_id} --reason ...` or POST /v1/verdicts/{verdict.id}/review."
        )
    why = f": {verdict.review_reason}" if verdict.review_reason else ""
    return f"{verdict.review.capitalize()} by {verdict.reviewed_by}{why}."


def label(m: MetricComparisonOut) -> str:
    """``f1-score``, or ``f1-score [topic=history]`` for a slice."""
    return f"{m.metric} [{m.slice}]" if m.slice else m.metric


def detail(verdict: VerdictOut) -> str:
    """Why the verdict is what it is, in one sentence; the verdict's own reason when no
    comparison carries its outcome."""
    rows, total = verdict.metrics, len(verdict.metrics)
    chosen = [m for m in rows if m.outcome == verdict.outcome]
    if verdict.outcome == "pass":
        if total == 1:
            return "The comparison is within tolerance."
        return f"All {total} comparisons within tolerance." if total else verdict.reason
    if not chosen:
        return verdict.reason
    if verdict.outcome == "regressed":
        return f"{len(chosen)} of {total} comparisons regressed: {_names(chosen)}."
    if verdict.outcome == "improved":
        return f"{len(chosen)} of {total} comparisons improved, none regressed: {_names(chosen)}."
    return _inconclusive(chosen, total)


def _names(rows: Sequence[MetricComparisonOut]) -> str:
    shown = ", ".join(label(m) for m in rows[:_NAMES_SHOWN])
    more = len(rows) - _NAMES_SHOWN
    return f"{shown} and {more} more" if more > 0 else shown


def _inconclusive(rows: Sequence[MetricComparisonOut], total: int) -> str:
    """Says how many paired cases would settle the most demanding comparison."""
    text = f"{len(rows)} of {total} comparisons cannot tell a drop from noise yet: {_names(rows)}."
    sized = [m for m in rows if m.cases_needed is not None]
    if sized:
        most = max(sized, key=lambda m: m.cases_needed or 0)
        text += (
            f" About {most.cases_needed:,} paired cases would tell ({label(most)} has {most.n:,})."
        )
    return text
