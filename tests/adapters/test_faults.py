"""Every adapter against a misbehaving endpoint: slow, 500, 429 with Retry-After,
truncated JSON, wrong schema, connection reset. Each failure has the right kind, retries
happen only where they help, and no secret ever reaches a message."""

from __future__ import annotations

import asyncio
import email.utils
import math
import time

import pytest
from prometheus_client import CollectorRegistry

from monitor.adapters import Timing, build_adapter
from monitor.errors import AdapterError
from monitor.metrics.instruments import RequestMetrics
from tests.adapters.endpoints import (
    Endpoint,
    raw_server,
    read_request,
    reset_server,
    trickle_server,
)
from tests.adapters.models import HEADER_SECRET, SECRET, case, expected_value, model_for
from tests.servers import deadline

# Against real servers: once per HTTP client under the transport.
pytestmark = pytest.mark.usefixtures("http_client")

ADAPTERS = ["http", "openai", "mlflow", "kserve-v2"]


def assert_no_secret(message: str) -> None:
    for secret in (SECRET, HEADER_SECRET, "querysecret"):
        assert secret not in message


@pytest.mark.parametrize("adapter", ADAPTERS)
@pytest.mark.parametrize(
    ("faults", "kind", "requests"),
    [
        (["slow:2"], "timeout", 1),
        (["500", "500", "500"], "http_status", 3),
        (["400"], "http_status", 1),
        (["truncated"], "bad_response", 1),
        (["schema"], "bad_response", 1),
    ],
    ids=["slow", "500-always", "400", "truncated-json", "wrong-schema"],
)
async def test_failure_kinds(
    endpoint: Endpoint, adapter: str, faults: list[str], kind: str, requests: int
) -> None:
    endpoint.script(*faults)
    if kind == "timeout":
        # The endpoint sleeps 2 s; a 300 ms timeout must fire, and is not retried.
        config = model_for(adapter, endpoint.url, timeout="300ms", retry={"attempts": 0})
    else:
        # Every other fault answers at once: a patient timeout, so that a loaded machine's
        # slow answer is never mistaken for the fault under test.
        config = model_for(adapter, endpoint.url, timeout=f"{deadline(10):g}s")
    model = build_adapter(config)
    with pytest.raises(AdapterError) as info:
        await model.predict(case(0, 1.0))
    await model.aclose()
    assert info.value.kind == kind
    assert len(endpoint.requests) == requests
    assert_no_secret(str(info.value))


@pytest.mark.parametrize("adapter", ADAPTERS)
async def test_500_then_success_is_retried(endpoint: Endpoint, adapter: str) -> None:
    endpoint.script("500", "500")
    model = build_adapter(model_for(adapter, endpoint.url))
    prediction = await model.predict(case(0, -3.0))
    await model.aclose()
    assert prediction.value == expected_value(adapter, -3.0)
    assert len(endpoint.requests) == 3 and model.transport.retries == 2


class RecordingSleep:
    """Real sleeps that are also recorded, so a test can tell what was asked for."""

    def __init__(self) -> None:
        self.asked: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)
        await asyncio.sleep(seconds)


@pytest.mark.parametrize(
    "retry_after", ["seconds", "http-date"], ids=["retry-after-seconds", "retry-after-date"]
)
async def test_429_retry_after_is_honoured_and_concurrency_backs_off_then_recovers(
    endpoint: Endpoint, retry_after: str
) -> None:
    # A date is whole seconds: 3 s ahead leaves a pause of at least 0.9 s even when a loaded
    # machine takes two seconds to get the 429 back.
    header = (
        "1"
        if retry_after == "seconds"
        else email.utils.formatdate(math.ceil(time.time()) + 3, usegmt=True)
    )
    endpoint.script(*[f"429:{header}"] * 8)
    sleep = RecordingSleep()
    config = model_for("http", endpoint.url, concurrency=8, retry={"attempts": 3, "backoff": "1ms"})
    model = build_adapter(config, timing=Timing(sleep=sleep))
    limit = model.transport.limit
    try:
        first = await asyncio.gather(*(model.predict(case(i, i)) for i in range(8)))
        assert [p.value for p in first] == ["pos"] * 8
        # The server asked for a pause; no retry reached it before the pause was over.
        assert max(sleep.asked) >= 0.9
        refused, retried = endpoint.requests[:8], endpoint.requests[8:]
        assert min(r.at for r in retried) - max(r.at for r in refused) >= 0.9
        assert limit.generation == 1 and limit.current < 8  # one halving for the burst
        assert len(endpoint.requests) == 16
        more = await asyncio.gather(*(model.predict(case(i, -1)) for i in range(300)))
    finally:
        await model.aclose()
    assert {p.value for p in more} == {"neg"}
    assert limit.current == 8 and endpoint.peak <= 8


@pytest.mark.parametrize("adapter", ADAPTERS)
async def test_connection_reset_is_a_connection_error(adapter: str) -> None:
    server = await reset_server()
    try:
        model = build_adapter(model_for(adapter, server.url))
        with pytest.raises(AdapterError) as info:
            await model.predict(case(0, 1.0))
        await model.aclose()
    finally:
        await server.close()
    assert info.value.kind == "connection"
    assert str(info.value).endswith("(after 3 attempts)")
    assert_no_secret(str(info.value))


async def test_connection_refused_is_a_connection_error() -> None:
    server = await reset_server()
    await server.close()
    model = build_adapter(model_for("openai", server.url, retry={"attempts": 1, "backoff": "1ms"}))
    with pytest.raises(AdapterError) as info:
        await model.predict(case(0, 1.0))
    await model.aclose()
    assert info.value.kind == "connection" and "ConnectError" in str(info.value)


async def test_timeout_bounds_the_whole_request_not_each_read() -> None:
    server = await trickle_server(gap=0.05)  # 47 bytes: about 2.4 s in all
    model = build_adapter(model_for("http", server.url, timeout="500ms", retry={"attempts": 0}))
    try:
        with pytest.raises(AdapterError) as info:
            await model.predict(case(0, 1.0))
    finally:
        await model.aclose()
        await server.close()
    assert info.value.kind == "timeout"


@pytest.mark.parametrize("method", ["POST", "PUT", "GET"])
async def test_reset_kept_alive_connections_never_break_the_retry_bound(method: str) -> None:
    """The first request is answered and its connection kept alive; every later request
    is read, counted and its connection reset. However the client recovers, a case
    reaches the server ``1 + retry.attempts`` times, each counted as a request."""
    served = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        while True:
            await read_request(reader)
            served += 1
            if served > 1:
                writer.transport.abort()  # RST, not a clean close
                return
            body = b'{"prediction": "pos"}'
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()

    registry = CollectorRegistry()
    metrics = RequestMetrics(registry, models=["m"])
    query = {"params": {"x": "{{x}}"}, "body": None} if method == "GET" else {}
    async with raw_server(handle) as server:
        config = model_for("http", server.url, method=method, **query)
        model = build_adapter(config, observer=metrics)
        try:
            assert (await model.predict(case(0, 1.0))).value == "pos"
            with pytest.raises(AdapterError) as info:
                await model.predict(case(1, 1.0))
        finally:
            await model.aclose()
    assert info.value.kind == "connection"
    assert config.retry.attempts == 2 and served == 1 + 3

    def counted(outcome: str) -> float | None:
        labels = {"model": "m", "outcome": outcome}
        return registry.get_sample_value("monitor_model_requests_total", labels)

    assert (counted("ok"), counted("connection")) == (1, 3)
