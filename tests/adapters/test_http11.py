"""``Http11Transport`` against real loopback servers: uvicorn apps in a thread for what a
well-behaved server does (keep-alive, chunked bodies, ``Connection: close``, idle
time-outs, TLS), raw asyncio socket servers for the protocol faults an ASGI app cannot
produce (truncated answers, silent servers, connections dropped under a request)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import hashlib
import ipaddress
import json
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from monitor.adapters.http11 import Http11Transport
from tests.adapters.endpoints import gzip_answer, raw_server, read_request
from tests.servers import serve_in_thread

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def pattern(size: int) -> bytes:
    """``size`` bytes that are not all alike, so a misplaced chunk shows."""
    return (bytes(range(251)) * (size // 251 + 1))[:size]


class App:
    """A small ASGI app: ``/port`` answers with the client's port (which connection
    carried the request), ``/chunked`` streams, ``/close`` says ``Connection: close``,
    ``/large`` sends ``size`` bytes, ``/echo`` digests the request body, ``/slow``
    sleeps; ``peak`` is the most requests it held at once."""

    def __init__(self) -> None:
        self.in_flight = self.peak = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await self._answer(scope, query, body, send)
        finally:
            self.in_flight -= 1

    async def _answer(
        self, scope: dict[str, Any], query: dict[str, str], body: bytes, send: Any
    ) -> None:
        path, headers = scope["path"], dict(scope["headers"])
        if path == "/chunked":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            for i in range(int(query["n"])):
                piece = b"%d:" % i + pattern(int(query["size"]))
                await send({"type": "http.response.body", "body": piece, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            return
        extra: list[tuple[bytes, bytes]] = []
        if path == "/port":
            answer = json.dumps({"port": scope["client"][1]}).encode()
        elif path == "/close":
            answer, extra = b"bye", [(b"connection", b"close")]
        elif path == "/large":
            answer = pattern(int(query["size"]))
        elif path == "/echo":
            answer = json.dumps(
                {
                    "length": len(body),
                    "sha256": hashlib.sha256(body).hexdigest(),
                    "chunked": headers.get(b"transfer-encoding") == b"chunked",
                }
            ).encode()
        elif path == "/slow":
            await asyncio.sleep(float(query["s"]))
            answer = b"{}"
        else:
            raise AssertionError(path)
        length = [(b"content-length", str(len(answer)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": length + extra})
        if scope["method"] != "HEAD":
            await send({"type": "http.response.body", "body": answer})
        else:
            await send({"type": "http.response.body", "body": b""})


@pytest.fixture(scope="module")
def app() -> App:
    return App()


@pytest.fixture(scope="module")
def server(app: App) -> Iterator[str]:
    with serve_in_thread(app) as url:
        yield url


@contextlib.asynccontextmanager
async def client(**options: Any) -> AsyncIterator[tuple[httpx.AsyncClient, Http11Transport]]:
    timeout = options.pop("timeout", httpx.Timeout(10))
    transport = Http11Transport(**options)
    async with httpx.AsyncClient(transport=transport, timeout=timeout) as http:
        yield http, transport


async def eventually(condition: Callable[[], bool], what: str, timeout: float = 10) -> None:
    """Wait (without blocking the loop) until ``condition()`` holds."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


# -- a well-behaved server ---------------------------------------------------------------


async def test_keep_alive_connection_is_reused(server: str) -> None:
    async with client(max_connections=4) as (http, transport):
        ports = {(await http.get(f"{server}/port")).json()["port"] for _ in range(5)}
        assert len(ports) == 1
        assert transport.pool.open_connections == 1 and transport.pool.idle_connections == 1


async def test_chunked_body_is_reassembled_and_the_connection_kept(server: str) -> None:
    async with client() as (http, transport):
        response = await http.get(f"{server}/chunked", params={"n": 40, "size": 3000})
        first = (await http.get(f"{server}/port")).json()["port"]
        again = (await http.get(f"{server}/port")).json()["port"]
        assert transport.pool.open_connections == 1
    assert response.headers["transfer-encoding"] == "chunked"
    assert response.content == b"".join(b"%d:" % i + pattern(3000) for i in range(40))
    assert first == again


