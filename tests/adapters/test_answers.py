"""What each HTTP client makes of answers only bytes on a socket can produce: compressed,
undecodable, truncated or malformed answers, silent servers and unanswered connects,
kept-alive connections the server dropped, and a body that cannot be sent at all. Raw
loopback servers (``RawServer``) play the endpoint."""

from __future__ import annotations

import asyncio
import math
import socket

import pytest

from monitor.adapters import build_adapter
from monitor.adapters.observer import RequestOutcome
from monitor.errors import AdapterError
from tests.adapters.endpoints import gzip_answer, raw_server, read_request
from tests.adapters.models import case, model_for

# Once per HTTP client under the transport.
pytestmark = pytest.mark.usefixtures("http_client")


async def failure_of(url: str, **overrides: object) -> AdapterError:
    """The error the ``http`` adapter raises for one case against ``url``, no retries."""
    adapter = build_adapter(model_for("http", url, retry={"attempts": 0}, **overrides))
    try:
        with pytest.raises(AdapterError) as failure:
            await adapter.predict(case(1, 1.0))
    finally:
        await adapter.aclose()
    return failure.value


async def test_a_compressed_answer_is_decoded() -> None:
    async with raw_server(gzip_answer(b'{"prediction": "pos"}')) as server:
        adapter = build_adapter(model_for("http", server.url))
        try:
            assert (await adapter.predict(case(1, 1.0))).value == "pos"
        finally:
            await adapter.aclose()


async def test_an_answer_that_cannot_be_decompressed_is_a_bad_response() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 9\r\n\r\nnot gzip!"
        )
        await writer.drain()

    async with raw_server(handle) as server:
        failure = await failure_of(server.url)
    assert failure.kind == "bad_response"
    assert "decompressed" in str(failure)


@pytest.mark.parametrize(
    "answer",
    [
        b"",
        b"HTTP/1.1 200 OK\r\nContent-Le",
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
        b"HTTP/1.1 2x0 OK\r\n\r\n",
    ],
    ids=["nothing", "truncated-head", "truncated-body", "truncated-chunks", "malformed"],
)
async def test_a_truncated_or_malformed_answer_is_a_connection_failure(answer: bytes) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer)
        await writer.drain()
        writer.close()

    async with raw_server(handle) as server:
        failure = await failure_of(server.url)
    assert failure.kind == "connection"
    assert "querysecret" not in str(failure)


@pytest.mark.parametrize(
    "answer",
    [b"", b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234"],
    ids=["no-head", "half-a-body"],
)
async def test_a_silent_server_is_a_timeout(answer: bytes) -> None:
    released = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer)
        await released.wait()

    async with raw_server(handle) as server:
        failure = await failure_of(server.url, timeout="200ms")
        released.set()
    assert failure.kind == "timeout"


async def test_an_unanswered_connect_is_a_timeout() -> None:
    # A listener that never accepts: once its accept queue is full, the kernel drops
    # further SYNs and a connect hangs.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        held = []
        try:
            for _ in range(64):
                try:
                    held.append(
                        await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 0.2)
                    )
                except TimeoutError:
                    break
            else:
                pytest.fail("the accept queue never filled up")
            failure = await failure_of(f"http://127.0.0.1:{port}", timeout="200ms")
        finally:
            for _, writer in held:
                writer.close()
    assert failure.kind == "timeout"


async def test_a_kept_alive_connection_the_server_dropped_is_not_used_again() -> None:
    served = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        await read_request(reader)
        served += 1
        body = b'{"prediction": "pos"}'
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        writer.close()  # without saying Connection: close: the client finds out on reuse

    async with raw_server(handle) as server:
        adapter = build_adapter(model_for("http", server.url))
        try:
            answers = [(await adapter.predict(case(i, 1.0))).value for i in range(2)]
        finally:
            await adapter.aclose()
    # Had the second request gone out on the dropped connection, the transport would
    # have retried it (a connection failure): it still reached the server once.
    assert answers == ["pos", "pos"] and served == 2


class Observed:
    def __init__(self) -> None:
        self.outcomes: list[RequestOutcome] = []

    def observe_request(self, model: str, outcome: RequestOutcome, seconds: float) -> None:
        self.outcomes.append(outcome)


async def test_a_body_json_cannot_carry_fails_the_case_as_bad_request() -> None:
    received: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.append(await read_request(reader))

    observer = Observed()
    async with raw_server(handle) as server:
        adapter = build_adapter(model_for("http", server.url), observer=observer)
        try:
            with pytest.raises(AdapterError) as failure:
                await adapter.predict(case(1, math.nan))
        finally:
            await adapter.aclose()
    assert failure.value.kind == "bad_request"
    assert "NaN" in str(failure.value)
    assert received == [] and observer.outcomes == []  # never sent, never retried
