"""How long one request took on the wire: from its first byte sent to its answer's last
byte received, as the HTTP library saw them.

A run's latency is the endpoint's, so it must not hold what the client does around the
exchange: building httpx's request and response objects, waiting for a connection,
decoding JSON, and whatever else the event loop runs meanwhile. ``HttpClient`` sets an
``Exchange`` in ``CURRENT`` for each request; the library's own hooks, which run in the
request's task (or a task copied from it), stamp it:

- aiohttp (under httpx-aiohttp): a ``TraceConfig`` on the session. The first byte goes
  out with the first body chunk (aiohttp holds the headers back to send them together),
  or with the headers for a request without a body; the last byte is in when the
  answer's payload reaches its end (``StreamReader.on_eof``, called by the protocol as
  it parses the last byte, or at once when the whole answer came in before the request's
  task resumed).
- plain httpx: httpcore's ``trace`` extension, from ``send_request_headers.started`` of
  the request itself (a proxy tunnel's ``CONNECT`` comes first and is overwritten) to
  ``receive_response_body.complete``.

Connecting, the TLS handshake and a proxy's ``CONNECT`` come before the first byte and
are not counted. When no hook fired (an injected test transport, a request that failed
before its answer) ``seconds`` is ``None`` and the caller times the call instead.
"""

from __future__ import annotations

import contextvars
import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import aiohttp


@dataclass(slots=True)
class Exchange:
    """One request's wire times (``time.perf_counter`` seconds)."""

    sent: float | None = None
    received: float | None = None
    # Headers written, first body chunk not yet: aiohttp sends both together.
    headers_only: bool = False

    @property
    def seconds(self) -> float | None:
        """First byte sent to last byte received, if both were seen."""
        if self.sent is None or self.received is None:
            return None
        return self.received - self.sent

    def mark_received(self) -> None:
        self.received = time.perf_counter()

    async def httpx_trace(self, event: str, info: dict[str, Any]) -> None:
        """httpcore's ``trace`` extension."""
        if event == "http11.send_request_headers.started":
            self.sent, self.received = time.perf_counter(), None
        elif event == "http11.receive_response_body.complete":
            self.received = time.perf_counter()


CURRENT: contextvars.ContextVar[Exchange | None] = contextvars.ContextVar(
    "monitor_exchange", default=None
)


async def _headers_sent(
    session: aiohttp.ClientSession,
    context: SimpleNamespace,
    params: aiohttp.TraceRequestHeadersSentParams,
) -> None:
    exchange = CURRENT.get()
    if exchange is not None:
        exchange.sent, exchange.received, exchange.headers_only = time.perf_counter(), None, True


async def _chunk_sent(
    session: aiohttp.ClientSession,
    context: SimpleNamespace,
    params: aiohttp.TraceRequestChunkSentParams,
) -> None:
    exchange = CURRENT.get()
    if exchange is not None and exchange.headers_only:
        exchange.sent, exchange.headers_only = time.perf_counter(), False


async def _request_end(
    session: aiohttp.ClientSession,
    context: SimpleNamespace,
    params: aiohttp.TraceRequestEndParams,
) -> None:
    exchange = CURRENT.get()
    if exchange is not None:
        # Called by the protocol when the payload's last byte is parsed, or right away
        # when it already was.
        params.response.content.on_eof(exchange.mark_received)


def aiohttp_trace() -> aiohttp.TraceConfig:
    """The hooks that stamp ``CURRENT``'s exchange, for one ``aiohttp.ClientSession``."""
    trace = aiohttp.TraceConfig()
    trace.on_request_headers_sent.append(_headers_sent)
    trace.on_request_chunk_sent.append(_chunk_sent)
    trace.on_request_end.append(_request_end)
    return trace
