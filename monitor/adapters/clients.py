"""The HTTP client under one model's ``Transport``: who sends a request, and how.

- ``http_client = "fast"`` (the default), or a transport injected by a test
  (``httpx.MockTransport``): one ``httpx.AsyncClient`` over one transport
  (``Http11Transport``). The client holds the configuration (headers, with httpx's
  defaults, and timeouts) and owns the transport; each request is an ``httpx.Request``
  built from that configuration and handed to the transport directly, and the answer is
  the ``httpx.Response`` the transport returns. ``AsyncClient.request`` would also parse
  the URL again, merge cookies, run the auth and redirect flows and event hooks: a model
  request needs none of that (redirects are not followed, credentials travel in headers,
  cookies are never kept, by either client), and at concurrency 64 it cost more client
  time than the transport itself (``docs/benchmarks.md``).
- ``http_client = "httpx"``: httpx's own transport, ``concurrency`` connections in pools of
  at most ``POOL_SIZE`` clients, through ``AsyncClient.request``.
- When the environment names a proxy for the model's URL (``HTTP_PROXY``, ``HTTPS_PROXY``,
  ``ALL_PROXY``, less ``NO_PROXY``), ``"fast"`` means ``"httpx"``: httpx routes requests
  to the proxy (it ignores the environment for a client built on a given transport).
"""

from __future__ import annotations

import http.cookiejar
import urllib.request
from typing import Any
from urllib.parse import urlsplit

import httpx

from monitor.adapters.http11 import Http11Transport
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
        # One TLS context for every pool: loading the CA bundle takes tens of milliseconds.
        tls = httpx.create_ssl_context() if transport is None else True
        if transport is None and config.http_client == "fast" and not proxied(config.url):
            assert not isinstance(tls, bool)
            transport = Http11Transport(max_connections=total, ssl_context=tls)
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
        self._extensions: dict[str, Any] = {"timeout": self.clients[0].timeout.as_dict()}
        self._urls: dict[str, httpx.URL] = {}

    async def request(self, method: str, url: str, kwargs: dict[str, Any]) -> httpx.Response:
        """Send a request and read its answer. Raises what httpx raises.

        ``params`` are added to the query string ``url`` already has (httpx 0.28 would
        replace it, dropping a configured ``?api-version=...``).
        """
        target = self._url(url)
        if "params" in kwargs:
            if kwargs["params"]:
                target = target.copy_merge_params(kwargs["params"])
            kwargs = {k: v for k, v in kwargs.items() if k != "params"}
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
