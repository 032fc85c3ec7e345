"""How every adapter talks HTTP: limits, retries, back-off, and failures mapped to kinds.

One ``Transport`` per model owns its ``HttpClient`` (see ``clients``) and applies, to every
request:

- a concurrency limit that adapts (AIMD): a burst of 429 answers halves it once, each
  success adds ``1/limit`` back, up to the configured ``concurrency``;
- ``Retry-After`` (seconds or an HTTP date) on 429 and 503, which pauses the whole model;
- bounded retries with exponential back-off and full jitter on 429, 5xx, connection errors
  and timeouts (``retry.attempts``, never unbounded);
- an optional token-bucket ``rate_limit``;
- one call to the ``RequestObserver`` per request sent (its outcome and duration: the
  wire's, first byte sent to last byte received, when an answer came; see ``exchange``).

The clock, ``sleep`` and the random source are injected so back-off is tested without
waiting. Messages name the method and the URL without its query string, never a header.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import email.utils
import functools
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from monitor.adapters.clients import HttpClient, Unsendable
from monitor.adapters.exchange import Exchange
from monitor.adapters.observer import NO_OBSERVER, RequestObserver, RequestOutcome
from monitor.config import AnyModelConfig, RateLimit
from monitor.errors import AdapterError

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Timing:
    """Where the transport gets time and chance from; tests pass fakes."""

    clock: Clock = time.monotonic
    sleep: Sleep = asyncio.sleep
    rand: Callable[[], float] = random.random


@dataclass(frozen=True, slots=True)
class Reply:
    """A decoded JSON answer and how long the request that got it took on the wire, from
    its first byte sent to its answer's last byte received (see ``exchange``): retries,
    queueing, connecting and the client's own work excluded, this is the endpoint's
    latency."""

    body: Any
    latency_seconds: float


class AdaptiveLimit:
    """A concurrency limit that halves on overload and recovers additively (AIMD).

    Each request remembers the limit's ``generation`` when it started; only a 429 from a
    request started under the current generation lowers the limit, so a burst of 429s
    answered for one window halves it once, not once per answer.
    """

    def __init__(self, maximum: int) -> None:
        self.maximum = maximum
        self.limit = float(maximum)
        self.generation = 0
        self.in_flight = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    @property
    def current(self) -> int:
        """Requests allowed at once right now."""
        return max(1, int(self.limit))

    async def acquire(self) -> int:
        """Wait for a free slot (first come, first served); returns the generation to
        pass to ``release``."""
        if self.in_flight < self.current and not self._waiters:
            self.in_flight += 1
            return self.generation
        future = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.in_flight -= 1  # handed a slot while being cancelled: pass it on
                self._wake()
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(future)
            raise
        return self.generation

    def release(self, generation: int, *, overloaded: bool = False, ok: bool = False) -> None:
        """Free a slot; ``overloaded`` (a 429) shrinks the limit, ``ok`` grows it."""
        self.in_flight -= 1
        if overloaded and generation == self.generation:
            self.limit = max(1.0, self.limit / 2)
            self.generation += 1
        elif ok and self.limit < self.maximum:
            self.limit = min(float(self.maximum), self.limit + 1 / self.limit)
        self._wake()

    def _wake(self) -> None:
        # The slot is counted for the waiter as it is handed over, so two releases in a
        # row never wake more waiters than there are free slots.
        while self._waiters and self.in_flight < self.current:
            future = self._waiters.popleft()
            if not future.done():
                future.set_result(None)
                self.in_flight += 1


class TokenBucket:
    """``rate_limit``: at most ``count`` requests per ``period``, as a token bucket."""

    def __init__(self, rate: RateLimit, clock: Clock, sleep: Sleep) -> None:
        self._rate = rate.per_second
        self._capacity = max(1.0, rate.count)
        self._tokens = self._capacity
        self._clock, self._sleep = clock, sleep
        self._updated = clock()

    async def take(self) -> None:
        """Wait until a token is available and take it. Tokens may go negative: each
        waiter reserves its own, so waiters are served in order without a lock."""
        now = self._clock()
        self._tokens = min(self._capacity, self._tokens + (now - self._updated) * self._rate)
        self._updated = now
        self._tokens -= 1
        if self._tokens < 0:
            await self._sleep(-self._tokens / self._rate)


class Transport:
    """The HTTP side of one model, shared by all its requests."""

    def __init__(
        self,
        config: AnyModelConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        headers: dict[str, str] | None = None,
        timing: Timing | None = None,
        observer: RequestObserver = NO_OBSERVER,
    ) -> None:
        timing = timing or Timing()
        self.config = config
        self._observer = observer
        self.limit = AdaptiveLimit(config.concurrency)
        self._clock, self._sleep, self._rand = timing.clock, timing.sleep, timing.rand
        rate = config.rate_limit
        self._bucket = TokenBucket(rate, timing.clock, timing.sleep) if rate else None
        self._resume_at = 0.0  # set by Retry-After: no request starts before then
        self.retries = 0  # requests sent again, for tests and logs
        self.http = HttpClient(config, transport, headers or {})
        self._timeout = config.timeout.total_seconds()

    async def send(self, method: str, url: str, **kwargs: Any) -> Reply:
        """Send a request (retrying as configured) and return its decoded JSON answer.

        Raises ``AdapterError`` with the kind of the last failure once retries run out,
        and at once for an answer that is not JSON (``bad_response``) or a 4xx other
        than 408/429 (``http_status``): sending those again would not help.
        """
        where = f"{method} {display_url(url)}"
        retry = self.config.retry
        attempt = 0
        while True:
            outcome = await self._attempt(method, url, where, kwargs)
            if isinstance(outcome, Reply):
                return outcome
            if not outcome.retryable or attempt == retry.attempts:
                break
            backoff = min(
                retry.max_backoff.total_seconds(), retry.backoff.total_seconds() * 2**attempt
            )
            attempt += 1
            self.retries += 1
            await self._sleep(max(outcome.retry_after or 0.0, self._rand() * backoff))
        error = outcome.error
        if attempt:
            raise AdapterError(error.kind, f"{error} (after {attempt + 1} attempts)")
        raise error

    async def _attempt(
        self, method: str, url: str, where: str, kwargs: dict[str, Any]
    ) -> Reply | _Failure:
        """One try: the answer, or the failure and whether it is worth retrying. Every
        try that ends (answered or failed, not cancelled) is reported to the observer."""
        await self._wait_turn()
        generation = await self.limit.acquire()
        overloaded = ok = False
        exchange = Exchange()
        started = time.perf_counter()
        # Stays None when the try is cancelled (deadline, shutdown): it did not end.
        outcome: RequestOutcome | None = None
        try:
            try:
                response = await self._request(method, url, kwargs, exchange)
            except (httpx.TimeoutException, TimeoutError):
                outcome = "timeout"
                return _Failure(AdapterError("timeout", f"{where}: no answer within the timeout"))
            except (ValueError, httpx.LocalProtocolError) as exc:
                # Never sent (so not observed), and sending it again would not help.
                return _Failure(AdapterError("bad_request", f"{where}: {_unsendable(exc)}"), False)
            except httpx.DecodingError:
                outcome = "bad_response"
                error = AdapterError("bad_response", f"{where}: the answer cannot be decompressed")
                return _Failure(error, retryable=False)
            except httpx.TransportError as exc:
                outcome = "connection"
                return _Failure(AdapterError("connection", f"{where}: {type(exc).__name__}"))
            finally:
                # The wire's time when the client's hooks saw both ends (an answer came),
                # else the call's (a failure, an injected test transport).
                wire = exchange.seconds
                latency = time.perf_counter() - started if wire is None else wire
            status = response.status_code
            overloaded = status == 429
            if status >= 400:
                outcome = "rate_limited" if overloaded else "http_status"
                error = AdapterError("http_status", f"{where}: HTTP {status}")
                retryable = status in (408, 429) or status >= 500
                return _Failure(error, retryable, self._retry_after(response))
            try:
                body = response.json()
            except ValueError:
                outcome = "bad_response"
                error = AdapterError("bad_response", f"{where}: the answer is not JSON")
                return _Failure(error, retryable=False)
            ok, outcome = True, "ok"
            return Reply(body, latency)
        finally:
            self.limit.release(generation, overloaded=overloaded, ok=ok)
            if outcome is not None:
                self._observer.observe_request(self.config.name, outcome, latency)

    async def _request(
        self, method: str, url: str, kwargs: dict[str, Any], exchange: Exchange
    ) -> httpx.Response:
        # httpx's timeout bounds each phase (connect, each read); ``total`` bounds the
        # whole request, so an answer that trickles in byte by byte still times out.
        return await self.http.request(method, url, kwargs, total=self._timeout, exchange=exchange)

    async def _wait_turn(self) -> None:
        """Honour a pending ``Retry-After`` and the rate limit before sending."""
        delay = self._resume_at - self._clock()
        if delay > 0:
            await self._sleep(delay)
        if self._bucket is not None:
            await self._bucket.take()

    def _retry_after(self, response: httpx.Response) -> float | None:
        """Seconds the server asked us to wait (``Retry-After``), capped at
        ``max_backoff``; the whole model pauses that long."""
        if response.status_code not in (429, 503):
            return None
        seconds = parse_retry_after(response.headers.get("retry-after"), time.time())
        if seconds is None:
            return None
        seconds = min(seconds, self.config.retry.max_backoff.total_seconds())
        self._resume_at = max(self._resume_at, self._clock() + seconds)
        return seconds

    async def aclose(self) -> None:
        await self.http.aclose()


@dataclass(frozen=True, slots=True)
class _Failure:
    error: AdapterError
    retryable: bool = True
    retry_after: float | None = None


def _unsendable(error: Exception) -> str:
    """Why a request could not be encoded, without the value that could not be: it may
    be a header's secret."""
    if isinstance(error, Unsendable):
        return str(error)
    return f"the request cannot be encoded ({type(error).__name__})"


def parse_retry_after(value: str | None, now: float) -> float | None:
    """``Retry-After`` as seconds from ``now`` (epoch seconds): a delay in seconds or an
    HTTP date; ``None`` when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


@functools.lru_cache(maxsize=256)  # a model asks the same few URLs over and over
def display_url(url: str) -> str:
    """The URL without credentials or query string, which may hold keys."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"
