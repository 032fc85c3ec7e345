"""Serve an ASGI app with uvicorn inside the caller's event loop, without its signal handling.

The daemon owns SIGINT and SIGTERM; uvicorn must not install handlers of its own, or a
Ctrl-C would stop the HTTP server while runs keep going.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from types import TracebackType
from typing import Any

import uvicorn

from monitor.daemon.guard import (
    GuardCounts,
    HttpLimits,
    guarded_protocol,
    quiet_accept_errors,
    raise_open_files_limit,
)
from monitor.errors import StartupError

logger = logging.getLogger(__name__)


class _NoSignalServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class EmbeddedServer:
    """A listening uvicorn server and the task that runs it; an async context manager
    that stops it on exit."""

    def __init__(
        self,
        server: uvicorn.Server,
        task: asyncio.Task[None],
        host: str,
        *,
        limits: HttpLimits | None = None,
        guard: GuardCounts | None = None,
    ) -> None:
        self._server = server
        self._task = task
        #: The limits in force (the cap as lowered for the open-files limit), if any.
        self.limits = limits
        #: Connections the guard closed, by reason.
        self.guard = guard or GuardCounts()
        #: The bound port: the real one when 0 was asked for.
        self.port = int(server.servers[0].sockets[0].getsockname()[1])
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{self.port}"

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting connections and finish open requests; after ``timeout`` seconds
        cancel what is left."""
        self._server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)
        except TimeoutError:
            logger.warning("HTTP server did not stop within %ss; cancelling", timeout)
            self._server.force_exit = True
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def __aenter__(self) -> EmbeddedServer:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


async def start_server(
    app: Any,
    *,
    host: str,
    port: int,
    what: str,
    startup_timeout: float = 10.0,
    limits: HttpLimits | None = None,
    fd_reserve: int = 256,
) -> EmbeddedServer:
    """Start ``app`` on ``host:port`` (0 picks a free port) and return once it listens.

    With ``limits``, slow and surplus connections are closed (``monitor.daemon.guard``):
    the soft open-files limit is raised to the hard one and the connection cap lowered so
    that ``fd_reserve`` descriptors stay free. Raises ``StartupError`` naming ``what`` when
    it cannot listen (port in use, bad host).
    """
    options: dict[str, Any] = {}
    guard = GuardCounts()
    if limits is not None:
        limits = limits.for_descriptors(raise_open_files_limit(), fd_reserve)
        options["http"] = guarded_protocol(limits, guard)
        # asyncio accepts up to ``backlog`` connections per wake-up before any of them is
        # seen (and closed) by the protocol: keep that burst inside half the reserve.
        options["backlog"] = max(16, min(2048, fd_reserve // 2))
        quiet_accept_errors(asyncio.get_running_loop())
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        lifespan="off",
        access_log=False,
        **options,
    )
    server = _NoSignalServer(config)
    where = f"{what}: cannot listen on {host}:{port}"
    task = asyncio.create_task(_serve(server, where), name=f"http server: {what}")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + startup_timeout
    while not server.started:
        if task.done():
            task.result()  # re-raises the StartupError
            raise StartupError(f"{where}: the server stopped before listening")
        if loop.time() > deadline:
            task.cancel()
            raise StartupError(f"{where}: not listening after {startup_timeout}s")
        await asyncio.sleep(0.01)
    return EmbeddedServer(server, task, host, limits=limits, guard=guard)


async def _serve(server: uvicorn.Server, where: str) -> None:
    # uvicorn calls sys.exit() when it cannot bind; a SystemExit escaping a task would stop
    # the whole event loop, daemon included.
    try:
        await server.serve()
    except SystemExit:
        raise StartupError(f"{where} (port in use or address not allowed)") from None
