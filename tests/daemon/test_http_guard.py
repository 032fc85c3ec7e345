"""The HTTP guard: slow requests and surplus connections are closed; normal ones served.

Real sockets against a real uvicorn server on loopback, in this test's event loop."""

from __future__ import annotations

import asyncio
import logging
import resource
from collections.abc import AsyncIterator

import pytest

from monitor.daemon.guard import (
    GuardCounts,
    HttpLimits,
    quiet_accept_errors,
    raise_open_files_limit,
)
from monitor.daemon.serving import EmbeddedServer, start_server
from tests.servers import deadline


async def app(scope: dict, receive, send) -> None:  # type: ignore[no-untyped-def, type-arg]
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    reply = b"ok %d" % len(body)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"%d" % len(reply))]})  # fmt: skip
    await send({"type": "http.response.body", "body": reply})


@pytest.fixture
async def server(request: pytest.FixtureRequest) -> AsyncIterator[EmbeddedServer]:
    limits = getattr(request, "param", HttpLimits(0.3, 0.3, 1000))
    served = await start_server(app, host="127.0.0.1", port=0, what="test", limits=limits)
    try:
        yield served
    finally:
        await served.stop()


async def connect(server: EmbeddedServer) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", server.port)


async def closed(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, trickle: bytes = b""
) -> bytes:
    """What the server sent before closing; trickles ``trickle`` a byte every 50 ms."""
    received = b""

    async def read() -> bytes:
        nonlocal received
        try:
            while chunk := await reader.read(65536):
                received += chunk
        except ConnectionResetError:
            pass
        return received

    reading = asyncio.ensure_future(read())
    for byte in trickle:
        if reading.done():
            break
        try:
            writer.write(bytes([byte]))
            await writer.drain()
        except ConnectionError:
            break
        await asyncio.sleep(0.05)
    try:
        return await asyncio.wait_for(reading, timeout=deadline(10))
    finally:
        writer.close()


async def request(server: EmbeddedServer, raw: bytes) -> bytes:
    reader, writer = await connect(server)
    writer.write(raw)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.readuntil(b"ok"), timeout=deadline(10))
    finally:
        writer.close()


async def test_normal_requests_are_served(server: EmbeddedServer) -> None:
    assert b" 200 " in await request(server, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    body = b"x" * 200_000
    raw = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    assert b" 200 " in await request(server, raw)
    assert server.guard.closed == {}


async def test_headers_trickled_a_byte_at_a_time_are_cut_off(server: EmbeddedServer) -> None:
    reader, writer = await connect(server)
    # 40 bytes at 50 ms each would take 2 s; the header deadline is 0.3 s.
    received = await closed(
        reader, writer, trickle=b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 20
    )
    assert received == b""
    assert server.guard.closed == {"header timeout": 1}


async def test_a_silent_connection_is_closed(server: EmbeddedServer) -> None:
    assert await closed(*await connect(server)) == b""
    assert server.guard.closed == {"header timeout": 1}


async def test_a_body_trickled_is_cut_off(server: EmbeddedServer) -> None:
    reader, writer = await connect(server)
    writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
    await closed(reader, writer, trickle=b"b" * 100)
    assert server.guard.closed == {"body timeout": 1}


async def test_the_next_request_on_a_kept_alive_connection_has_a_deadline_too(
    server: EmbeddedServer,
) -> None:
    reader, writer = await connect(server)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b" 200 " in await asyncio.wait_for(reader.readuntil(b"ok 0"), timeout=deadline(10))
    await closed(reader, writer, trickle=b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 20)
    assert server.guard.closed == {"header timeout": 1}


@pytest.mark.parametrize("server", [HttpLimits(30, 30, 3)], indirect=True)
async def test_connections_over_the_cap_are_closed_at_once(server: EmbeddedServer) -> None:
    held = [await connect(server) for _ in range(3)]
    assert await closed(*await connect(server)) == b""  # long before the 30 s header deadline
    assert server.guard.closed == {"over the connection cap": 1}
    held.pop()[1].close()

    # One slot is free again once the server has seen the close: a request is served.
    async def served() -> bytes:
        while True:
            try:
                return await request(server, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                await asyncio.sleep(0.05)

    assert b" 200 " in await asyncio.wait_for(served(), timeout=deadline(10))
    for _, writer in held:
        writer.close()


def test_the_cap_leaves_the_reserve_free(caplog: pytest.LogCaptureFixture) -> None:
    limits = HttpLimits(10, 60, 1000)
    assert limits.for_descriptors(20_000, 256) is limits
    with caplog.at_level(logging.WARNING):
        lowered = limits.for_descriptors(1024, 256)
    assert lowered.max_connections == 768 and lowered.header_timeout == 10
    assert "capped at 768, not 1000" in caplog.text


def test_the_soft_open_files_limit_is_raised_to_the_hard_one() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(256, hard), hard))
    try:
        expected = hard if hard != resource.RLIM_INFINITY else 1 << 20
        assert raise_open_files_limit() == expected
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == expected
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def test_accept_errors_are_logged_once_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    other: list[str] = []
    loop.set_exception_handler(lambda _loop, context: other.append(context["message"]))
    try:
        quiet_accept_errors(loop)
        with caplog.at_level(logging.ERROR, logger="monitor.daemon.guard"):
            for _ in range(500):
                loop.call_exception_handler(
                    {
                        "message": "socket.accept() out of system resource",
                        "exception": OSError(24, "Too many open files"),
                    }
                )
            loop.call_exception_handler({"message": "something else"})
        lines = [r for r in caplog.records if "cannot accept" in r.getMessage()]
        assert len(lines) == 1 and "Too many open files" in lines[0].getMessage()
        assert other == ["something else"]  # other errors still reach the old handler
    finally:
        loop.set_exception_handler(previous)


def test_refusals_are_counted_and_logged_once_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    counts = GuardCounts()
    with caplog.at_level(logging.WARNING, logger="monitor.daemon.guard"):
        for _ in range(100):
            counts.add("header timeout")
    assert counts.closed == {"header timeout": 100}
    assert len(caplog.records) == 1
