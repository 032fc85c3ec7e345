"""What keeps slow or numerous HTTP clients from taking the daemon down with them.

uvicorn has no timeout on receiving a request: its keep-alive timer only runs between
requests and is reset by every byte, so a client that sends one header byte every few
seconds holds a connection (and a file descriptor) for ever, and a thousand of them exhaust
the process's descriptors: scheduled runs then fail to connect to their models (uvicorn
issue 157, open since 2018). The daemon therefore serves HTTP through uvicorn's own httptools
protocol with three additions, all from the parser's own callbacks:

- **header deadline**: the request line and headers must arrive within ``header_timeout``
  of the connection opening or of the request's first byte, else the connection is closed;
- **body deadline**: the body must arrive within ``body_timeout`` of the headers;
- **connection cap**: a connection beyond ``max_connections`` open ones is closed at once,
  before anything is read. The cap is lowered at start so that ``fd_reserve`` descriptors
  always stay free for the scheduler (model connections, the store, files), and the soft
  open-files limit is first raised to the hard one. The listen backlog, which is also how
  many connections asyncio accepts in one go before the protocol sees any, is kept within
  half the reserve (``monitor.daemon.serving``).

asyncio logs "socket.accept() out of system resource" each time accepting fails, which
under such a flood is hundreds of lines a second; ``quiet_accept_errors`` logs it once a
minute with a count. Refusals are counted in ``GuardCounts`` and logged the same way.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

logger = logging.getLogger(__name__)

__all__ = [
    "GuardCounts",
    "HttpLimits",
    "guarded_protocol",
    "quiet_accept_errors",
    "raise_open_files_limit",
]

# Refusals and accept errors are logged at most once per this many seconds each.
LOG_INTERVAL = 60.0


@dataclass(frozen=True)
class HttpLimits:
    """The limits of one HTTP server. ``max_connections`` is the effective cap, already
    lowered to what the open-files limit allows (see ``for_descriptors``)."""

    header_timeout: float = 10.0
    body_timeout: float = 60.0
    max_connections: int = 1000

    def for_descriptors(self, soft_limit: int, reserve: int) -> HttpLimits:
        """These limits with the cap lowered so ``reserve`` descriptors stay free."""
        allowed = max(soft_limit - reserve, 1)
        if allowed >= self.max_connections:
            return self
        logger.warning(
            "HTTP connections capped at %d, not %d: the open-files limit is %d and %d are "
            "kept for runs (raise the limit: docs/deploy.md)",
            allowed,
            self.max_connections,
            soft_limit,
            reserve,
        )
        return HttpLimits(self.header_timeout, self.body_timeout, allowed)


@dataclass
class GuardCounts:
    """Connections the guard closed, by reason; logged once per ``LOG_INTERVAL``."""

    closed: Counter[str] = field(default_factory=Counter)
    _logged_at: float = float("-inf")
    _unlogged: Counter[str] = field(default_factory=Counter)

    def add(self, reason: str) -> None:
        self.closed[reason] += 1
        self._unlogged[reason] += 1
        now = time.monotonic()
        if now - self._logged_at >= LOG_INTERVAL:
            shown = ", ".join(f"{n} {r}" for r, n in sorted(self._unlogged.items()))
            logger.warning("HTTP connections closed by the guard: %s", shown)
            self._unlogged.clear()
            self._logged_at = now


def raise_open_files_limit() -> int:
    """Raise the soft open-files limit to the hard one; return the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            logger.warning("could not raise the open-files limit from %d: %s", soft, exc)
    return soft


def guarded_protocol(limits: HttpLimits, counts: GuardCounts) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol with ``limits`` enforced; pass it as ``http=``."""

    class GuardedProtocol(HttpToolsProtocol):
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > limits.max_connections:
                counts.add("over the connection cap")
                transport.abort()
                return
            self._arm(limits.header_timeout, "header timeout")

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            if self._deadline is None:  # the next request on a kept-alive connection
                self._arm(limits.header_timeout, "header timeout")

        def on_headers_complete(self) -> None:
            self._disarm()
            self._arm(limits.body_timeout, "body timeout")
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            self._disarm()
            super().on_message_complete()

        def _arm(self, seconds: float, reason: str) -> None:
            self._deadline = self.loop.call_later(seconds, self._expire, reason)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expire(self, reason: str) -> None:
            self._deadline = None
            counts.add(reason)
            self.transport.abort()  # RST: nothing more is owed to a client this slow

    return GuardedProtocol


def quiet_accept_errors(loop: asyncio.AbstractEventLoop) -> None:
    """Log asyncio's accept failures (descriptors exhausted) once per ``LOG_INTERVAL``,
    with how many there were; everything else goes to the handler already in place."""
    previous = loop.get_exception_handler()
    state = {"at": float("-inf"), "count": 0}

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        message = str(context.get("message", ""))
        if not message.startswith("socket.accept() out of system resource"):
            if previous is not None:
                previous(loop, context)
            else:
                loop.default_exception_handler(context)
            return
        state["count"] += 1
        now = time.monotonic()
        if now - state["at"] >= LOG_INTERVAL:
            logger.error(
                "HTTP server: cannot accept connections (%s); %d times since the last report",
                context.get("exception"),
                state["count"],
            )
            state["at"], state["count"] = now, 0

    loop.set_exception_handler(handler)
