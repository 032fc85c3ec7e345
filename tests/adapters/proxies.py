"""Two loopback proxies for the tests that go through one, each on the test's event loop:
a forward proxy for plain HTTP (``HTTP_PROXY``) on aiohttp's server and client, and a
``CONNECT`` tunnel for HTTPS (``HTTPS_PROXY``) on asyncio streams. Each keeps what it
carried, so a test can tell its request went through."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

VIA = "1.1 monitor-test-proxy"

# Set per connection: the forward proxy does not pass them on.
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "host"}


@dataclass
class Proxy:
    url: str = ""
    carried: list[str] = field(default_factory=list)
    """What each request asked the proxy for: ``METHOD absolute-URL`` when forwarded,
    ``CONNECT host:port`` when tunnelled."""


@contextlib.asynccontextmanager
async def forwarding_proxy() -> AsyncIterator[Proxy]:
    """A forward proxy: it sends each request (absolute-form target, as a client sends one
    to a proxy) on to its URL, body and headers as they came, with ``Via`` added."""
    proxy = Proxy()
    session = aiohttp.ClientSession(trust_env=False, auto_decompress=False)

    async def forward(request: web.Request) -> web.StreamResponse:
        proxy.carried.append(f"{request.method} {request.url}")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        headers["Via"] = VIA
        async with session.request(
            request.method,
            request.url,
            headers=headers,
            data=await request.read(),
            allow_redirects=False,
        ) as answer:
            body = await answer.read()
            kept = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP_BY_HOP}
            kept.pop("Content-Length", None)
            return web.Response(status=answer.status, headers=kept, body=body)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        proxy.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        yield proxy
    finally:
        await runner.cleanup()
        await session.close()


@contextlib.asynccontextmanager
async def connect_tunnel() -> AsyncIterator[Proxy]:
    """A ``CONNECT`` proxy: it answers ``200`` and then pipes bytes both ways between the
    client and the host:port it named (TLS goes through it untouched)."""
    proxy = Proxy()
    pipes: set[asyncio.Task[None]] = set()

    async def tunnel(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        method, target, _ = head.split("\r\n", 1)[0].split(" ", 2)
        proxy.carried.append(f"{method} {target}")
        if method != "CONNECT":
            writer.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            writer.close()
            return
        host, port = target.rsplit(":", 1)
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        both = asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        await both

    def track(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.ensure_future(tunnel(reader, writer))
        pipes.add(task)
        task.add_done_callback(pipes.discard)

    server = await asyncio.start_server(track, "127.0.0.1", 0)
    try:
        proxy.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        yield proxy
    finally:
        server.close()
        for task in list(pipes):
            task.cancel()
        await asyncio.gather(*pipes, return_exceptions=True)
        await server.wait_closed()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()
