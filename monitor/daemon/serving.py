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

from monitor.errors import StartupError

logger = logging.getLogger(__name__)


class _NoSignalServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class EmbeddedServer:
    """A listening uvicorn server and the task that runs it; an async context manager
    that stops it on exit."""

    def __init__(self, server: uvicorn.Server, task: asyncio.Task[None], host: str) -> None:
        self._server = server
        self._task = task
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
    app: Any, *, host: str, port: int, what: str, startup_timeout: float = 10.0
) -> EmbeddedServer:
    """Start ``app`` on ``host:port`` (0 picks a free port) and return once it listens.

    Raises ``StartupError`` naming ``what`` when it cannot (port in use, bad host).
    """
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", lifespan="off", access_log=False
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
    return EmbeddedServer(server, task, host)


async def _serve(server: uvicorn.Server, where: str) -> None:
    # uvicorn calls sys.exit() when it cannot bind; a SystemExit escaping a task would stop
    # the whole event loop, daemon included.
    try:
        await server.serve()
    except SystemExit:
        raise StartupError(f"{where} (port in use or address not allowed)") from None
