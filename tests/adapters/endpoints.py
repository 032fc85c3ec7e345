"""A fake model endpoint that speaks every protocol, with scripted faults.

One FastAPI app serves the ``http`` (``POST /predict``, or ``GET /predict?x=``),
``openai`` (``/v1/chat/completions``, ``/v1/completions``), ``mlflow`` (``/invocations``)
and ``kserve-v2`` (``/v2/models/{name}/infer``) protocols over the same toy model:
``x >= 0`` is ``"pos"``, otherwise ``"neg"``. Tests push faults onto ``Endpoint.faults``;
each request takes the next one (or none) before it is answered, and every request is
recorded.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gzip
import math
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from tests.servers import serve_in_thread


def label(x: float) -> str:
    return "pos" if x >= 0 else "neg"


def proba(x: float) -> float:
    return round(1 / (1 + math.exp(-x)), 6)


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: Any
    at: float = field(default_factory=time.monotonic)


@dataclass
class Endpoint:
    """The running server: its base URL, the fault script and what it received."""

    url: str = ""
    faults: collections.deque[str] = field(default_factory=collections.deque)
    requests: list[Recorded] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    in_flight: int = 0
    peak: int = 0

    def script(self, *faults: str) -> None:
        self.faults.extend(faults)


async def _fault(endpoint: Endpoint) -> Response | None:
    """Apply the next scripted fault: ``"500"``, ``"429:N"`` (Retry-After N seconds),
    ``"429-date"``, ``"slow:S"``, ``"truncated"`` or ``"schema"``."""
    try:
        fault = endpoint.faults.popleft()
    except IndexError:
        return None
    if fault == "500":
        return Response("internal error", status_code=500)
    if fault == "400":
        return Response("bad input", status_code=400)
    if fault.startswith("429"):
        after = fault.partition(":")[2]
        headers = {"Retry-After": after} if after else {}
        return Response("slow down", status_code=429, headers=headers)
    if fault.startswith("slow:"):
        await asyncio.sleep(float(fault.partition(":")[2]))
        return None
    if fault == "truncated":
        return Response('{"prediction": "po', media_type="application/json")
    if fault == "schema":
        return JSONResponse({"unexpected": True})
    raise AssertionError(f"unknown fault {fault!r}")


def create_app(endpoint: Endpoint) -> FastAPI:
    app = FastAPI()

    @app.middleware("http")
    async def record(request: Request, call_next: Any) -> Response:
        body = await request.json() if await request.body() else None
        with endpoint.lock:
            endpoint.requests.append(Recorded(request.url.path, dict(request.headers), body))
            endpoint.in_flight += 1
            endpoint.peak = max(endpoint.peak, endpoint.in_flight)
        try:
            fault = await _fault(endpoint)
            if fault is not None:
                return fault
            response: Response = await call_next(request)
            return response
        finally:
            with endpoint.lock:
                endpoint.in_flight -= 1

    @app.post("/predict")
    async def predict(body: dict[str, Any]) -> dict[str, Any]:
        x = body["x"]
        return {"prediction": label(x), "proba": {"pos": proba(x)}}

    @app.get("/predict")
    async def predict_query(x: float) -> dict[str, Any]:
        return {"prediction": label(x), "proba": {"pos": proba(x)}}

    @app.post("/v1/chat/completions")
    async def chat(body: dict[str, Any]) -> dict[str, Any]:
        text = body["messages"][-1]["content"]
        return {
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text.upper()}}],
            "usage": {"prompt_tokens": len(text.split()), "completion_tokens": 1},
        }

    @app.post("/v1/completions")
    async def completions(body: dict[str, Any]) -> dict[str, Any]:
        return {
            "choices": [{"index": 0, "text": body["prompt"][::-1]}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
        }

    @app.post("/invocations")
    async def invocations(body: dict[str, Any]) -> dict[str, Any]:
        if "dataframe_split" in body:
            split = body["dataframe_split"]
            xs = [row[split["columns"].index("x")] for row in split["data"]]
        else:
            xs = [row["x"] if isinstance(row, dict) else row for row in body["inputs"]]
        if any(x == 999 for x in xs):  # a model that drops a row
            xs = xs[1:]
        return {"predictions": [{"label": label(x), "p": proba(x)} for x in xs]}

    @app.post("/v2/models/{name}/infer")
    @app.post("/v2/models/{name}/versions/{version}/infer")
    async def infer(name: str, body: dict[str, Any]) -> dict[str, Any]:
        tensor = body["inputs"][0]
        batch, width = tensor["shape"][0], tensor["shape"][1] if len(tensor["shape"]) > 1 else 1
        rows = [tensor["data"][i * width : (i + 1) * width] for i in range(batch)]
        sums = [sum(r) for r in rows]
        return {
            "model_name": name,
            "outputs": [
                {
                    "name": "label",
                    "datatype": "BYTES",
                    "shape": [batch],
                    "data": [label(s) for s in sums],
                },
                {
                    "name": "proba",
                    "datatype": "FP32",
                    "shape": [batch, 2],
                    "data": [v for s in sums for v in (1 - proba(s), proba(s))],
                },
            ],
        }

    return app


@contextlib.contextmanager
def running_endpoint() -> Iterator[Endpoint]:
    endpoint = Endpoint()
    with serve_in_thread(create_app(endpoint)) as url:
        endpoint.url = url
        yield endpoint


class RawServer:
    """A raw asyncio server for faults an ASGI app cannot produce. ``close`` also ends
    handlers still running, so nothing outlives the test's event loop."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.AbstractServer | None = None
        self.url = ""

    async def start(self) -> RawServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.append(writer)
        try:
            await self._handle(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._tasks.discard(task)

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for writer in self._writers:
            writer.close()
        await self._server.wait_closed()


async def reset_server() -> RawServer:
    """Reads the request, starts an answer, then resets the connection."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 80\r\n\r\n{"pre'
        )
        await writer.drain()
        writer.transport.abort()  # RST, not a clean close

    return await RawServer(handle).start()


async def trickle_server(gap: float) -> RawServer:
    """An answer that arrives one byte every ``gap`` seconds: every read is quick, the
    whole answer is not."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        body = b'{"prediction": "pos", "padding": "xxxxxxxxxx"}'
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body))
        for byte in body:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(gap)

    return await RawServer(handle).start()


@contextlib.asynccontextmanager
async def raw_server(handle: Any) -> AsyncIterator[RawServer]:
    """A ``RawServer`` running ``handle`` for the block."""
    server = await RawServer(handle).start()
    try:
        yield server
    finally:
        await server.close()


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """Read one request (its body by ``Content-Length``); its head."""
    head = await reader.readuntil(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            await reader.readexactly(int(line.split(b":")[1]))
    return head


def gzip_answer(document: bytes) -> Any:
    """A handler that answers one request with ``document`` gzip-compressed."""
    body = gzip.compress(document)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s"
            % (len(body), body)
        )
        await writer.drain()

    return handle
