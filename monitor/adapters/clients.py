"""The HTTP client under one model's ``Transport``: ``httpx.AsyncClient`` over a maintained
transport, chosen by the model's ``http_client``.

- ``"aiohttp"`` (the default): httpx-aiohttp's ``AiohttpTransport``, aiohttp's connection
  pool and C parser behind httpx's API; one client, ``concurrency`` connections.
- ``"httpx"``: httpx's own transport (httpcore), ``concurrency`` connections in pools of at
  most ``POOL_SIZE``.
- a transport injected by a test (``httpx.MockTransport``): one client over it.

Either way the environment's proxies are honoured (``HTTP_PROXY``, ``HTTPS_PROXY``,
``ALL_PROXY``, less ``NO_PROXY``: httpx mounts a proxy transport per pattern), the server's
certificate is checked as ``tls_verify`` and ``ca_bundle`` say, redirects are not followed
and cookies are never kept: every request to a model stands on its own.

Two things aiohttp does differently are undone here, so both clients behave alike:
aiohttp sends an idempotent request (``GET``, ``PUT``) a second time when its connection
drops, which would let a case reach the endpoint more often than ``retry.attempts``
allows; and httpx-aiohttp reports some of aiohttp's errors as the wrong httpx class (a
refused connection as ``ConnectTimeout``), or not at all (a malformed answer).
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import ssl
from typing import Any

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport, HttpxAiohttpClient

from monitor.adapters.exchange import CURRENT, Exchange, aiohttp_trace
from monitor.config import AnyModelConfig
from monitor.errors import ConfigError

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
        pooled = transport is None and config.http_client == "httpx"
        count = -(-total // POOL_SIZE) if pooled else 1
        client = AiohttpClient if transport is None and not pooled else httpx.AsyncClient
        if client is AiohttpClient:
            _check_aiohttp(config.name)
        # One TLS context for every pool: loading the CA bundle takes tens of ms.
        tls = ssl_context(config)
        # Free connections per client: a request goes to the client with the most.
        self._free = [total // count + (1 if i < total % count else 0) for i in range(count)]
        self.clients = [
            client(
                transport=transport,
                timeout=config.timeout.total_seconds(),
                headers=headers,
                limits=httpx.Limits(max_connections=size, max_keepalive_connections=size),
                follow_redirects=False,
                verify=tls,
                cookies=_no_cookies(),
                trust_env=True,
            )
            for size in self._free
        ]
        self._urls: dict[str, httpx.URL] = {}

    async def request(
        self,
        method: str,
        url: str,
        kwargs: dict[str, Any],
        *,
        total: float | None = None,
        exchange: Exchange | None = None,
    ) -> httpx.Response:
        """Send a request and read its whole answer, within ``total`` seconds. Raises
        what httpx raises, ``TimeoutError`` when ``total`` passed, and ``ValueError`` for
        a body that cannot be encoded (NaN in JSON, say). ``exchange`` gets the request's
        wire times (see ``exchange``).

        ``params`` are added to the query string ``url`` already has (httpx 0.28 would
        replace it, dropping a configured ``?api-version=...``).
        """
        params = kwargs.get("params")
        if "params" in kwargs:
            kwargs = {k: v for k, v in kwargs.items() if k != "params"}
        target = self._url(url)
        if params:
            target = target.copy_merge_params(params)
        free = self._free
        # There is always a free connection: the limit never lets more requests out.
        i = free.index(max(free)) if len(free) > 1 else 0
        free[i] -= 1
        if exchange is not None:
            # httpcore's hooks; httpx-aiohttp ignores the extension (aiohttp's are on
            # the session and read ``exchange.CURRENT``).
            extensions = {**kwargs.get("extensions", {}), "trace": exchange.httpx_trace}
            kwargs = {**kwargs, "extensions": extensions}
        token = CURRENT.set(exchange)
        try:
            async with asyncio.timeout(total):
                return await self.clients[i].request(method, target, **kwargs)
        except aiohttp.ClientError as exc:  # what httpx-aiohttp lets through
            raise from_aiohttp(exc) from exc
        except httpx.TransportError as exc:
            cause = exc.__cause__
            if not isinstance(cause, aiohttp.ClientError):
                raise
            raise from_aiohttp(cause) from cause
        except ValueError as exc:
            raise _unencodable(exc) from None
        finally:
            CURRENT.reset(token)
            free[i] += 1

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


_DEFAULT_LIMITS = httpx.Limits()


class AiohttpClient(HttpxAiohttpClient):
    """httpx-aiohttp's client (httpx's API; environment proxies mounted by httpx), whose
    aiohttp sessions keep no cookie and send each request once."""

    def _init_transport(
        self,
        verify: ssl.SSLContext | str | bool = True,
        cert: Any = None,
        trust_env: bool = True,
        http1: bool = True,
        http2: bool = False,
        limits: httpx.Limits = _DEFAULT_LIMITS,
        transport: httpx.AsyncBaseTransport | None = None,
        **kwargs: Any,
    ) -> httpx.AsyncBaseTransport:
        if transport is not None:
            return transport
        return _aiohttp_transport(verify, limits, proxy=None)

    def _init_proxy_transport(
        self,
        proxy: httpx.Proxy,
        verify: ssl.SSLContext | str | bool = True,
        cert: Any = None,
        trust_env: bool = True,
        http1: bool = True,
        http2: bool = False,
        limits: httpx.Limits = _DEFAULT_LIMITS,
        **kwargs: Any,
    ) -> httpx.AsyncBaseTransport:
        return _aiohttp_transport(verify, limits, proxy=proxy)


def _check_aiohttp(model: str) -> None:
    """Refuse an aiohttp that cannot be told not to re-send: its re-sends would reach the
    endpoint unseen, beyond ``retry.attempts`` and uncounted."""
    if "_retry_connection" in aiohttp.ClientSession.ATTRS:
        return
    raise ConfigError(
        [
            f"models[{model!r}].http_client: 'aiohttp' needs an aiohttp that can be told not"
            " to send a request again by itself (ClientSession._retry_connection, aiohttp"
            f" 3.11 and later); installed: {aiohttp.__version__}. Upgrade aiohttp or set"
            " http_client = 'httpx'"
        ]
    )


def _aiohttp_transport(
    verify: ssl.SSLContext | str | bool, limits: httpx.Limits, proxy: httpx.Proxy | None
) -> AiohttpTransport:
    context = verify if isinstance(verify, ssl.SSLContext) else httpx.create_ssl_context(verify)

    def session() -> aiohttp.ClientSession:
        # Called on the event loop, at the first request (aiohttp needs a running loop).
        connector = aiohttp.TCPConnector(
            limit=limits.max_connections or 0,
            keepalive_timeout=limits.keepalive_expiry,
            ssl=context,
        )
        # httpx-aiohttp routes proxied requests itself; httpx read the environment.
        opened = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,
            trace_configs=[aiohttp_trace()],  # a request's wire times, see ``exchange``
        )
        # aiohttp re-sends an idempotent request once when its connection drops: the
        # transport's retry bound counts every request that reached the endpoint, so
        # retrying is the transport's alone. aiohttp's own test client does the same.
        opened._retry_connection = False
        return opened

    return AiohttpTransport(verify=context, limits=limits, proxy=proxy, client=session)


# aiohttp's errors as httpx's, the most specific first (httpx-aiohttp's own table picks
# ``ConnectTimeout`` for every ``ClientConnectionError``, a refused connection included).
_AIOHTTP_ERRORS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout),
    (aiohttp.ServerTimeoutError, httpx.ReadTimeout),
    (aiohttp.ClientProxyConnectionError, httpx.ProxyError),
    (aiohttp.ClientHttpProxyError, httpx.ProxyError),
    (aiohttp.ClientConnectorError, httpx.ConnectError),
    (aiohttp.InvalidURL, httpx.UnsupportedProtocol),
    (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError),
    (aiohttp.ClientResponseError, httpx.RemoteProtocolError),
    (aiohttp.ClientPayloadError, httpx.ReadError),
    (aiohttp.ClientConnectionError, httpx.ReadError),
)


def from_aiohttp(error: aiohttp.ClientError) -> httpx.TransportError:
    """The httpx error for what aiohttp raised. Its message names the host at most: an
    aiohttp message about the answer would carry the whole URL, query string and all."""
    mapped = next((m for kind, m in _AIOHTTP_ERRORS if isinstance(error, kind)), None)
    mapped = mapped or httpx.TransportError
    if isinstance(error, aiohttp.ClientConnectorError | aiohttp.ServerTimeoutError):
        return mapped(str(error))
    return mapped(type(error).__name__)


class Unsendable(ValueError):
    """A request that cannot be encoded; the message names why, never a value."""


def _unencodable(error: ValueError) -> ValueError:
    """``Unsendable`` for what ``json`` refuses (NaN, an infinity); any other error as it
    is (the transport reports only its type)."""
    if "JSON" not in str(error):
        return error
    return Unsendable("the JSON body holds NaN or an infinity, which JSON cannot carry")


def ssl_context(config: AnyModelConfig) -> ssl.SSLContext:
    """The TLS context for ``config``'s requests: the system's CAs (or ``SSL_CERT_FILE``),
    the ``ca_bundle``'s alone, or no verification at all (``tls_verify = false``)."""
    if not config.tls_verify:
        return httpx.create_ssl_context(verify=False)
    if config.ca_bundle is not None:
        return ssl.create_default_context(cafile=str(config.ca_bundle))
    return httpx.create_ssl_context()


def _no_cookies() -> http.cookiejar.CookieJar:
    """A jar that keeps no cookie: every request to a model stands on its own."""
    return http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
