"""What the ingest routes need besides parsing: a bound on batches in flight, the
``Idempotency-Key`` header, and reading a body into a ``BatchParser`` as it arrives.

A batch in flight holds its Arrow columns (and, for CSV and Parquet, its file) until it
is stored, about twice its body at most, so each ingest stream admits ``max_in_flight``
batches and ``max_in_flight_bytes`` of their bodies at once; one more is answered ``429``
with ``Retry-After`` before a byte of its body is read. Many small batches pass the byte
bound together, a few large ones do not. The parse runs in
worker threads, a megabyte at a time, so a large batch never stalls the event loop.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import anyio.to_thread
from fastapi import HTTPException, Request

from monitor.streams.batch import BatchParser

__all__ = [
    "FEED_BYTES",
    "RETRY_AFTER_S",
    "InFlight",
    "feed",
    "idempotency_key",
    "reserved_size",
]

RETRY_AFTER_S = 1
"""The ``Retry-After`` of a 429 or 503 answer: batches are stored in well under a second."""

FEED_BYTES = 1 << 20
"""Body bytes gathered before a worker thread parses them."""

# The draft's sf-string (quoted) or, as most clients send it, a bare token.
_KEY = re.compile(r'"?([\x21\x23-\x5b\x5d-\x7e]{1,200})"?')


class InFlight:
    """Counts the batches of each stream in flight and the body bytes they reserved. The
    event loop is the only caller, so plain counters are race-free."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self._bytes: dict[str, int] = {}

    @contextmanager
    def slot(self, stream: str, *, limit: int, byte_limit: int, size: int) -> Iterator[None]:
        """Hold one of ``limit`` slots of ``stream`` and ``size`` of its ``byte_limit``
        body bytes, or raise 429. A stream with nothing in flight always admits one
        batch, so a body as large as the body limit is never refused for its size."""
        count, held = self._counts.get(stream, 0), self._bytes.get(stream, 0)
        if count >= limit or (count and held + size > byte_limit):
            raise HTTPException(
                429,
                detail=f"stream {stream!r} already has {count} batch(es) in flight "
                f"({held} body bytes); retry later",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        self._counts[stream], self._bytes[stream] = count + 1, held + size
        try:
            yield
        finally:
            self._counts[stream] -= 1
            self._bytes[stream] -= size

    def count(self, stream: str) -> int:
        return self._counts.get(stream, 0)


def reserved_size(request: Request, limit: int) -> int:
    """The body bytes a request reserves: its ``Content-Length`` (``BodyLimit`` has
    refused one over the limit), or the whole limit for a chunked body."""
    declared = request.headers.get("content-length", "")
    return min(int(declared), limit) if declared.isdigit() else limit


def idempotency_key(request: Request) -> str | None:
    """The request's ``Idempotency-Key``, or ``None``; 400 for a malformed one."""
    value = request.headers.get("idempotency-key")
    if value is None:
        return None
    match = _KEY.fullmatch(value.strip())
    if match is None:
        raise HTTPException(
            400,
            detail="Idempotency-Key must be 1-200 visible ASCII characters "
            "(a UUID is typical), optionally in double quotes",
        )
    return match.group(1)


async def feed(request: Request, parser: BatchParser) -> bytes:
    """Stream the body into ``parser`` a megabyte at a time, in worker threads; return
    the last, unfed piece (under a megabyte), for the caller's final thread hop."""
    pending = bytearray()
    async for chunk in request.stream():
        pending += chunk
        if len(pending) >= FEED_BYTES:
            piece = bytes(pending)
            pending.clear()
            await anyio.to_thread.run_sync(parser.feed, piece)
    return bytes(pending)
