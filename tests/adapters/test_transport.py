"""The transport's retry, back-off, Retry-After, AIMD and rate-limit arithmetic, with a
fake clock and ``httpx.MockTransport``: nothing here waits for real."""

from __future__ import annotations

import email.utils
import itertools
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest

from monitor.adapters.transport import (
    AdaptiveLimit,
    Timing,
    TokenBucket,
    Transport,
    parse_retry_after,
)
from monitor.config import HttpModelConfig, RateLimit
from monitor.errors import AdapterError

URL = "http://model.test/predict?token=querysecret"


class FakeTime:
    """A clock that only moves when someone sleeps."""

    def __init__(self, rand: float = 1.0) -> None:
        self.now = 1000.0
        self.slept: list[float] = []
        self.timing = Timing(clock=lambda: self.now, sleep=self.sleep, rand=lambda: rand)

    async def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds


def transport(
    handler: Callable[[httpx.Request], httpx.Response], time: FakeTime, **overrides: Any
) -> Transport:
    config = HttpModelConfig.model_validate(
        {"name": "m", "adapter": "http", "url": URL, **overrides}
    )
    return Transport(config, transport=httpx.MockTransport(handler), timing=time.timing)


def sequence(*responses: httpx.Response | Exception) -> Callable[[httpx.Request], httpx.Response]:
    """Answers in order, then 200 ``{"ok": true}`` forever."""
    queue = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        item = queue.pop(0) if queue else httpx.Response(200, json={"ok": True})
        if isinstance(item, Exception):
            raise item
        return item

    return handler


@pytest.mark.parametrize(
    ("rand", "retry", "expected"),
    [
        (1.0, {}, [0.2, 0.4, 0.8]),
        (0.5, {}, [0.1, 0.2, 0.4]),
        (1.0, {"attempts": 5, "backoff": "1s", "max_backoff": "3s"}, [1, 2, 3, 3, 3]),
        (0.0, {"attempts": 2}, [0, 0]),
    ],
    ids=["default-max-jitter", "half-jitter", "capped", "zero-jitter"],
)
async def test_backoff_is_exponential_with_full_jitter_and_bounded(
    rand: float, retry: dict[str, Any], expected: list[float]
) -> None:
    time = FakeTime(rand)
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(503)

    t = transport(handler, time, retry=retry)
    with pytest.raises(AdapterError) as info:
        await t.send("POST", URL, json={})
    await t.aclose()
    assert time.slept == expected and calls == len(expected) + 1
    assert info.value.kind == "http_status"
    assert str(info.value) == (
        f"POST http://model.test/predict: HTTP 503 (after {len(expected) + 1} attempts)"
    )


@pytest.mark.parametrize(
    ("failure", "kind"),
    [
        (httpx.Response(500), "http_status"),
        (httpx.Response(429), "http_status"),
        (httpx.ConnectError("refused"), "connection"),
        (httpx.ReadTimeout("slow"), "timeout"),
        (httpx.RemoteProtocolError("reset"), "connection"),
    ],
    ids=["500", "429", "connect", "timeout", "reset"],
)
async def test_retryable_failures_are_retried_until_success(
    failure: httpx.Response | Exception, kind: str
) -> None:
    time = FakeTime()
    t = transport(sequence(failure, failure), time)
    reply = await t.send("POST", URL, json={})
    await t.aclose()
    assert reply.body == {"ok": True} and t.retries == 2 and len(time.slept) == 2
    short = transport(sequence(failure, failure), time, retry={"attempts": 1})
    with pytest.raises(AdapterError) as info:
        await short.send("POST", URL, json={})
    await short.aclose()
    assert info.value.kind == kind and str(info.value).endswith("(after 2 attempts)")


@pytest.mark.parametrize(
    ("failure", "kind"),
    [
        (httpx.Response(400), "http_status"),
        (httpx.Response(404), "http_status"),
        (httpx.Response(200, text='{"trunc'), "bad_response"),
    ],
    ids=["400", "404", "not-json"],
)
async def test_final_failures_are_not_retried(failure: httpx.Response, kind: str) -> None:
    time = FakeTime()
    t = transport(sequence(failure), time)
    with pytest.raises(AdapterError) as info:
        await t.send("POST", URL, json={})
    await t.aclose()
    assert info.value.kind == kind and t.retries == 0 and time.slept == []
    assert "querysecret" not in str(info.value) and "attempts" not in str(info.value)


async def test_no_retries_when_attempts_is_zero() -> None:
    time = FakeTime()
    t = transport(sequence(httpx.Response(500)), time, retry={"attempts": 0})
    with pytest.raises(AdapterError, match=r"HTTP 500$"):
        await t.send("GET", URL)
    await t.aclose()
    assert t.retries == 0


@pytest.mark.parametrize(
    ("header", "expected"),
    [("7", 7.0), ("120", 20.0), ("soon", 0.8)],
    ids=["seconds", "capped-at-max-backoff", "unreadable-falls-back-to-backoff"],
)
async def test_retry_after_seconds_are_honoured(header: str, expected: float) -> None:
    time = FakeTime(rand=1.0)
    t = transport(
        sequence(httpx.Response(429, headers={"Retry-After": header})),
        time,
        retry={"backoff": "800ms"},
    )
    await t.send("POST", URL, json={})
    await t.aclose()
    assert time.slept == [expected]


def test_retry_after_http_date() -> None:
    now = 1_800_000_000.0
    header = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after(header, now) == pytest.approx(30)
    assert parse_retry_after(email.utils.formatdate(now - 30, usegmt=True), now) == 0
    assert parse_retry_after(None, now) is None and parse_retry_after("", now) is None


async def test_retry_after_pauses_every_request_to_the_model() -> None:
    time = FakeTime(rand=0.0)
    t = transport(sequence(httpx.Response(503, headers={"Retry-After": "5"})), time)
    await t.send("POST", URL, json={})  # waits 5 s before its retry
    time.now -= 3  # pretend another request starts 2 s into the pause
    await t.send("POST", URL, json={})
    await t.aclose()
    assert time.slept == [5, 3]


async def test_aimd_halves_once_per_burst_and_recovers_additively() -> None:
    limit = AdaptiveLimit(8)
    generations = [await limit.acquire() for _ in range(8)]
    for g in generations:  # eight 429s from requests sent under the same limit
        limit.release(g, overloaded=True)
    assert limit.current == 4 and limit.generation == 1
    g = await limit.acquire()
    limit.release(g, overloaded=True)  # a 429 under the new limit halves again
    assert limit.current == 2
    seen = []
    for _ in range(40):
        g = await limit.acquire()
        limit.release(g, ok=True)
        seen.append(limit.current)
    assert seen == sorted(seen) and seen[-1] == 8
    # Additive: from 2, one step per about `limit` successes, never a jump.
    assert all(b - a <= 1 for a, b in itertools.pairwise(seen))
    floor = AdaptiveLimit(1)
    floor.release(await floor.acquire(), overloaded=True)
    assert floor.current == 1


async def test_token_bucket_spaces_requests_at_the_rate() -> None:
    time = FakeTime()
    rate = RateLimit(count=2, period=timedelta(seconds=1))
    bucket = TokenBucket(rate, time.timing.clock, time.sleep)
    for _ in range(5):
        await bucket.take()
    # Two at once (the burst), then one every 0.5 s.
    assert time.slept == [0.5, 0.5, 0.5]


async def test_rate_limit_applies_to_sends() -> None:
    time = FakeTime()
    t = transport(sequence(), time, rate_limit="10/s")
    for _ in range(12):
        await t.send("GET", URL)
    await t.aclose()
    assert time.slept == [0.1, 0.1]
