"""Both HTTP clients under the transport send the same requests: headers, no cookies kept,
params merged into the URL's query, the environment's proxy honoured (real proxies on
loopback: ``proxy.py``, a forward proxy for a POST and a ``CONNECT`` tunnel for HTTPS,
see ``proxies``) and TLS checked as the model's keys say."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from monitor.adapters import build_adapter
from monitor.errors import AdapterError
from tests.adapters.endpoints import Endpoint, RawServer, create_app
from tests.adapters.models import HEADER_SECRET, case, model_for
from tests.adapters.proxies import VIA, connect_tunnel, forwarding_proxy
from tests.servers import serve_in_thread, wait_for

# Set by the connection and the ASGI server, not by the client.
_HOP = {"host", "content-length"}
_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture
def no_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """An environment that names no proxy, in either spelling."""
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


async def sent_headers(endpoint: Endpoint, **overrides: Any) -> list[dict[str, str]]:
    model = build_adapter(model_for("http", endpoint.url, **overrides))
    try:
        for i in range(2):
            await model.predict(case(i, 1.0))
    finally:
        await model.aclose()
    return [{k: v for k, v in r.headers.items() if k not in _HOP} for r in endpoint.requests]


async def test_both_clients_send_the_same_headers(endpoint: Endpoint) -> None:
    aiohttp_ = await sent_headers(endpoint, http_client="aiohttp")
    endpoint.requests.clear()
    httpx_ = await sent_headers(endpoint, http_client="httpx")
    assert aiohttp_ == httpx_
    assert aiohttp_[0]["x-api-token"] == HEADER_SECRET
    assert aiohttp_[0]["user-agent"].startswith("python-httpx/")
    assert aiohttp_[0]["content-type"] == "application/json"


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


async def noting_server(seen: list[bytes]) -> RawServer:
    """Answers every request like a model and notes its request line."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            if b"content-length: " in head.lower():
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                await reader.readexactly(length)
            seen.append(head.split(b"\r\n")[0])
            body = b'{"prediction": "pos"}'
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()

    return await RawServer(handle).start()


async def test_params_are_added_to_the_query_the_url_has(http_client: str) -> None:
    seen: list[bytes] = []
    server = await noting_server(seen)
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


# -- a proxy named by the environment ------------------------------------------------------