async def test_connection_close_answer_is_not_reused(server: str) -> None:
    async with client() as (http, transport):
        for _ in range(3):
            response = await http.get(f"{server}/close")
            assert response.text == "bye"
            assert transport.pool.open_connections == 0


async def test_head_answer_has_no_body_and_keeps_the_connection(server: str) -> None:
    async with client() as (http, transport):
        head = await http.head(f"{server}/large", params={"size": 5000})
        ports = {(await http.get(f"{server}/port")).json()["port"] for _ in range(2)}
        assert transport.pool.open_connections == 1
    assert head.headers["content-length"] == "5000" and head.content == b""
    assert len(ports) == 1


async def test_large_bodies_both_ways(server: str) -> None:
    size = 8 * 1024 * 1024 + 7
    upload = pattern(size)
    async with client() as (http, _):
        echoed = (await http.post(f"{server}/echo", content=upload)).json()
        download = await http.get(f"{server}/large", params={"size": size})
    assert echoed == {
        "length": size,
        "sha256": hashlib.sha256(upload).hexdigest(),
        "chunked": False,
    }
    assert len(download.content) == size and download.content == upload


async def test_large_body_read_as_a_stream_arrives_whole(server: str) -> None:
    size = 4 * 1024 * 1024
    digest = hashlib.sha256()
    async with client() as (http, transport):
        async with http.stream("GET", f"{server}/large", params={"size": size}) as response:
            async for piece in response.aiter_raw():
                digest.update(piece)
                await asyncio.sleep(0)  # a slow reader: the socket must pause, not pile up
        assert transport.pool.idle_connections == 1
    assert digest.hexdigest() == hashlib.sha256(pattern(size)).hexdigest()


async def test_streamed_request_body_is_sent_chunked(server: str) -> None:
    async def body() -> AsyncIterator[bytes]:
        for i in range(20):
            yield pattern(10_000 + i)

    expected = b"".join(pattern(10_000 + i) for i in range(20))
    async with client() as (http, _):
        echoed = (await http.post(f"{server}/echo", content=body())).json()
    assert echoed == {
        "length": len(expected),
        "sha256": hashlib.sha256(expected).hexdigest(),
        "chunked": True,
    }


async def test_idle_connection_closed_by_the_server_is_replaced() -> None:
    with serve_in_thread(App(), timeout_keep_alive=1) as url:
        async with client() as (http, transport):
            first = (await http.get(f"{url}/port")).json()["port"]
            (connection,) = transport.pool.connections
            await eventually(lambda: not connection.usable, "the server to drop the connection")
            second = await http.get(f"{url}/port")
            assert transport.pool.open_connections == 1
    assert second.status_code == 200 and second.json()["port"] != first


async def test_requests_over_the_pool_limit_wait_for_a_connection() -> None:
    app = App()
    with serve_in_thread(app) as url:
        async with client(max_connections=2) as (http, transport):
            answers = await asyncio.gather(
                *(http.get(f"{url}/slow", params={"s": 0.1}) for _ in range(8))
            )
            assert transport.pool.open_connections == 2
    assert [a.status_code for a in answers] == [200] * 8
    assert app.peak == 2


# -- failures ----------------------------------------------------------------------------


async def test_refused_port_is_a_connect_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with client() as (http, transport):
        with pytest.raises(httpx.ConnectError):
            await http.get(f"http://127.0.0.1:{port}/")
        assert transport.pool.open_connections == 0


async def test_unanswered_connect_is_a_connect_timeout() -> None:
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
            async with client(timeout=httpx.Timeout(10, connect=0.2)) as (http, transport):
                with pytest.raises(httpx.ConnectTimeout):
                    await http.get(f"http://127.0.0.1:{port}/")
                assert transport.pool.open_connections == 0
        finally:
            for _, writer in held:
                writer.close()


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (b"", "without sending a response"),
        (b"HTTP/1.1 200 OK\r\nContent-Le", "before the end of the response"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789", "before the end"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", "before the end"),
        (b"HTTP/1.1 2x0 OK\r\n\r\n", "malformed response"),
    ],
    ids=["nothing", "truncated-head", "truncated-body", "truncated-chunks", "malformed"],
)
async def test_truncated_or_malformed_answer_is_a_remote_protocol_error(
    answer: bytes, message: str
) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer)
        await writer.drain()
        writer.close()

    async with raw_server(handle) as server, client() as (http, transport):
        with pytest.raises(httpx.RemoteProtocolError, match=message):
            await http.get(server.url)
        assert transport.pool.open_connections == 0


