"""The fast client's path: requests encoded to bytes by ``HttpClient``'s encoder, sent by
``Http11Transport.exchange``, answers collected whole.

The encoder must send exactly what httpx would (it replaces ``httpx.Request`` for speed,
not for a different message), so each request shape is compared byte for byte with
``httpx.Request`` encoded by the transport's own ``encode_head``. The exchange is driven
against raw loopback servers for what only bytes on a socket show: compressed answers,
silent and trickling servers, kept-alive connections the server dropped, HEAD."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import httpx
import pytest

from monitor.adapters import build_adapter
from monitor.adapters.clients import _Encoder, origin_of
from monitor.adapters.http11 import Http11Transport
from monitor.adapters.http11.connection import encode_head
from monitor.adapters.observer import RequestOutcome
from monitor.errors import AdapterError
from tests.adapters.endpoints import gzip_answer, raw_server, read_request
from tests.adapters.models import case, model_for

DEFAULTS = httpx.AsyncClient().headers  # httpx's own: Accept, Accept-Encoding, ...
TIMEOUTS: dict[str, float | None] = {"connect": 5, "read": 5, "write": 5, "pool": 5}


def _httpx_bytes(headers: httpx.Headers, method: str, url: str, **kwargs: Any) -> bytes:
    request = httpx.Request(method, url, headers=headers, **kwargs)
    return encode_head(request) + request.read()


@pytest.mark.parametrize(
    ("method", "url", "kwargs"),
    [
        ("POST", "http://127.0.0.1:8000/predict", {"json": {"x": 1, "y": [1.5, None]}}),
        ("POST", "http://model.internal/v1/chat", {"json": {"q": "héllo ✓ \u2028"}}),
        ("PUT", "https://model.internal:8443/p?api-version=2", {"json": [1, 2]}),
        ("GET", "http://127.0.0.1:8000/predict?x=1", {}),
        ("POST", "http://127.0.0.1:8000/predict", {}),  # no body: Content-Length: 0
        ("POST", "http://127.0.0.1:8000/p", {"content": b"raw bytes"}),
        ("POST", "http://127.0.0.1:8000/p", {"data": {"form": "field"}}),
    ],
    ids=["json", "unicode", "put-https-query", "get", "empty-post", "content", "form"],
)
@pytest.mark.parametrize(
    "configured",
    [{}, {"Authorization": "Bearer s3cret", "X-Extra": "1"}, {"Content-Type": "text/x"}],
    ids=["defaults", "configured", "content-type-configured"],
)
def test_the_encoder_sends_what_httpx_would(
    method: str, url: str, kwargs: dict[str, Any], configured: dict[str, str]
) -> None:
    headers = httpx.Headers({**DEFAULTS, **configured})
    encoder = _Encoder(headers)
    target = httpx.URL(url)
    for key in (None, (method, url), (method, url)):  # fresh, then cached twice
        origin, message = encoder.encode(method, target, key, kwargs)
        assert message == _httpx_bytes(headers, method, url, **kwargs)
        assert origin == origin_of(target)


def test_a_cached_head_is_only_reused_for_its_own_method_and_url() -> None:
    encoder = _Encoder(httpx.Headers(DEFAULTS))
    a, b = httpx.URL("http://h/a"), httpx.URL("http://h/b")
    encoder.encode("POST", a, ("POST", "http://h/a"), {"json": 1})
    _, message = encoder.encode("POST", b, ("POST", "http://h/b"), {"json": 1})
    assert message.startswith(b"POST /b HTTP/1.1\r\nHost: h\r\n")


def test_unsupported_scheme_is_refused_before_anything_is_sent() -> None:
    with pytest.raises(httpx.UnsupportedProtocol):
        _Encoder(httpx.Headers(DEFAULTS)).encode("GET", httpx.URL("ftp://h/x"), None, {})


# -- the exchange against raw servers ------------------------------------------------------


def _get(url: str) -> tuple[tuple[str, str, int], bytes]:
    target = httpx.URL(url)
    return origin_of(target), _httpx_bytes(httpx.Headers(DEFAULTS), "GET", url)


async def test_compressed_answer_is_decoded() -> None:
    handle = gzip_answer(b'{"prediction": "pos"}')
    transport = Http11Transport()
    async with raw_server(handle) as server:
        origin, message = _get(server.url)
        answer = await transport.exchange(origin, message, timeouts=TIMEOUTS)
    await transport.aclose()
    assert answer.status_code == 200 and answer.json() == {"prediction": "pos"}
    assert answer.headers["content-encoding"] == "gzip"


async def test_an_answer_that_cannot_be_decompressed_is_a_bad_response() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 9\r\n\r\nnot gzip!"
        )
        await writer.drain()

    async with raw_server(handle) as server:
        adapter = build_adapter(model_for("http", server.url))
        try:
            with pytest.raises(AdapterError) as failure:
                await adapter.predict(case(1, 1.0))
        finally:
            await adapter.aclose()
    assert failure.value.kind == "bad_response"
    assert "decompressed" in str(failure.value)


async def test_silent_server_is_a_read_timeout_and_the_connection_is_dropped() -> None:
    released = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234")
        await released.wait()

    transport = Http11Transport()
    async with raw_server(handle) as server:
        origin, message = _get(server.url)
        with pytest.raises(httpx.ReadTimeout, match="read timeout"):
            await transport.exchange(origin, message, timeouts={**TIMEOUTS, "read": 0.2})
        assert transport.pool.open_connections == 0
        released.set()
    await transport.aclose()


async def test_a_trickling_answer_ends_at_the_deadline() -> None:
    """Each byte comes within the read timeout; the whole answer never does."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        for _ in range(1000):
            writer.write(b".")
            await writer.drain()
            await asyncio.sleep(0.02)

    transport = Http11Transport()
    loop = asyncio.get_running_loop()
    async with raw_server(handle) as server:
        origin, message = _get(server.url)
        started = loop.time()
        with pytest.raises(httpx.ReadTimeout, match="deadline"):
            await transport.exchange(origin, message, timeouts={**TIMEOUTS, "read": 0.2}, total=0.5)
        assert 0.5 <= loop.time() - started < 2
        assert transport.pool.open_connections == 0
    await transport.aclose()