@contextlib.contextmanager
def forward_proxy(directory: Path) -> Iterator[str]:
    """proxy.py on a free loopback port, in its own process; yields its URL. It forwards
    plain HTTP requests with ``Via: 1.1 proxy.py ...`` added."""
    port_file = directory / "proxy.port"
    options = {"--hostname": "127.0.0.1", "--port": "0", "--port-file": str(port_file)}
    options |= {"--num-acceptors": "1", "--num-workers": "1", "--log-level": "e"}
    process = subprocess.Popen(
        [sys.executable, "-m", "proxy", *(part for pair in options.items() for part in pair)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for(
            lambda: port_file.exists() and port_file.read_text().strip(),
            timeout=30,
            what="the proxy to listen",
        )
        yield f"http://127.0.0.1:{port_file.read_text().strip()}"
    finally:
        process.terminate()
        _, errors = process.communicate(timeout=30)
        assert process.returncode in (0, -15), errors


@pytest.fixture(scope="module")
def proxy_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with forward_proxy(tmp_path_factory.mktemp("proxy")) as url:
        yield url


def via(endpoint: Endpoint) -> list[str | None]:
    """Each request's ``Via`` header as the endpoint saw it (None: it came straight)."""
    return [r.headers.get("via") for r in endpoint.requests]


async def ask_once(url: str, x: float) -> str:
    # A GET, without a body: proxy.py 2.4 adds a second Content-Length to a forwarded
    # request whose header names are lower case (as aiohttp sends httpx's), which the
    # endpoint refuses; and it adds Via only to the first request of a connection.
    config = model_for("http", url, method="GET", params={"x": "{{x}}"}, body=None)
    model = build_adapter(config)
    try:
        return str((await model.predict(case(0, x))).value)
    finally:
        await model.aclose()


async def test_a_proxy_named_by_the_environment_carries_the_request(
    endpoint: Endpoint, proxy_url: str, no_proxy_environment: pytest.MonkeyPatch, http_client: str
) -> None:
    no_proxy_environment.setenv("HTTP_PROXY", proxy_url)
    assert await ask_once(endpoint.url, 1.0) == "pos"
    (seen,) = via(endpoint)
    assert seen is not None and "proxy.py" in seen


async def test_a_post_goes_through_the_proxy_with_its_json_body(
    endpoint: Endpoint, no_proxy_environment: pytest.MonkeyPatch, http_client: str
) -> None:
    # The model's own call: a POST with a JSON body, through a forward proxy of our own
    # (proxy.py mangles a forwarded request with a body, see ``ask_once``).
    async with forwarding_proxy() as proxy:
        no_proxy_environment.setenv("HTTP_PROXY", proxy.url)
        model = build_adapter(model_for("http", endpoint.url))
        try:
            predictions = [await model.predict(case(i, x)) for i, x in enumerate([1.0, -2.5])]
        finally:
            await model.aclose()
    assert [p.value for p in predictions] == ["pos", "neg"]
    target = f"POST {endpoint.url}/predict?key=querysecret"
    assert proxy.carried == [target, target]
    assert [r.body for r in endpoint.requests] == [{"x": 1.0}, {"x": -2.5}]
    assert [r.headers.get("via") for r in endpoint.requests] == [VIA, VIA]
    assert endpoint.requests[0].headers["x-api-token"] == HEADER_SECRET


@pytest.mark.parametrize("no_proxy", ["127.0.0.1", "*"], ids=["host", "everything"])
async def test_no_proxy_sends_straight_to_the_model(
    endpoint: Endpoint,
    proxy_url: str,
    no_proxy_environment: pytest.MonkeyPatch,
    http_client: str,
    no_proxy: str,
) -> None:
    no_proxy_environment.setenv("HTTP_PROXY", proxy_url)
    no_proxy_environment.setenv("NO_PROXY", no_proxy)
    assert await ask_once(endpoint.url, -1.0) == "neg"
    assert via(endpoint) == [None]


async def test_an_unreachable_proxy_is_a_connection_error(
    endpoint: Endpoint, no_proxy_environment: pytest.MonkeyPatch, http_client: str
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again before the request: refused
    no_proxy_environment.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
    model = build_adapter(model_for("http", endpoint.url, retry={"attempts": 0}))
    try:
        with pytest.raises(AdapterError) as failure:
            await model.predict(case(0, 1.0))
    finally:
        await model.aclose()
    assert failure.value.kind == "connection" and endpoint.requests == []


# -- TLS -----------------------------------------------------------------------------------


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


@pytest.fixture(scope="module")
def https_endpoint(certificate: tuple[Path, Path]) -> Iterator[Endpoint]:
    cert, key = certificate
    endpoint = Endpoint()
    with serve_in_thread(create_app(endpoint), ssl_certfile=str(cert), ssl_keyfile=str(key)) as url:
        assert url.startswith("https://")
        endpoint.url = url
        yield endpoint


async def predicted(url: str, **overrides: Any) -> str:
    model = build_adapter(model_for("http", url, retry={"attempts": 0}, **overrides))
    try:
        return str((await model.predict(case(0, 1.0))).value)
    finally:
        await model.aclose()


async def test_https_with_the_certificate_as_ca_bundle(
    https_endpoint: Endpoint, certificate: tuple[Path, Path], http_client: str
) -> None:
    assert await predicted(https_endpoint.url, ca_bundle=str(certificate[0])) == "pos"


async def test_https_without_verification(https_endpoint: Endpoint, http_client: str) -> None:
    assert await predicted(https_endpoint.url, tls_verify=False) == "pos"


async def test_a_certificate_the_system_does_not_trust_fails_the_connection(
    https_endpoint: Endpoint, http_client: str
) -> None:
    with pytest.raises(AdapterError) as failure:
        await predicted(https_endpoint.url)
    assert failure.value.kind == "connection" and "ConnectError" in str(failure.value)


async def test_https_goes_through_the_proxys_tunnel(
    https_endpoint: Endpoint,
    certificate: tuple[Path, Path],
    no_proxy_environment: pytest.MonkeyPatch,
    http_client: str,
) -> None:
    # HTTPS_PROXY: the client asks the proxy for a tunnel (CONNECT) and speaks TLS to the
    # model through it, checking the model's certificate as without a proxy.
    https_endpoint.requests.clear()
    async with connect_tunnel() as proxy:
        no_proxy_environment.setenv("HTTPS_PROXY", proxy.url)
        assert await predicted(https_endpoint.url, ca_bundle=str(certificate[0])) == "pos"
        with pytest.raises(AdapterError) as failure:
            await predicted(https_endpoint.url)  # the system does not trust it
    authority = https_endpoint.url.removeprefix("https://")
    assert proxy.carried == [f"CONNECT {authority}", f"CONNECT {authority}"]
    assert failure.value.kind == "connection"
    assert [r.body for r in https_endpoint.requests] == [{"x": 1.0}]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"ca_bundle": "/nonexistent/ca.pem"}, "no readable file at '/nonexistent/ca.pem'"),
        ({"ca_bundle": "{cert}", "tls_verify": False}, "ca_bundle is set but tls_verify"),
    ],
    ids=["missing-bundle", "bundle-without-verification"],
)
def test_tls_keys_are_checked_at_load(
    certificate: tuple[Path, Path], overrides: dict[str, Any], message: str
) -> None:
    if overrides.get("ca_bundle") == "{cert}":
        overrides = {**overrides, "ca_bundle": str(certificate[0])}
    with pytest.raises(ValidationError, match=message):
        model_for("http", "https://127.0.0.1:9", **overrides)


# -- event loops ---------------------------------------------------------------------------


def test_works_on_uvloop(endpoint: Endpoint, http_client: str) -> None:
    # uvicorn's default loop when uvloop is installed (uvicorn[standard] installs it): the
    # daemon's requests run on it.
    import uvloop

    async def scenario() -> list[str]:
        model = build_adapter(model_for("http", endpoint.url))
        try:
            return [str((await model.predict(case(i, i - 1.0))).value) for i in range(3)]
        finally:
            await model.aclose()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        assert runner.run(scenario()) == ["neg", "pos", "pos"]
