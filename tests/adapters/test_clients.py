"""Both HTTP clients under the transport send the same requests: headers, no cookies kept,
and a proxy from the environment honoured (the fast client hands such requests to httpx)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from monitor.adapters import build_adapter
from monitor.adapters.clients import proxied
from monitor.adapters.http11 import Http11Transport
from tests.adapters.endpoints import Endpoint, RawServer
from tests.adapters.models import HEADER_SECRET, case, model_for

# Set by the connection and the ASGI server, not by the client.
_HOP = {"host", "content-length"}


async def sent_headers(endpoint: Endpoint, **overrides: Any) -> list[dict[str, str]]:
    model = build_adapter(model_for("http", endpoint.url, **overrides))
    try:
        for i in range(2):
            await model.predict(case(i, 1.0))
    finally:
        await model.aclose()
    return [{k: v for k, v in r.headers.items() if k not in _HOP} for r in endpoint.requests]


async def test_both_clients_send_the_same_headers(endpoint: Endpoint) -> None:
    fast = await sent_headers(endpoint, http_client="fast")
    endpoint.requests.clear()
    httpx_ = await sent_headers(endpoint, http_client="httpx")
    assert fast == httpx_
    assert fast[0]["x-api-token"] == HEADER_SECRET
    assert fast[0]["user-agent"].startswith("python-httpx/")
    assert fast[0]["content-type"] == "application/json"


async def test_cookies_an_answer_sets_are_not_sent_back(http_client: str) -> None:
    cookies: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            cookies.extend(
                line for line in head.split(b"\r\n") if line.lower().startswith(b"cookie")
            )
            body = b'{"prediction": "pos"}'
            writer.write(
                b"HTTP/1.1 200 OK\r\nSet-Cookie: session=abc; Path=/\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
            )
            await writer.drain()

    server = await RawServer(handle).start()
    model = build_adapter(model_for("http", server.url))
    try:
        for i in range(3):
            assert (await model.predict(case(i, 1.0))).value == "pos"
    finally:
        await model.aclose()
        await server.close()
    assert cookies == []


async def test_params_are_added_to_the_query_the_url_has(http_client: str) -> None:
    seen: list[bytes] = []
    server = await proxy_server(seen)  # answers like a model, notes the request line
    model = build_adapter(
        model_for("http", server.url, method="GET", params={"q": "{{x}}"}, body=None)
    )
    plain = build_adapter(model_for("http", server.url))
    try:
        await model.predict(case(0, 1.5))
        await plain.predict(case(0, 1.5))
    finally:
        await model.aclose()
        await plain.aclose()
        await server.close()
    assert seen == [
        b"GET /predict?key=querysecret&q=1.5 HTTP/1.1",
        b"POST /predict?key=querysecret HTTP/1.1",
    ]


async def proxy_server(seen: list[bytes]) -> RawServer:
    """A forward proxy that answers every request itself and notes its request line."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            if b"content-length: " in head.lower():
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                await reader.readexactly(length)
            seen.append(head.split(b"\r\n")[0])
            body = b'{"prediction": "via proxy"}'
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()

    return await RawServer(handle).start()


async def test_a_proxy_named_by_the_environment_is_used(
    monkeypatch: pytest.MonkeyPatch, http_client: str
) -> None:
    seen: list[bytes] = []
    proxy = await proxy_server(seen)
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    model = build_adapter(model_for("http", "http://model.invalid:9"))
    try:
        prediction = await model.predict(case(0, 1.0))
    finally:
        await model.aclose()
        await proxy.close()
    assert prediction.value == "via proxy"
    assert seen == [b"POST http://model.invalid:9/predict?key=querysecret HTTP/1.1"]


@pytest.mark.parametrize(
    ("environ", "url", "expected"),
    [
        ({}, "http://m.test/x", False),
        ({"HTTP_PROXY": "http://p:3128"}, "http://m.test/x", True),
        ({"HTTP_PROXY": "http://p:3128"}, "https://m.test/x", False),
        ({"HTTPS_PROXY": "http://p:3128"}, "https://m.test/x", True),
        ({"ALL_PROXY": "http://p:3128"}, "https://m.test/x", True),
        ({"HTTP_PROXY": "http://p:3128", "NO_PROXY": "m.test"}, "http://m.test/x", False),
        ({"HTTP_PROXY": "http://p:3128", "NO_PROXY": "other.test"}, "http://m.test/x", True),
    ],
    ids=["none", "http", "http-only", "https", "all", "no-proxy", "no-proxy-other"],
)
def test_which_urls_the_environment_proxies(
    monkeypatch: pytest.MonkeyPatch, environ: dict[str, str], url: str, expected: bool
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    assert proxied(url) is expected


async def test_the_fast_client_sends_straight_to_http11_transport(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    fast = build_adapter(model_for("http", "http://127.0.0.1:9", http_client="fast"))
    slow = build_adapter(model_for("http", "http://127.0.0.1:9", http_client="httpx"))
    try:
        assert isinstance(fast.transport.http.direct, Http11Transport)
        assert slow.transport.http.direct is None
    finally:
        await fast.aclose()
        await slow.aclose()
