"""MLflow scoring servers: ``POST /invocations``, several cases per request.

Each case becomes one row (its ``columns`` fields); a ``MicroBatcher`` packs up to
``batch_size`` rows into one ``dataframe_split`` or ``inputs`` payload, and the answer's
``predictions`` list is handed back row by row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx
import jmespath

from monitor.adapters.base import Adapter, Prediction, join_url
from monitor.adapters.batching import MicroBatcher
from monitor.adapters.http import search
from monitor.adapters.observer import NO_OBSERVER, RequestObserver
from monitor.adapters.transport import Timing
from monitor.config import MlflowModelConfig
from monitor.errors import AdapterError
from monitor.records import Case


class MlflowAdapter(Adapter):
    """An MLflow model server: ``adapter = "mlflow"``."""

    config: MlflowModelConfig

    def __init__(
        self,
        config: MlflowModelConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timing: Timing | None = None,
        observer: RequestObserver = NO_OBSERVER,
    ) -> None:
        super().__init__(config, transport=transport, timing=timing, observer=observer)
        self._url = join_url(config.url, "invocations")
        self._predictions = jmespath.compile(config.predictions)
        self._prediction = jmespath.compile(config.prediction) if config.prediction else None
        self._scores = jmespath.compile(config.scores) if config.scores else None
        self._batcher: MicroBatcher[list[Any], Any] = MicroBatcher(
            self._send_batch, size=config.batch_size, linger=config.batch_linger.total_seconds()
        )

    def payload(self, rows: list[list[Any]]) -> dict[str, Any]:
        """The request body for ``rows`` (one list of column values per case)."""
        columns = list(self.config.columns)
        if self.config.format == "dataframe_split":
            return {"dataframe_split": {"columns": columns, "data": rows}}
        if len(columns) == 1:
            return {"inputs": [row[0] for row in rows]}
        return {"inputs": [dict(zip(columns, row, strict=True)) for row in rows]}

    async def _send_batch(self, rows: list[list[Any]]) -> tuple[Sequence[Any], float]:
        reply = await self._send("POST", self._url, json=self.payload(rows))
        answers = search(self._predictions, reply.body, "predictions")
        if not isinstance(answers, list):
            raise AdapterError(
                "bad_response", f"the answer's {self.config.predictions!r} is not a list"
            )
        return answers, reply.latency_seconds

    async def _predict(self, case: Case) -> Prediction:
        row = [case.inputs[column] for column in self.config.columns]
        answer, latency = await self._batcher.submit(row)
        value = (
            answer if self._prediction is None else search(self._prediction, answer, "prediction")
        )
        scores = None if self._scores is None else search(self._scores, answer, "scores")
        return Prediction(value, latency, scores=scores)

    async def aclose(self) -> None:
        await self._batcher.aclose()
        await super().aclose()
