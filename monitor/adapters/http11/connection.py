"""One HTTP/1.1 client connection: an ``asyncio.Protocol`` fed to the ``httptools`` parser.

The event loop calls ``data_received`` with whatever the socket produced; the parser (C,
llhttp) turns it into status, headers and body callbacks, which only record state and wake
the one coroutine waiting on this connection. A small answer therefore costs one write, one
read and one wake-up, with no task, no lock and no per-read timeout context.

``exchange`` is the whole-message form the adapters use: the request written in one
``write``, the answer collected whole in the protocol (status, headers, body), and the
waiting coroutine woken once, when it is complete, with a single timer that covers both the
wait for each byte (``read``) and the whole exchange (a deadline).

A connection serves one request at a time (no pipelining). It tells its pool whether it can
be reused (the answer was complete, the server kept the connection alive, nothing
unexpected arrived) and raises ``Stale`` when a connection that had already served a
request turned out dead before sending the new one or before any byte of the answer came
back: the request may then be sent again on a fresh connection.
"""

from __future__ import annotations

import asyncio
import json
import re
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, cast

import httptools
import httpx

Origin = tuple[str, str, int]
"""Scheme, host and port: connections are pooled per origin."""

# Reading pauses when this much body waits for the reader, so a large answer never sits
# in memory whole before anyone asked for it.
READ_HIGH_WATER = 256 * 1024

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_UNSAFE_VALUE = re.compile(rb"[\x00\r\n]")
_UNSAFE_TARGET = re.compile(rb"[\x00-\x20\x7f]")


@dataclass(frozen=True, slots=True)
class Answer:
    """A whole answer, as ``Http11Transport.exchange`` returns it: the parts of an
    ``httpx.Response`` a model adapter reads, without building one."""

    status_code: int
    raw_headers: list[tuple[bytes, bytes]]
    content: bytes

    @property
    def headers(self) -> httpx.Headers:
        return httpx.Headers(self.raw_headers)

    def json(self) -> Any:
        """The body decoded as JSON (as ``httpx.Response.json`` does); ``ValueError``
        when it is not."""
        return json.loads(self.content)


class Stale(Exception):
    """A reused connection died before the request went out or before any byte of the
    answer came back: sending the request again on a fresh connection is safe."""


def encode_head(request: httpx.Request) -> bytes:
    """The request line and headers, refusing anything that could split the message."""
    return request_line(request.method, request.url.raw_path) + encode_headers(request.headers.raw)


def request_line(method: str, target: bytes) -> bytes:
    """``METHOD target HTTP/1.1``; ``httpx.LocalProtocolError`` for a method or target
    that could split the message."""
    name = method.encode("ascii")
    if not _TOKEN.fullmatch(name) or _UNSAFE_TARGET.search(target):
        raise httpx.LocalProtocolError("invalid request method or target")
    return b"%s %s HTTP/1.1\r\n" % (name, target)


def encode_headers(headers: list[tuple[bytes, bytes]], *, end: bool = True) -> bytes:
    """Header lines (and, with ``end``, the blank line closing the head);
    ``httpx.LocalProtocolError`` for a name or value that could split the message."""
    lines = []
    for name, value in headers:
        if not _TOKEN.fullmatch(name) or _UNSAFE_VALUE.search(value):
            raise httpx.LocalProtocolError("invalid request header")
        lines.append(b"%s: %s\r\n" % (name, value))
    if end:
        lines.append(b"\r\n")
    return b"".join(lines)


async def open_connection(
    origin: Origin, tls: ssl.SSLContext | None, timeout: float | None
) -> Connection:
    """A new connection to ``origin``, over TLS with ``tls`` (for https);
    ``httpx.ConnectTimeout`` or ``httpx.ConnectError`` when it cannot be opened (refused,
    unknown host, TLS handshake failed)."""
    _, host, port = origin
    loop = asyncio.get_running_loop()
    connection = Connection(origin, loop)
    try:
        async with asyncio.timeout(timeout):
            await loop.create_connection(
                lambda: connection, host, port, ssl=tls, server_hostname=host if tls else None
            )
    except TimeoutError:  # before OSError: TimeoutError is one
        raise httpx.ConnectTimeout(f"no connection to {host}:{port} within {timeout}s") from None
    except OSError as exc:
        raise httpx.ConnectError(f"cannot connect to {host}:{port}: {exc}") from exc
    return connection


