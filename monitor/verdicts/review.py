"""Which verdicts wait for a person: a suite's ``review`` policy applied to one verdict.

Pure: no I/O. A review gates a release decision, so it applies to the verdicts of runs a
pipeline asked for (``monitor gate``, locally or through ``POST /v1/runs``); the
daemon's scheduled runs watch what already serves and are never held for approval.

- ``never`` (the default): no verdict waits;
- ``on-regression``: a ``regressed`` verdict waits, any other passes as usual;
- ``always``: every verdict waits, whatever its outcome.
"""

from __future__ import annotations

from typing import Literal

from monitor.records import Review

__all__ = ["REVIEWED_TRIGGERS", "ReviewPolicy", "review_for"]

ReviewPolicy = Literal["never", "on-regression", "always"]

REVIEWED_TRIGGERS = frozenset({"gate", "api"})
"""The run triggers whose verdicts a policy holds for review."""


def review_for(policy: ReviewPolicy, outcome: str, trigger: str) -> Review | None:
    """``NEEDS_REVIEW`` when ``policy`` holds a verdict of ``outcome`` on a run started by
    ``trigger`` for a person's decision, else None."""
    if trigger not in REVIEWED_TRIGGERS or policy == "never":
        return None
    if policy == "always" or outcome == "regressed":
        return Review.NEEDS_REVIEW
    return None
