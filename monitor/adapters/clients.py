"""The HTTP client under one model's ``Transport``: who sends a request, and how.

- ``http_client = "fast"`` (the default): ``Http11Transport.exchange``. The request is
  encoded here, straight to bytes: the request line and the headers (``Host``, then the
  client's: httpx's defaults and the configured ones) are encoded once per method and URL,
  then each request adds its ``Content-Length``, ``Content-Type`` and JSON body, encoded
  as httpx encodes it. The message is byte for byte the one httpx would send (a test
  compares them), and the answer comes back whole as an ``Answer``. Anything this does not
  encode itself (a body other than JSON, a configured header httpx would place elsewhere)
  is encoded through an ``httpx.Request`` and still sent by ``exchange``. Building
  ``httpx.Request`` and ``httpx.Response`` objects cost more client time than the transport
  itself (``docs/benchmarks.md``).
- a transport injected by a test (``httpx.MockTransport``): one ``httpx.AsyncClient``
  holds the configuration; each request is an ``httpx.Request`` handed to the transport
  directly. ``AsyncClient.request`` would also parse the URL again, merge cookies, run the
  auth and redirect flows and event hooks: a model request needs none of that (redirects
  are not followed, credentials travel in headers, cookies are never kept, by any client).
- ``http_client = "httpx"``: httpx's own transport, ``concurrency`` connections in pools of
  at most ``POOL_SIZE`` clients, through ``AsyncClient.request``.
- When the environment names a proxy for the model's URL (``HTTP_PROXY``, ``HTTPS_PROXY``,
  ``ALL_PROXY``, less ``NO_PROXY``), ``"fast"`` means ``"httpx"``: httpx routes requests
  to the proxy (it ignores the environment for a client built on a given transport).
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import json
import ssl
import urllib.request
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

from monitor.adapters.http11 import Http11Transport
from monitor.adapters.http11.connection import Origin, encode_head, encode_headers, request_line
from monitor.config import AnyModelConfig

# httpcore's pool scans every connection for every queued request: its cost per request
# grows with the pool's size squared. With ``http_client = "httpx"``, several small pools
# keep that scan short (measured in bench/runner_throughput.py).
POOL_SIZE = 2

# Parsed URLs kept per model: its adapter asks a handful of URLs, over and over.
_URL_CACHE_SIZE = 64


class HttpClient:
    """Sends one model's requests; ``request`` returns the answer with its body read."""

    def __init__(
        self,
        config: AnyModelConfig,
        transport: httpx.AsyncBaseTransport | None,
        extra_headers: dict[str, str],
    ) -> None:
        secrets = {name: value.get_secret_value() for name, value in config.headers.items()}
        headers = {**secrets, **extra_headers}
        total = config.concurrency
        tls: ssl.SSLContext | bool = True
        if transport is None and config.http_client == "fast" and not proxied(config.url):
            # Makes its TLS context when it first meets an https URL, as httpx would.
            transport = Http11Transport(max_connections=total)
        elif transport is None:
            # One TLS context for every pool: loading the CA bundle takes tens of ms.
            tls = httpx.create_ssl_context()
        # The transport requests go to straight, or None: through AsyncClient.request.
        self.direct = transport
        count = 1 if transport is not None else -(-total // POOL_SIZE)
        # Free connections per client: a request goes to the client with the most.
        self._free = [total // count + (1 if i < total % count else 0) for i in range(count)]
        self.clients = [
            httpx.AsyncClient(
                transport=transport,
                timeout=config.timeout.total_seconds(),
                headers=headers,
                limits=httpx.Limits(max_connections=size, max_keepalive_connections=size),
                follow_redirects=False,
                verify=tls,
                cookies=_no_cookies(),
            )
            for size in self._free
        ]
        self._headers = self.clients[0].headers
        self._timeouts: dict[str, float | None] = self.clients[0].timeout.as_dict()
        self._extensions: dict[str, Any] = {"timeout": self._timeouts}
        self._urls: dict[str, httpx.URL] = {}
        self._fast = transport if isinstance(transport, Http11Transport) else None
        self._encoder = _Encoder(self._headers)

    async def request(
        self, method: str, url: str, kwargs: dict[str, Any], *, total: float | None = None
    ) -> Answered:
        """Send a request and read its whole answer, within ``total`` seconds. Raises
        what httpx raises, ``TimeoutError`` when ``total`` passed, and ``ValueError`` for
        a JSON body that cannot be encoded (NaN, say).

        ``params`` are added to the query string ``url`` already has (httpx 0.28 would
        replace it, dropping a configured ``?api-version=...``).
        """
        params = kwargs.get("params")
        if "params" in kwargs:
            kwargs = {k: v for k, v in kwargs.items() if k != "params"}
        target = self._url(url)
        if params:
            target = target.copy_merge_params(params)
        if self._fast is not None:
            # The URL alone names the head to reuse; with params, each differs.
            key = None if params else (method, url)
            origin, message = self._encoder.encode(method, target, key, kwargs)
            return await self._fast.exchange(
                origin, message, head_only=method == "HEAD", timeouts=self._timeouts, total=total
            )
        async with asyncio.timeout(total):
            if self.direct is not None:
                return await self._send(self.direct, method, target, kwargs)
            free = self._free
            # There is always a free connection: the limit never lets more requests out.
            i = free.index(max(free)) if len(free) > 1 else 0
            free[i] -= 1
            try:
                return await self.clients[i].request(method, target, **kwargs)
            finally:
                free[i] += 1

    async def _send(
        self,
        transport: httpx.AsyncBaseTransport,
        method: str,
        url: httpx.URL,
        kwargs: dict[str, Any],
    ) -> httpx.Response:
        request = httpx.Request(
            method, url, headers=self._headers, extensions=self._extensions, **kwargs
        )
        response = await transport.handle_async_request(request)
        response.request = request
        try:
            await response.aread()
        finally:
            await response.aclose()
        return response

    def _url(self, url: str) -> httpx.URL:
        parsed = self._urls.get(url)
        if parsed is None:
            if len(self._urls) >= _URL_CACHE_SIZE:
                self._urls.clear()
            parsed = self._urls[url] = httpx.URL(url)
        return parsed

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()


class Unsendable(ValueError):
    """A request that cannot be encoded; the message names why, never a value."""


class Answered(Protocol):
    """What ``HttpClient.request`` returns: an ``httpx.Response`` or an ``Answer``."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> httpx.Headers: ...

    def json(self) -> Any: ...


_PORTS = {"http": 80, "https": 443}
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# Headers httpx sets itself, and places by rules of its own, when a request has them.
_PLACED = frozenset({b"host", b"content-length", b"content-type", b"transfer-encoding"})


def origin_of(url: httpx.URL) -> Origin:
    """Scheme, host and port; ``httpx.UnsupportedProtocol`` for anything but http(s)."""
    scheme = url.scheme
    if scheme not in _PORTS:
        raise httpx.UnsupportedProtocol(
            f"unsupported URL scheme {scheme!r}: expected http or https"
        )
    if not url.host:
        raise httpx.UnsupportedProtocol("the URL has no host")
    return scheme, url.host, url.port or _PORTS[scheme]


class _Encoder:
    """Encodes requests to bytes as ``httpx.Request`` would. A request with a JSON body
    (or none) is encoded here: the request line, ``Host``, the client's headers, then
    ``Content-Length`` and ``Content-Type``; the part before the body's headers is kept
    per method and URL. Anything else goes through an ``httpx.Request``."""

    def __init__(self, headers: httpx.Headers) -> None:
        self._headers = headers
        # Configured headers httpx would place differently: leave those requests to it.
        self._plain = not any(name.lower() in _PLACED for name, _ in headers.raw)
        self._heads: dict[tuple[str, str], tuple[Origin, bytes]] = {}

    def encode(
        self,
        method: str,
        url: httpx.URL,
        key: tuple[str, str] | None,
        kwargs: dict[str, Any],
    ) -> tuple[Origin, bytes]:
        """Where the request goes and its whole message. ``key`` names the method and
        URL whose head may be reused (None: build it afresh)."""
        if not self._plain or kwargs.keys() - {"json"}:
            try:
                request = httpx.Request(method, url, headers=self._headers, **kwargs)
            except ValueError as exc:
                raise _unencodable(exc) from None
            return origin_of(url), encode_head(request) + request.read()
        if "json" not in kwargs:
            if method in _BODY_METHODS:  # httpx puts Content-Length: 0 right after Host
                request = httpx.Request(method, url, headers=self._headers)
                return origin_of(url), encode_head(request)
            origin, head = self._head(method, url, key)
            return origin, head + b"\r\n"
        try:
            body = json.dumps(
                kwargs["json"], ensure_ascii=False, separators=(",", ":"), allow_nan=False
            ).encode()
        except ValueError as exc:
            raise _unencodable(exc) from None
        origin, head = self._head(method, url, key)
        return origin, b"%sContent-Length: %d\r\nContent-Type: application/json\r\n\r\n%s" % (
            head,
            len(body),
            body,
        )

    def _head(
        self, method: str, url: httpx.URL, key: tuple[str, str] | None
    ) -> tuple[Origin, bytes]:
        if key is not None and (known := self._heads.get(key)) is not None:
            return known
        head = request_line(method.upper(), url.raw_path) + encode_headers(
            [(b"Host", url.netloc), *self._headers.raw], end=False
        )
        known = origin_of(url), head
        if key is not None:
            if len(self._heads) >= _URL_CACHE_SIZE:
                self._heads.clear()
            self._heads[key] = known
        return known


def _unencodable(error: ValueError) -> ValueError:
    """``Unsendable`` for what ``json`` refuses (NaN, an infinity); any other error as it
    is (the transport reports only its type)."""
    if "JSON" not in str(error):
        return error
    return Unsendable("the JSON body holds NaN or an infinity, which JSON cannot carry")


def _no_cookies() -> http.cookiejar.CookieJar:
    """A jar that keeps no cookie: every request to a model stands on its own."""
    return http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))


def proxied(url: str) -> bool:
    """Whether the environment sends requests to ``url`` through a proxy."""
    parts = urlsplit(url)
    proxies = urllib.request.getproxies_environment()
    if not (proxies.get(parts.scheme) or proxies.get("all")):
        return False
    return not urllib.request.proxy_bypass(parts.hostname or "")
