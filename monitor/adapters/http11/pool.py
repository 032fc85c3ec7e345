"""Keep-alive connections per origin, with O(1) acquire and release.

httpcore's pool scans every connection for every queued request, so its cost per request
grows with the pool's size squared (encode/httpcore#1035). Here each origin has a deque of
idle connections: a request takes the most recently used one (its socket is the likeliest
to be alive), a finished request puts its connection back, and a request that finds the
pool full waits in a first-come, first-served queue to which a finishing request hands
its connection (or its slot) directly. Idle connections older than ``keepalive_expiry``
are closed when met, from the old end of the deque, so staleness never costs a scan.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ssl
import time
from collections.abc import Callable

import httpx

from monitor.adapters.http11.connection import Connection, Origin, open_connection

Timeouts = dict[str, float | None]


class ConnectionPool:
    """At most ``max_connections`` connections (open or opening) across all origins, of
    which at most ``max_keepalive`` are kept while idle."""

    def __init__(
        self,
        *,
        max_connections: int,
        max_keepalive: int,
        keepalive_expiry: float,
        ssl_context: ssl.SSLContext | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max = max_connections
        self._max_idle = max_keepalive
        self._expiry = keepalive_expiry
        self._ssl = ssl_context
        self._clock = clock
        self._idle: dict[Origin, collections.deque[Connection]] = {}
        self._idle_count = 0
        self._slots = 0  # connections open or being opened
        self._connections: set[Connection] = set()
        # Each waiter is handed an idle connection of its origin, or ``None``: a slot
        # counted for it, to open a connection with.
        self._waiters: collections.deque[tuple[Origin, asyncio.Future[Connection | None]]] = (
            collections.deque()
        )
        self._closed = False

    @property
    def open_connections(self) -> int:
        """Connections open or being opened (for tests and logs)."""
        return self._slots

    @property
    def idle_connections(self) -> int:
        return self._idle_count

    @property
    def connections(self) -> frozenset[Connection]:
        """The open connections, busy or idle."""
        return frozenset(self._connections)

    def take_idle(self, origin: Origin) -> Connection | None:
        """An idle connection to ``origin`` when one is free and nobody waits before us,
        without waiting: the common case, with no coroutine to run."""
        if self._closed or self._waiters:
            return None
        return self._take_idle(origin)

    async def acquire(self, origin: Origin, timeouts: Timeouts) -> Connection:
        """A connection to ``origin``: an idle one, a new one, or the first one freed.
        Raises ``httpx.PoolTimeout`` after ``timeouts["pool"]`` seconds of waiting."""
        if self._closed:
            raise RuntimeError("the connection pool is closed")
        if not self._waiters:
            connection = self._take_idle(origin)
            if connection is not None:
                return connection
            if self._slots < self._max or self._evict_idle():
                self._slots += 1
                return await self._open(origin, timeouts)
        handed = await self._queue(origin, timeouts.get("pool"))
        return handed if handed is not None else await self._open(origin, timeouts)

    async def reopen(self, connection: Connection, timeouts: Timeouts) -> Connection:
        """Close ``connection`` and open a fresh one to its origin in its slot."""
        connection.close()
        self._connections.discard(connection)
        return await self._open(connection.origin, timeouts)

    def release(self, connection: Connection) -> None:
        """Take ``connection`` back after its answer was read (or abandoned): reuse it, or
        close it and free its slot."""
        connection.finished()
        if not connection.reusable or self._closed:
            self.discard(connection)
            return
        connection.idle_since = now = self._clock()
        while self._waiters:
            origin, waiter = self._waiters.popleft()
            if waiter.done():
                continue
            if origin == connection.origin:
                waiter.set_result(connection)
                return
            self._waiters.appendleft((origin, waiter))
            self.discard(connection)  # a waiter for another origin needs the slot
            return
        idle = self._idle.setdefault(connection.origin, collections.deque())
        while idle and now - idle[0].idle_since >= self._expiry:
            self._drop_idle(idle.popleft())
        if self._idle_count >= self._max_idle:
            self.discard(connection)
            return
        idle.append(connection)
        self._idle_count += 1

    def discard(self, connection: Connection) -> None:
        """Close ``connection`` and pass its slot on."""
        connection.close()
        if connection in self._connections:
            self._connections.remove(connection)
            self._free_slot()

    async def aclose(self) -> None:
        """Close every connection; waiting requests fail with ``httpx.PoolTimeout``."""
        self._closed = True
        for connection in list(self._connections):
            connection.close()
        self._connections.clear()
        self._idle.clear()
        self._idle_count = self._slots = 0
        while self._waiters:
            _, waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(httpx.PoolTimeout("the connection pool was closed"))

    # -- internals ---------------------------------------------------------------------

    def _take_idle(self, origin: Origin) -> Connection | None:
        idle = self._idle.get(origin)
        if not idle:
            return None
        now = self._clock()
        while idle:
            connection = idle.pop()
            self._idle_count -= 1
            if connection.usable and now - connection.idle_since < self._expiry:
                return connection
            self.discard(connection)
        return None

    def _evict_idle(self) -> bool:
        """Close the oldest idle connection of any origin to make room; ``False`` if
        none is idle. The slot stays free for the caller to take."""
        for idle in self._idle.values():
            if idle:
                connection = idle.popleft()
                self._idle_count -= 1
                connection.close()
                self._connections.discard(connection)
                self._slots -= 1
                return True
        return False

    def _drop_idle(self, connection: Connection) -> None:
        self._idle_count -= 1
        self.discard(connection)

    async def _open(self, origin: Origin, timeouts: Timeouts) -> Connection:
        """Open a connection in a slot already counted for it."""
        try:
            tls = self._tls() if origin[0] == "https" else None
            connection = await open_connection(origin, tls, timeouts.get("connect"))
        except BaseException:
            self._free_slot()
            raise
        if self._closed:
            connection.close()
            raise RuntimeError("the connection pool is closed")
        self._connections.add(connection)
        return connection

    def _tls(self) -> ssl.SSLContext:
        # Made once, when first needed: loading the CA certificates takes tens of
        # milliseconds. httpx's own default (its CA bundle, ``SSL_CERT_FILE``).
        if self._ssl is None:
            self._ssl = httpx.create_ssl_context()
        return self._ssl

    def _free_slot(self) -> None:
        """A slot became free: hand it to the first waiter, or count it free."""
        while self._waiters:
            _, waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._slots -= 1

    async def _queue(self, origin: Origin, timeout: float | None) -> Connection | None:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Connection | None] = loop.create_future()
        entry = (origin, waiter)
        self._waiters.append(entry)
        timer = None if timeout is None else loop.call_later(timeout, _time_out, waiter, timeout)
        try:
            return await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._give_back(waiter.result())  # handed over while being cancelled
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(entry)
            raise
        finally:
            if timer is not None:
                timer.cancel()

    def _give_back(self, handed: Connection | None) -> None:
        if handed is None:
            self._free_slot()
        else:
            self.release(handed)


def _time_out(waiter: asyncio.Future[Connection | None], timeout: float) -> None:
    if not waiter.done():
        waiter.set_exception(httpx.PoolTimeout(f"no free connection within {timeout}s"))