async def test_reset_connection_is_a_read_error() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n01234")
        await writer.drain()
        writer.transport.abort()

    async with raw_server(handle) as server, client() as (http, _):
        with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
            await http.get(server.url)


@pytest.mark.parametrize(
    "answer",
    [b"", b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234"],
    ids=["no-head", "half-a-body"],
)
async def test_silent_server_is_a_read_timeout(answer: bytes) -> None:
    released = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer)
        await released.wait()

    async with raw_server(handle) as server:
        async with client(timeout=httpx.Timeout(10, read=0.2)) as (http, transport):
            with pytest.raises(httpx.ReadTimeout):
                await http.get(server.url)
            assert transport.pool.open_connections == 0
        released.set()


async def test_server_that_does_not_read_the_body_is_a_write_timeout() -> None:
    released = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")  # and never the body
        await released.wait()

    async with raw_server(handle) as server:
        async with client(timeout=httpx.Timeout(10, write=0.2)) as (http, transport):
            with pytest.raises(httpx.WriteTimeout):
                await http.post(server.url, content=pattern(64 * 1024 * 1024))
            assert transport.pool.open_connections == 0
        released.set()


def keep_alive_server(answered_per_connection: int) -> tuple[Handler, dict[str, int]]:
    """Answers the first ``answered_per_connection`` requests of each connection with
    keep-alive, then reads the next one and closes without a byte: what a server does
    when it drops an idle connection just as a request arrives."""
    seen = {"connections": 0, "requests": 0}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen["connections"] += 1
        for _ in range(answered_per_connection):
            await read_request(reader)
            seen["requests"] += 1
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
        await read_request(reader)
        seen["requests"] += 1
        writer.close()

    return handle, seen


async def test_reused_connection_dropped_before_the_answer_is_retried_once() -> None:
    handle, seen = keep_alive_server(answered_per_connection=1)
    async with raw_server(handle) as server, client() as (http, transport):
        assert (await http.get(server.url)).text == "ok"
        second = await http.post(server.url, json={"x": 1})
        assert transport.pool.open_connections == 1
    assert second.text == "ok"
    # The dropped request and its retry on a fresh connection.
    assert seen == {"connections": 2, "requests": 3}


async def test_fresh_connection_dropped_before_the_answer_is_not_retried() -> None:
    handle, seen = keep_alive_server(answered_per_connection=0)
    async with raw_server(handle) as server, client() as (http, transport):
        with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
            await http.get(server.url)
        assert transport.pool.open_connections == 0
    assert seen == {"connections": 1, "requests": 1}


async def test_stray_bytes_after_an_answer_retire_the_connection() -> None:
    connections = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        while True:
            await read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokGARBAGE")
            await writer.drain()

    async with raw_server(handle) as server, client() as (http, _):
        assert [(await http.get(server.url)).text for _ in range(3)] == ["ok"] * 3
    assert connections == 3


async def test_bytes_arriving_on_an_idle_connection_retire_it() -> None:
    answered, goodbye = asyncio.Event(), asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        answered.set()
        await goodbye.wait()
        writer.write(b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        await asyncio.Event().wait()  # and keep the socket open

    async with raw_server(handle) as server, client() as (http, transport):
        assert (await http.get(server.url)).text == "ok"
        (connection,) = transport.pool.connections
        goodbye.set()
        await eventually(lambda: not connection.usable, "the stray answer to arrive")
        assert (await http.get(server.url)).text == "ok"
        assert connection not in transport.pool.connections


async def test_a_slow_reader_holds_the_sender_back() -> None:
    size = 64 * 1024 * 1024  # far more than the kernel's socket buffers hold
    sent = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        writer.write(pattern(size))
        await writer.drain()
        sent.set()

    async with (
        raw_server(handle) as server,
        client() as (http, _),
        http.stream("GET", server.url) as response,
    ):
        pieces = response.aiter_raw()
        received = len(await anext(pieces))
        # Nobody reads: the transport stops reading, so the server cannot finish.
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.5):
                await sent.wait()
        async for piece in pieces:
            received += len(piece)
    assert received == size and sent.is_set()


