"""A fast HTTP/1.1 transport for httpx: asyncio protocol, ``httptools`` parser, O(1) pool.

It is an ``httpx.AsyncBaseTransport`` (``httpx.Request`` in, ``httpx.Response`` out), and
has a faster form for the model adapters, ``exchange``: request bytes in, a whole
``Answer`` out, with no httpx objects built on the way. httpx's default
transport (httpcore over anyio, with h11 in pure Python) spends most of a loopback
request's client time in its own machinery and scans its whole pool for every request, so
at concurrency 64 the client, not the model, set the pace (see ``docs/benchmarks.md``).

- ``connection``: one connection, an ``asyncio.Protocol`` feeding ``httptools``;
- ``pool``: idle connections per origin in deques, a FIFO queue when the pool is full;
- ``transport``: ``Http11Transport``, the ``httpx.AsyncBaseTransport`` over both.
"""

from __future__ import annotations

from monitor.adapters.http11.connection import Answer
from monitor.adapters.http11.transport import Http11Transport

__all__ = ["Answer", "Http11Transport"]