async def test_kept_alive_connection_the_server_dropped_is_replaced_once() -> None:
    served = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        await read_request(reader)
        served += 1
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()  # without saying Connection: close: the client finds out on reuse

    transport = Http11Transport()
    async with raw_server(handle) as server:
        origin, message = _get(server.url)
        first = await transport.exchange(origin, message, timeouts=TIMEOUTS)
        await asyncio.sleep(0.05)  # the close reaches the idle connection, unseen
        second = await transport.exchange(origin, message, timeouts=TIMEOUTS)
    await transport.aclose()
    assert first.content == second.content == b"ok" and served == 2


async def test_head_answer_has_no_body_and_the_next_answer_parses() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await read_request(reader)
            if head.startswith(b"HEAD"):
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
            else:
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
            await writer.drain()

    transport = Http11Transport()
    async with raw_server(handle) as server:
        target = httpx.URL(server.url)
        head = _httpx_bytes(httpx.Headers(DEFAULTS), "HEAD", server.url)
        _, get = _get(server.url)
        answers = [
            await transport.exchange(
                origin_of(target), message, head_only=message is head, timeouts=TIMEOUTS
            )
            for message in (get, head, get, get)
        ]
        assert transport.pool.open_connections == 1  # one connection served all four
    await transport.aclose()
    assert [a.content for a in answers] == [b"hello", b"", b"hello", b"hello"]


# -- requests that cannot be encoded -------------------------------------------------------


class Observed:
    def __init__(self) -> None:
        self.outcomes: list[RequestOutcome] = []

    def observe_request(self, model: str, outcome: RequestOutcome, seconds: float) -> None:
        self.outcomes.append(outcome)


@pytest.mark.parametrize("http_client", ["fast", "httpx"])
async def test_a_body_json_cannot_carry_fails_the_case_as_bad_request(http_client: str) -> None:
    received: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.append(await read_request(reader))

    observer = Observed()
    async with raw_server(handle) as server:
        model = model_for("http", server.url, http_client=http_client)
        adapter = build_adapter(model, observer=observer)
        try:
            with pytest.raises(AdapterError) as failure:
                await adapter.predict(case(1, math.nan))
        finally:
            await adapter.aclose()
    assert failure.value.kind == "bad_request"
    assert "NaN" in str(failure.value) or "ValueError" in str(failure.value)
    assert received == [] and observer.outcomes == []  # never sent, never retried
