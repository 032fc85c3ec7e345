"""CPU-bound metrics for the tests that show scoring does not hold the model's requests
nor reach their latency: one holds its worker until told to go on, one burns a set time
per case, one raises. They live in a module of their own (not a test module) because the
runner's scoring processes import it to unpickle them."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from monitor.scoring.base import Option, PerCaseMetric

PATIENCE = 60.0
"""Seconds the stalled case waits for its go-ahead before it gives up (and scores 0)."""


class Stall(PerCaseMetric):
    """Scores 1 for every case, but the case whose expected value is ``"stall"`` waits for
    the file ``go`` to exist first, burning CPU as a slow metric would: 1 when the file
    came, 0 when it never did. Registered by the tests that use it, for their duration."""

    name = "stall"
    tasks = frozenset({"text"})
    cpu_bound = True
    options: ClassVar[Mapping[str, Option]] = {"go": Option((str,), "")}

    def score_case(self, prediction: Any, expected: Any, scores: Any = None) -> float:
        if expected != "stall":
            return 1.0
        go, end = Path(self.settings["go"]), time.monotonic() + PATIENCE
        while time.monotonic() < end:
            if go.exists():
                return 1.0
            sum(range(10_000))  # busy, as scoring is: no sleep that would free the GIL
        return 0.0


class Boom(PerCaseMetric):
    """A CPU-bound metric with a bug: scoring the case whose expected value is ``"boom"``
    raises."""

    name = "boom"
    tasks = frozenset({"text"})
    cpu_bound = True

    def score_case(self, prediction: Any, expected: Any, scores: Any = None) -> float:
        if expected == "boom":
            raise RuntimeError("a bug in the metric")
        return 1.0


class Burn(PerCaseMetric):
    """A CPU-bound metric that burns ``seconds`` of CPU on every case (as ROUGE on a long
    text does) and scores 1."""

    name = "burn"
    tasks = frozenset({"text"})
    cpu_bound = True
    options: ClassVar[Mapping[str, Option]] = {"seconds": Option((float,), 0.1)}

    def score_case(self, prediction: Any, expected: Any, scores: Any = None) -> float:
        end = time.process_time() + float(self.settings["seconds"])
        while time.process_time() < end:
            sum(range(10_000))
        return 1.0
