"""``Http11Transport``: the ``httpx.AsyncBaseTransport`` the adapters send through.

It speaks plain HTTP/1.1, and HTTP/1.1 over TLS with asyncio's ``ssl``; no HTTP/2, no
proxies. Each request takes a connection from the ``ConnectionPool``, writes itself in one
``write`` when its body is in memory, and returns an ``httpx.Response`` as soon as the
status and headers arrived; the body streams from the connection, which goes back to the
pool when the body ends. Failures are the httpx exceptions every httpx transport raises
(``ConnectError``, ``ConnectTimeout``, ``PoolTimeout``, ``WriteTimeout``, ``ReadTimeout``,
``ReadError``, ``RemoteProtocolError``), and the ``"timeout"`` request extension
(``connect``, ``read``, ``write``, ``pool``: what ``httpx.Timeout`` sets) is honoured.

A keep-alive connection the server closed while it was idle is only discovered when it is
used. When a reused connection dies before the request went out or before any byte of the
answer came back, the request is sent once more on a fresh connection: the server closed
it without reading the request, as servers do with idle connections.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import httpx

from monitor.adapters.http11.connection import Answer, Connection, Origin, ResponseStream, Stale
from monitor.adapters.http11.pool import ConnectionPool, Timeouts

_PORTS = {"http": 80, "https": 443}
_EXTENSIONS: dict[str, Any] = {"http_version": b"HTTP/1.1"}


class Http11Transport(httpx.AsyncBaseTransport):
    """HTTP/1.1 over asyncio streams with a keep-alive pool per origin.

    ``max_connections`` bounds the connections open at once (a request beyond it waits
    for one, up to the ``pool`` timeout); ``max_keepalive_connections`` bounds those kept
    while idle, for at most ``keepalive_expiry`` seconds. ``ssl_context`` verifies https
    servers (by default ``httpx.create_ssl_context()``, made when the first https connection
    is opened).
    """

    def __init__(
        self,
        *,
        max_connections: int = 100,
        max_keepalive_connections: int | None = None,
        keepalive_expiry: float = 5.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, got: {max_connections}")
        keepalive = (
            max_connections if max_keepalive_connections is None else max_keepalive_connections
        )
        self.pool = ConnectionPool(
            max_connections=max_connections,
            max_keepalive=min(keepalive, max_connections),
            keepalive_expiry=keepalive_expiry,
            ssl_context=ssl_context,
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        scheme = url.scheme
        if scheme not in _PORTS:
            raise httpx.UnsupportedProtocol(
                f"unsupported URL scheme {scheme!r}: expected http or https", request=request
            )
        if not url.host:
            raise httpx.UnsupportedProtocol("the URL has no host", request=request)
        timeouts: Timeouts = request.extensions.get("timeout", {})
        origin = (scheme, url.host, url.port or _PORTS[scheme])
        connection = await self.pool.acquire(origin, timeouts)
        connection = await self._send(connection, request, timeouts)
        reason = connection.reason
        return httpx.Response(
            connection.status,
            headers=connection.headers,
            stream=ResponseStream(connection, request, timeouts.get("read"), self.pool.release),
            extensions={**_EXTENSIONS, "reason_phrase": reason} if reason else _EXTENSIONS,
        )

    async def exchange(
        self,
        origin: Origin,
        message: bytes,
        *,
        head_only: bool = False,
        timeouts: Timeouts,
        total: float | None = None,
    ) -> Answer:
        """Send ``message``, a whole HTTP/1.1 request to ``origin``, and return the whole
        answer, its body decoded when the server compressed it.

        The fast path the model adapters take: no ``httpx.Request`` or ``httpx.Response``
        is built. ``timeouts`` are httpx's phases (``pool``, ``connect``, ``write``,
        ``read``); ``total`` bounds the whole exchange, waiting for a connection included.
        Raises what ``handle_async_request`` raises, and ``TimeoutError`` when ``total``
        passed while waiting for a connection.
        """
        loop = asyncio.get_running_loop()
        deadline = None if total is None else loop.time() + total
        pool = self.pool
        connection = pool.take_idle(origin)
        if connection is None:
            async with asyncio.timeout_at(deadline):
                connection = await pool.acquire(origin, timeouts)
        read, write = timeouts.get("read"), timeouts.get("write")
        try:
            try:
                answer = await connection.exchange(
                    message, head_only=head_only, read=read, write=write, deadline=deadline
                )
            except Stale:
                async with asyncio.timeout_at(deadline):
                    connection = await pool.reopen(connection, timeouts)
                answer = await connection.exchange(
                    message, head_only=head_only, read=read, write=write, deadline=deadline
                )
        except BaseException:
            pool.discard(connection)
            raise
        pool.release(connection)
        return _decoded(answer)

    async def _send(
        self, connection: Connection, request: httpx.Request, timeouts: Timeouts
    ) -> Connection:
        """Send on ``connection``, or once more on a fresh one if it turned out stale.
        Returns the connection that holds the answer."""
        try:
            try:
                await connection.send(request, timeouts)
            except Stale:
                if not _replayable(request):
                    raise httpx.RemoteProtocolError(
                        "server closed the connection while the request was sent",
                        request=request,
                    ) from None
                connection = await self.pool.reopen(connection, timeouts)
                await connection.send(request, timeouts)
        except BaseException:
            # Failed or cancelled mid-request: the connection's state is unknown.
            self.pool.discard(connection)
            raise
        return connection

    async def aclose(self) -> None:
        await self.pool.aclose()


def _decoded(answer: Answer) -> Answer:
    """``answer`` with its body decoded as its ``Content-Encoding`` says, by httpx's own
    decoders, the same as ``httpx.Response`` would."""
    for name, value in answer.raw_headers:
        if name.lower() == b"content-encoding" and value.strip().lower() != b"identity":
            response = httpx.Response(
                answer.status_code,
                headers=answer.raw_headers,
                stream=httpx.ByteStream(answer.content),
            )
            return Answer(answer.status_code, answer.raw_headers, response.read())
    return answer


def _replayable(request: httpx.Request) -> bool:
    """The body is in memory, so the request can be written again."""
    try:
        return request.content is not None
    except httpx.RequestNotRead:
        return False
