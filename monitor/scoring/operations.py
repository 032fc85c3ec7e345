"""Operational metrics of a run: client-side latency percentiles, error rate, throughput,
tokens and cost. Pure: the runner feeds it numbers as requests complete.

Latencies are kept as 8-byte floats (one per request), never as result objects. Cost comes
from the model's price table; it is unknown (``None``), never 0, when the model has no
price or any answered request came back without a usage report.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass

import numpy as np

from monitor.records import RunOperations


@dataclass(frozen=True, slots=True)
class Price:
    """What tokens cost: ``prompt`` and ``completion`` per ``per_tokens`` tokens."""

    prompt: float
    completion: float
    per_tokens: int
    currency: str


class OperationsRecorder:
    """Accumulates request outcomes for one run."""

    def __init__(self, price: Price | None) -> None:
        self._price = price
        self._latencies = array("d")
        self.cases = 0
        self.errors = 0
        self._prompt = 0
        self._completion = 0
        self._usage_missing = False

    def request(
        self, latency_seconds: float, prompt_tokens: int | None, completion_tokens: int | None
    ) -> None:
        """One answered request."""
        self._latencies.append(latency_seconds)
        if prompt_tokens is None or completion_tokens is None:
            self._usage_missing = True
        else:
            self._prompt += prompt_tokens
            self._completion += completion_tokens

    def case(self, *, failed: bool) -> None:
        """One case accounted for, answered or failed."""
        self.cases += 1
        self.errors += int(failed)

    def summary(self, wall_seconds: float) -> RunOperations:
        """The run's operational metrics; ``throughput`` is answered requests per second
        of wall time."""
        p50 = p90 = p95 = p99 = None
        if self._latencies:
            values = np.frombuffer(self._latencies, dtype=np.float64)
            p50, p90, p95, p99 = (float(v) for v in np.percentile(values, [50, 90, 95, 99]))
        known = bool(self._latencies) and not self._usage_missing
        prompt = self._prompt if known else None
        completion = self._completion if known else None
        cost = None
        if self._price is not None and prompt is not None and completion is not None:
            price = self._price
            cost = (prompt * price.prompt + completion * price.completion) / price.per_tokens
        return RunOperations(
            latency_p50=p50,
            latency_p90=p90,
            latency_p95=p95,
            latency_p99=p99,
            error_rate=self.errors / self.cases if self.cases else None,
            throughput=len(self._latencies) / wall_seconds if wall_seconds > 0 else None,
            prompt_tokens=prompt,
            completion_tokens=completion,
            cost=cost,
            currency=self._price.currency if self._price is not None else None,
        )