async def test_informational_answer_is_skipped() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(
            b"HTTP/1.1 100 Continue\r\n\r\n"
            b"HTTP/1.1 201 Created\r\nContent-Length: 4\r\nX-Id: 7\r\n\r\ndone"
        )
        await writer.drain()

    async with raw_server(handle) as server, client() as (http, _):
        response = await http.put(server.url, content=b"x")
    assert (response.status_code, response.headers["x-id"], response.text) == (201, "7", "done")
    assert response.reason_phrase == "Created"


async def test_answer_without_a_length_ends_with_the_connection() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nhello, ")
        await writer.drain()
        writer.write(b"world")
        writer.close()

    async with raw_server(handle) as server, client() as (http, transport):
        response = await http.get(server.url)
        assert transport.pool.open_connections == 0
    assert response.text == "hello, world"


async def test_compressed_answer_is_decoded_by_httpx() -> None:
    async with (
        raw_server(gzip_answer(b'{"prediction": "pos"}')) as server,
        client() as (
            http,
            _,
        ),
    ):
        response = await http.get(server.url)
    assert response.json() == {"prediction": "pos"}


async def test_pool_timeout_when_every_connection_is_busy() -> None:
    released = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await released.wait()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()

    async with raw_server(handle) as server:
        timeout = httpx.Timeout(10, pool=0.1)
        async with client(max_connections=1, timeout=timeout) as (http, transport):
            busy = asyncio.create_task(http.get(server.url))
            await eventually(lambda: transport.pool.open_connections == 1, "the first request")
            with pytest.raises(httpx.PoolTimeout):
                await http.get(server.url)
            released.set()
            assert (await busy).text == "ok"
            assert transport.pool.open_connections == 1


async def test_cancelled_request_gives_its_connection_back() -> None:
    arrived = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        arrived.set()
        await asyncio.Event().wait()

    async with raw_server(handle) as server, client(max_connections=1) as (http, transport):
        request = asyncio.create_task(http.get(server.url))
        await arrived.wait()
        request.cancel()
        with pytest.raises(asyncio.CancelledError):
            await request
        assert transport.pool.open_connections == 0
        with pytest.raises(httpx.ReadTimeout):  # the slot is free again
            await http.get(server.url, timeout=httpx.Timeout(10, read=0.1))


async def test_header_that_would_split_the_request_is_refused(server: str) -> None:
    async with client() as (http, _):
        with pytest.raises(httpx.LocalProtocolError):
            await http.get(f"{server}/port", headers={"X-Note": "a\r\nX-Injected: b"})


async def test_unsupported_scheme() -> None:
    async with Http11Transport() as transport:
        with pytest.raises(httpx.UnsupportedProtocol):
            await transport.handle_async_request(httpx.Request("GET", "ftp://127.0.0.1/"))


def test_works_on_uvloop(server: str) -> None:
    # uvicorn's default loop when uvloop is installed (uvicorn[standard] installs it);
    # its transports are not asyncio.Transport subclasses.
    import uvloop

    async def scenario() -> tuple[set[int], bytes]:
        async with client() as (http, transport):
            ports = {(await http.get(f"{server}/port")).json()["port"] for _ in range(3)}
            chunked = await http.get(f"{server}/chunked", params={"n": 3, "size": 10})
            assert transport.pool.open_connections == 1
            return ports, chunked.content

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        ports, chunked = runner.run(scenario())
    assert len(ports) == 1
    assert chunked == b"".join(b"%d:" % i + pattern(10) for i in range(3))


# -- TLS ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "monitor test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory = tmp_path_factory.mktemp("tls")
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def test_https_with_a_trusted_certificate(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    trusted = ssl.create_default_context(cafile=str(cert))
    with serve_in_thread(App(), ssl_certfile=str(cert), ssl_keyfile=str(key)) as url:
        assert url.startswith("https://")
        async with client(ssl_context=trusted) as (http, transport):
            ports = {(await http.get(f"{url}/port")).json()["port"] for _ in range(3)}
            assert transport.pool.open_connections == 1
        async with client() as (http, _):  # the system's CAs do not know this certificate
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await http.get(f"{url}/port")
    assert len(ports) == 1
