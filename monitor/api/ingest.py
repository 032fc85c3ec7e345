"""What the ingest routes need besides parsing: a bound on batches in flight, the
``Idempotency-Key`` header, and reading a body into a ``BatchParser`` as it arrives.

A batch in flight holds its Arrow columns (and, for CSV and Parquet, its file) until it
is stored, so each ingest stream admits ``max_in_flight`` batches at once; one more is
answered ``429`` with ``Retry-After`` before a byte of its body is read. The parse runs in
worker threads, a megabyte at a time, so a large batch never stalls the event loop.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import anyio.to_thread
from fastapi import HTTPException, Request

from monitor.streams.batch import BatchParser

__all__ = ["FEED_BYTES", "RETRY_AFTER_S", "InFlight", "feed", "idempotency_key"]

RETRY_AFTER_S = 1
"""The ``Retry-After`` of a 429 or 503 answer: batches are stored in well under a second."""

FEED_BYTES = 1 << 20
"""Body bytes gathered before a worker thread parses them."""

# The draft's sf-string (quoted) or, as most clients send it, a bare token.
_KEY = re.compile(r'"?([\x21\x23-\x5b\x5d-\x7e]{1,200})"?')


class InFlight:
    """Counts batches in flight per stream. The event loop is the only caller, so a
    plain counter is race-free."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}

    @contextmanager
    def slot(self, stream: str, limit: int) -> Iterator[None]:
        """Hold one of ``limit`` slots of ``stream`` or raise 429."""
        count = self._counts.get(stream, 0)
        if count >= limit:
            raise HTTPException(
                429,
                detail=f"stream {stream!r} already has {limit} batch(es) in flight; retry later",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        self._counts[stream] = count + 1
        try:
            yield
        finally:
            self._counts[stream] -= 1

    def count(self, stream: str) -> int:
        return self._counts.get(stream, 0)


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
