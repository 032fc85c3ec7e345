"""The guard against server-side request forgery: which ad-hoc endpoints the API may call.

``POST /v1/runs`` may name an ``endpoint`` for a model; the daemon then sends requests
there from inside your network. An endpoint is accepted only when it falls under one of
``server.allowed_endpoint_prefixes``, compared on the parsed URL rather than the text:

- the scheme, the host (exactly, case-insensitively) and the port (the scheme's default
  when absent) must be equal, so ``http://good.example.com.evil.net`` is not under
  ``http://good.example.com`` and ``http://127.0.0.1:8000`` is not under
  ``http://127.0.0.1:80``;
- the path must be the prefix's path or continue it after a ``/``: ``/v1`` covers
  ``/v1`` and ``/v1/chat``, not ``/v1beta``;
- URLs are parsed by httpx, the client that will send the requests, so the guard and the
  client cannot disagree about the host (``http://good\\@evil/`` is evil's); dot
  segments are resolved first, and encoded dots, slashes or backslashes, credentials,
  queries and fragments are refused outright.

The daemon never follows redirects, so an allowed endpoint cannot bounce a request
elsewhere. Hosts are not resolved: allow only hosts whose DNS you trust.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

__all__ = ["EndpointGuard", "EndpointRefused"]

_DEFAULT_PORTS = {"http": 80, "https": 443}
_ENCODED_SEPARATOR = re.compile(rb"%(2e|2f|5c)", re.IGNORECASE)


class EndpointRefused(ValueError):
    """The endpoint is malformed or outside every allowed prefix; the message says why
    and never repeats the URL (it may carry credentials)."""


@dataclass(frozen=True, slots=True)
class _Place:
    scheme: str
    host: str
    port: int
    path: str

    def covers(self, other: _Place) -> bool:
        if (self.scheme, self.host, self.port) != (other.scheme, other.host, other.port):
            return False
        base = self.path.rstrip("/")
        return other.path == base or other.path.startswith(base + "/")


def _parse(text: str) -> tuple[httpx.URL, _Place]:
    try:
        url = httpx.URL(text)
    except (httpx.InvalidURL, TypeError):
        raise EndpointRefused("not a valid URL") from None
    if url.scheme not in _DEFAULT_PORTS or not url.host:
        raise EndpointRefused("expected an http:// or https:// URL with a host")
    if url.userinfo:
        raise EndpointRefused("credentials in the URL (user:password@) are not accepted")
    if url.query or url.fragment or "#" in text:
        raise EndpointRefused("a query (?...) or fragment (#...) is not accepted")
    if _ENCODED_SEPARATOR.search(url.raw_path) or "\\" in url.path:
        raise EndpointRefused("encoded dots, slashes or backslashes in the path are not accepted")
    if any(segment in (".", "..") for segment in url.path.split("/")):
        raise EndpointRefused("dot segments in the path are not accepted")
    port = url.port if url.port is not None else _DEFAULT_PORTS[url.scheme]
    if not 0 < port < 65536:
        raise EndpointRefused(f"port {port} is out of range")
    return url, _Place(url.scheme, url.host.lower(), port, url.path or "/")


class EndpointGuard:
    """Decides whether an ad-hoc endpoint may be called. Built once from
    ``server.allowed_endpoint_prefixes`` (validated by the config already)."""

    def __init__(self, prefixes: Sequence[str]) -> None:
        self._prefixes = tuple(_parse(prefix)[1] for prefix in prefixes)

    def check(self, endpoint: str) -> str:
        """The endpoint, normalised as the client will send it (dot segments resolved,
        default port dropped), if it is allowed; ``EndpointRefused`` otherwise."""
        if not self._prefixes:
            raise EndpointRefused(
                "ad-hoc endpoints are not accepted: server.allowed_endpoint_prefixes is empty"
            )
        url, place = _parse(endpoint)
        if not any(prefix.covers(place) for prefix in self._prefixes):
            raise EndpointRefused(
                "not under any of server.allowed_endpoint_prefixes "
                "(compared on scheme, host, port and path)"
            )
        return str(url)
