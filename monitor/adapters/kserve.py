"""The Open Inference Protocol v2 (KServe, Triton, MLServer): ``/v2/models/{name}/infer``.

Each case fills every configured input tensor from one of its fields; a ``MicroBatcher``
stacks up to ``batch_size`` cases along a leading batch dimension. The answer's output
tensor is split back into one prediction per case.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import httpx

from monitor.adapters.base import Adapter, Prediction, join_url
from monitor.adapters.batching import MicroBatcher
from monitor.adapters.observer import NO_OBSERVER, RequestObserver
from monitor.adapters.transport import Timing
from monitor.config import KServeModelConfig, TensorConfig
from monitor.errors import AdapterError
from monitor.records import Case

# One case's tensors: per input, its shape (without the batch dimension) and flat data.
Row = tuple[tuple[tuple[int, ...], list[Any]], ...]
# One case's answer: the prediction tensor's slice and the scores tensor's slice (or None).
Answer = tuple[Any, Any]


def flatten(value: Any) -> tuple[tuple[int, ...], list[Any]]:
    """The shape and row-major data of a scalar or a (nested, rectangular) list."""
    if not isinstance(value, list):
        return (), [value]
    parts = [flatten(v) for v in value]
    shapes = {shape for shape, _ in parts}
    if len(shapes) > 1:
        raise AdapterError("bad_request", "a tensor field holds a ragged (non-rectangular) list")
    inner = shapes.pop() if shapes else ()
    return (len(value), *inner), [x for _, data in parts for x in data]


def unflatten(data: list[Any], shape: Sequence[int]) -> Any:
    """Row-major ``data`` nested into ``shape`` (a scalar for the empty shape)."""
    if not shape:
        return data[0]
    step = len(data) // shape[0] if shape[0] else 0
    return [unflatten(data[i * step : (i + 1) * step], shape[1:]) for i in range(shape[0])]


class KServeAdapter(Adapter):
    """An Open Inference Protocol v2 model: ``adapter = "kserve-v2"``."""

    config: KServeModelConfig

    def __init__(
        self,
        config: KServeModelConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timing: Timing | None = None,
        observer: RequestObserver = NO_OBSERVER,
    ) -> None:
        super().__init__(config, transport=transport, timing=timing, observer=observer)
        version = f"/versions/{config.version}" if config.version else ""
        self._url = join_url(config.url, f"v2/models/{config.model}{version}/infer")
        self._batcher: MicroBatcher[Row, Answer] = MicroBatcher(
            self._send_batch, size=config.batch_size, linger=config.batch_linger.total_seconds()
        )

    def row(self, case: Case) -> Row:
        """Every input tensor of ``case``, checked against its configured shape."""
        return tuple(_tensor(spec, case.inputs[spec.field]) for spec in self.config.inputs)

    def payload(self, rows: list[Row]) -> dict[str, Any]:
        """The infer request for a batch of rows."""
        inputs = []
        for i, spec in enumerate(self.config.inputs):
            shapes = {row[i][0] for row in rows}
            if len(shapes) > 1:
                raise AdapterError(
                    "bad_request",
                    f"input {spec.name!r}: cases in one batch have different shapes;"
                    " set its shape in the config",
                )
            data = [x for row in rows for x in row[i][1]]
            shape = [len(rows), *shapes.pop()]
            inputs.append(
                {"name": spec.name, "shape": shape, "datatype": spec.datatype, "data": data}
            )
        return {"inputs": inputs}

    async def _send_batch(self, rows: list[Row]) -> tuple[Sequence[Answer], float]:
        reply = await self._send("POST", self._url, json=self.payload(rows))
        outputs = reply.body.get("outputs") if isinstance(reply.body, dict) else None
        if not isinstance(outputs, list) or not outputs:
            raise AdapterError("bad_response", "the answer has no 'outputs' list")
        predictions = _split(_output(outputs, self.config.output), len(rows))
        if self.config.scores_output is None:
            return [(p, None) for p in predictions], reply.latency_seconds
        scores = _split(_output(outputs, self.config.scores_output), len(rows))
        return list(zip(predictions, scores, strict=True)), reply.latency_seconds

    async def _predict(self, case: Case) -> Prediction:
        (value, scores), latency = await self._batcher.submit(self.row(case))
        return Prediction(value, latency, scores=scores)

    async def aclose(self) -> None:
        await self._batcher.aclose()
        await super().aclose()


def _tensor(spec: TensorConfig, value: Any) -> tuple[tuple[int, ...], list[Any]]:
    shape, data = flatten(value)
    if spec.shape is not None:
        if math.prod(spec.shape) != len(data):
            raise AdapterError(
                "bad_request",
                f"input {spec.name!r}: field {spec.field!r} holds {len(data)} values,"
                f" shape {list(spec.shape)} needs {math.prod(spec.shape)}",
            )
        shape = spec.shape
    return shape, data


def _output(outputs: list[Any], name: str | None) -> dict[str, Any]:
    """The output tensor called ``name`` (the first when ``name`` is None)."""
    for output in outputs:
        if isinstance(output, dict) and (name is None or output.get("name") == name):
            return output
    raise AdapterError("bad_response", f"the answer has no output tensor {name!r}")


def _split(output: dict[str, Any], batch: int) -> list[Any]:
    """An output tensor cut into per-case values along its batch dimension. A batch
    dimension other than the number of cases sent is ``bad_response``."""
    shape, data = output.get("shape"), output.get("data")
    if not isinstance(shape, list) or not shape or not all(isinstance(n, int) for n in shape):
        raise AdapterError("bad_response", "an output tensor has no valid 'shape'")
    if not isinstance(data, list):
        raise AdapterError("bad_response", "an output tensor has no 'data' list")
    _, flat = flatten(data)  # some servers nest the data; the protocol flattens it
    if len(flat) != math.prod(shape):
        raise AdapterError(
            "bad_response", f"an output tensor of shape {shape} holds {len(flat)} values"
        )
    if shape[0] != batch:
        raise AdapterError(
            "bad_response", f"the answer holds {shape[0]} predictions for a batch of {batch} rows"
        )
    return list(unflatten(flat, shape))