class Connection(asyncio.Protocol):
    """An open HTTP/1.1 connection to one origin, serving one request at a time."""

    def __init__(self, origin: Origin, loop: asyncio.AbstractEventLoop) -> None:
        self.origin = origin
        self.served = 0  # answers completed on this connection
        self.idle_since = 0.0
        self._loop = loop
        self._transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[bool] | None = None
        self._closed = False  # the socket is gone (either side closed it)
        self._lost: Exception | None = None  # the OS error that ended it, if any
        self._writing_paused = False
        self._reading_paused = False
        self._last_read = 0.0  # loop time of the last bytes received
        self._timer: asyncio.TimerHandle | None = None
        self._head_only = False
        self._begin(head_only=False, active=False)

    def _begin(self, *, head_only: bool, active: bool, whole: bool = False) -> None:
        """Fresh state for the next answer."""
        if head_only or self._head_only or self.served == 0:
            # A parser reads one answer after another on a kept-alive connection; only
            # the answer to HEAD, which has no body whatever its headers say, needs one
            # told so (a fresh one, after which the next answer gets a fresh one too).
            self._parser = httptools.HttpResponseParser(self)
        self._active = active  # a request is outstanding: bytes are expected
        self._head_only = head_only
        self._whole = whole  # wake the waiter only when the answer is complete
        self._received = False  # any byte of the answer arrived
        self._head_done = self._complete = self._keep_alive = self._unexpected = False
        self._error: httpx.TransportError | None = None
        self._body: list[bytes] = []
        self._buffered = 0
        self.status = 0
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []

    # -- what the pool asks ------------------------------------------------------------

    @property
    def usable(self) -> bool:
        """Open, and nothing arrived while it sat idle."""
        return not self._closed and not self._unexpected

    @property
    def reusable(self) -> bool:
        """The answer was read to its end and the server keeps the connection open."""
        return self._complete and self._keep_alive and self.usable and self._error is None

    def finished(self) -> None:
        """The answer has been handed over: the connection is idle (or about to close)."""
        if self._active and self._complete:
            self.served += 1
        self._active = False

    def close(self) -> None:
        self._closed = True
        if self._transport is not None:
            self._transport.close()

    # -- one request -------------------------------------------------------------------

    async def send(self, request: httpx.Request, timeouts: dict[str, float | None]) -> None:
        """Write ``request`` and wait until the answer's status and headers arrived."""
        self._begin(head_only=request.method == "HEAD", active=True)
        if self._closed or self._transport is None or self._transport.is_closing():
            raise self._gone(request)
        head = encode_head(request)
        try:
            body: bytes | None = request.content
        except httpx.RequestNotRead:
            body = None  # a streamed body, written as it is produced
        if body is not None:
            self._transport.write(head + body if len(body) < 65536 else head)
            if len(body) >= 65536:
                self._transport.write(body)
        else:
            self._transport.write(head)
            await self._write_stream(request, timeouts.get("write"))
        await self._drain(request, timeouts.get("write"))
        while not self._head_done:
            self._check(request)
            await self._wait(request, timeouts.get("read"))

    async def _write_stream(self, request: httpx.Request, timeout: float | None) -> None:
        assert self._transport is not None
        chunked = request.headers.get("transfer-encoding", "").lower() == "chunked"
        assert isinstance(request.stream, httpx.AsyncByteStream)
        async for chunk in request.stream:
            if chunk:
                self._transport.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
                await self._drain(request, timeout)
        if chunked:
            self._transport.write(b"0\r\n\r\n")

    async def exchange(
        self,
        message: bytes,
        *,
        head_only: bool,
        read: float | None,
        write: float | None,
        deadline: float | None,
    ) -> Answer:
        """Write ``message`` (a whole request) and return the whole answer.

        ``read`` bounds each wait for the server's next bytes, ``deadline`` (loop time)
        the whole exchange: both raise ``httpx.ReadTimeout``. The body is collected as it
        arrives and the caller is woken once, when the answer is complete.
        """
        self._begin(head_only=head_only, active=True, whole=True)
        transport = self._transport
        if self._closed or transport is None or transport.is_closing():
            raise self._gone(None)
        transport.write(message)
        if self._writing_paused:
            await self._drain(None, write)
        self._last_read = self._loop.time()
        while not self._complete:
            self._check(None)
            if not await self._until_complete(read, deadline):
                raise httpx.ReadTimeout(
                    "no data within the read timeout"
                    if deadline is None or self._loop.time() < deadline
                    else "no complete answer before the deadline"
                )
        body = self._take_body() if self._body else b""
        return Answer(self.status, self.headers, body)

    async def _until_complete(self, read: float | None, deadline: float | None) -> bool:
        """Wait for the answer to complete (or fail); ``False`` if ``read`` seconds passed
        without bytes, or ``deadline``. One timer, moved on lazily as bytes arrive."""
        waiter: asyncio.Future[bool] = self._loop.create_future()
        self._waiter = waiter
        due = self._due(read, deadline)
        if due is not None:
            self._timer = self._loop.call_at(due, self._on_timer, waiter, read, deadline)
        try:
            return await waiter
        finally:
            self._waiter = None
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    def _due(self, read: float | None, deadline: float | None) -> float | None:
        if read is None:
            return deadline
        idle = self._last_read + read
        return idle if deadline is None else min(idle, deadline)

    def _on_timer(
        self, waiter: asyncio.Future[bool], read: float | None, deadline: float | None
    ) -> None:
        due = self._due(read, deadline)
        if due is None or self._loop.time() >= due:
            _expire(waiter)
        elif not waiter.done():
            self._timer = self._loop.call_at(due, self._on_timer, waiter, read, deadline)

    async def read(self, request: httpx.Request, timeout: float | None) -> bytes:
        """The next piece of the answer's body; ``b""`` at its end."""
        while True:
            if self._body:
                return self._take_body()
            if self._complete:
                return b""
            self._check(request)
            await self._wait(request, timeout)

    def _take_body(self) -> bytes:
        data = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        self._body.clear()
        self._buffered = 0
        if self._reading_paused and self._transport is not None:
            self._reading_paused = False
            self._transport.resume_reading()
        return data

    def _check(self, request: httpx.Request | None) -> None:
        """Raise what ended the answer early, if something did."""
        if self._error is not None:
            if request is not None:
                self._error.request = request
            raise self._error
        if self._closed:
            raise self._gone(request)

    def _gone(self, request: httpx.Request | None) -> Exception:
        """The error for a socket that closed before the answer was complete."""
        if not self._received:
            if self.served:
                return Stale()
            if self._lost is not None:
                return httpx.ReadError(f"connection lost: {self._lost}", request=request)
            return httpx.RemoteProtocolError(
                "server disconnected without sending a response", request=request
            )
        if self._lost is not None:
            return httpx.ReadError(f"connection lost: {self._lost}", request=request)
        return httpx.RemoteProtocolError(
            "server disconnected before the end of the response", request=request
        )

    async def _drain(self, request: httpx.Request | None, timeout: float | None) -> None:
        while self._writing_paused:
            if self._closed:
                raise httpx.WriteError("connection lost while sending", request=request)
            if not await self._sleep(timeout):
                raise httpx.WriteTimeout(f"request not sent within {timeout}s", request=request)

    async def _wait(self, request: httpx.Request, timeout: float | None) -> None:
        if not await self._sleep(timeout):
            raise httpx.ReadTimeout(f"no data within {timeout}s", request=request)

    async def _sleep(self, timeout: float | None) -> bool:
        """Wait for the socket to make progress; ``False`` if ``timeout`` passed first."""
        waiter: asyncio.Future[bool] = self._loop.create_future()
        self._waiter = waiter
        timer = None if timeout is None else self._loop.call_later(timeout, _expire, waiter)
        try:
            return await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(True)

    # -- asyncio.Protocol --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's is not an ``asyncio.Transport`` subclass).
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if not self._active or self._complete:
            # Nobody asked: a stray answer or a goodbye (408). The connection cannot be
            # trusted with another request.
            self._unexpected = True
            self.close()
            return
        self._received = True
        self._last_read = self._loop.time()
        try:
            self._parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            self._error = httpx.RemoteProtocolError(f"malformed response: {exc}")
            self.close()
        if not self._whole or self._complete or self._closed:
            self._wake()

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._lost = exc
        if self._active and self._head_done and not self._complete and self._until_eof():
            self._complete = True  # an answer without a length ends when the socket does
        self._wake()

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        self._wake()

    # -- httptools callbacks -----------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._complete:
            self._unexpected = True  # a second answer to one request
        self.reason = b""
        self.headers = []

    def on_status(self, status: bytes) -> None:
        self.reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if status < 200:
            return  # informational (100 Continue): the real answer follows
        self.status = status
        self._head_done = True
        if self._head_only:  # the answer to HEAD has no body, whatever its headers say
            self._complete = True
            self._keep_alive = self._parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        if self._complete:
            return
        self._body.append(body)
        self._buffered += len(body)
        if self._buffered > READ_HIGH_WATER and not self._reading_paused and not self._whole:
            assert self._transport is not None
            self._reading_paused = True
            self._transport.pause_reading()

    def on_message_complete(self) -> None:
        if self._head_done and not self._complete:
            self._complete = True
            self._keep_alive = self._parser.should_keep_alive()

    def _until_eof(self) -> bool:
        """The answer's body is delimited by the end of the connection (no length)."""
        names = {name.lower() for name, _ in self.headers}
        return b"content-length" not in names and b"transfer-encoding" not in names


def _expire(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(False)


class ResponseStream(httpx.AsyncByteStream):
    """The body of one answer, read from its connection; the connection goes back to the
    pool (or is closed) as soon as the body ends or the stream is closed."""

    def __init__(
        self,
        connection: Connection,
        request: httpx.Request,
        timeout: float | None,
        release: Callable[[Connection], None],
    ) -> None:
        self._connection = connection
        self._request = request
        self._timeout = timeout
        self._release: Callable[[Connection], None] | None = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            while chunk := await self._connection.read(self._request, self._timeout):
                yield chunk
        finally:
            self._done()

    async def aclose(self) -> None:
        self._done()

    def _done(self) -> None:
        release, self._release = self._release, None
        if release is not None:
            release(self._connection)
