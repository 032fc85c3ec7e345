"""The demo model served for real by uvicorn on a free loopback port."""

from __future__ import annotations

import selectors
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from monitor.daemon.serving import EmbeddedServer as DemoServer
from monitor.demo import DemoModel, read_test_set, serve_demo_model
from monitor.errors import StartupError
from tests.servers import deadline


@pytest.fixture(scope="module")
def model_for_server() -> DemoModel:
    return DemoModel()


@pytest.fixture
async def server(model_for_server: DemoModel) -> AsyncIterator[DemoServer]:
    model_for_server.set_level(None)
    running = await serve_demo_model(model_for_server, port=0)
    yield running
    await running.stop()


@pytest.fixture
async def client(server: DemoServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url) as http:
        yield http


def port_of(server: DemoServer) -> int:
    return int(server.url.rsplit(":", 1)[1])


async def assert_refused(url: str) -> None:
    async with httpx.AsyncClient() as http:
        with pytest.raises(httpx.ConnectError):
            await http.get(f"{url}/healthz")


async def test_url_has_the_bound_port(server: DemoServer) -> None:
    assert server.url.startswith("http://127.0.0.1:")
    assert port_of(server) > 0


async def test_healthz(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_predict_answers_like_the_model(
    client: httpx.AsyncClient, model_for_server: DemoModel
) -> None:
    for case in read_test_set()[:10]:
        response = await client.post("/predict", json={"features": list(case.features)})
        assert response.status_code == 200
        body = response.json()
        assert body["prediction"] in model_for_server.labels
        label, probabilities = model_for_server.predict(case.features)
        assert body == {
            "prediction": label,
            "probabilities": pytest.approx(probabilities),
            "usage": {"prompt_tokens": 13, "completion_tokens": 1},
        }


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"features": [1.0] * 12},
        {"features": [1.0] * 14},
        {"features": ["a"] * 13},
        {"features": ["1.5"] * 13},
        {"features": [True] * 13},
        {"features": [None] * 13},
        {"features": "1,2,3"},
    ],
    ids=["missing", "too-short", "too-long", "words", "numeric-strings", "bools", "nulls", "str"],
)
async def test_predict_rejects_bad_body(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    response = await client.post("/predict", json=body)
    assert response.status_code == 422
    errors = response.json()["detail"]
    assert errors
    assert all(error["loc"][:2] == ["body", "features"] for error in errors)
    assert all(error["msg"] for error in errors)


async def test_predict_rejects_non_json(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/predict", content=b"not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422


async def test_degradation_round_trips(client: httpx.AsyncClient) -> None:
    assert (await client.get("/degradation")).json() == {"level": 0.0}
    response = await client.post("/degradation", json={"level": 0.6})
    assert response.status_code == 200
    assert response.json() == {"level": 0.6}
    assert (await client.get("/degradation")).json() == {"level": 0.6}
    response = await client.post("/degradation", json={"level": None})
    assert response.json() == {"level": 0.0}


async def test_degradation_changes_answers(client: httpx.AsyncClient) -> None:
    async def predictions() -> list[str]:
        answers = []
        for case in read_test_set():
            response = await client.post("/predict", json={"features": list(case.features)})
            answers.append(response.json()["prediction"])
        return answers

    healthy = await predictions()
    await client.post("/degradation", json={"level": 1.0})
    assert all(a != b for a, b in zip(healthy, await predictions(), strict=True))


@pytest.mark.parametrize(
    "body",
    [{}, {"level": 1.5}, {"level": -0.1}, {"level": "high"}],
    ids=["missing", "above-1", "negative", "word"],
)
async def test_degradation_rejects_bad_level(
    client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    response = await client.post("/degradation", json=body)
    assert response.status_code == 422
    assert (await client.get("/degradation")).json() == {"level": 0.0}


async def test_stop_frees_the_port(model_for_server: DemoModel) -> None:
    running = await serve_demo_model(model_for_server, port=0)
    async with httpx.AsyncClient(base_url=running.url) as http:
        assert (await http.get("/healthz")).status_code == 200
    await running.stop()
    await assert_refused(running.url)
    # Binding and listening on the port succeeds only if no socket listens there any more.
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port_of(running)))
        probe.listen()


async def test_port_in_use_raises(server: DemoServer, model_for_server: DemoModel) -> None:
    with pytest.raises(StartupError, match="cannot listen"):
        await serve_demo_model(model_for_server, port=port_of(server))


async def test_context_manager_stops(model_for_server: DemoModel) -> None:
    async with await serve_demo_model(model_for_server) as running:
        url = running.url
    await assert_refused(url)


READY_SCRIPT = """
from monitor.demo import run_demo_model
run_demo_model(port=0, on_ready=lambda server: print(server.url, flush=True))
print("stopped", flush=True)
"""


def read_line(process: subprocess.Popen[str], within: float) -> str:
    """One line of the child's stdout, failing if none comes within ``within`` seconds
    (scaled by ``deadline``)."""
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(deadline(within)):
            pytest.fail(f"no output from the demo model within {deadline(within)}s")
    return process.stdout.readline().strip()


@pytest.mark.integration
@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["int", "term"])
def test_run_demo_model_serves_until_signalled(stop_signal: signal.Signals) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", READY_SCRIPT], stdout=subprocess.PIPE, text=True
    ) as process:
        try:
            url = read_line(process, within=60)
            assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
            process.send_signal(stop_signal)
            assert read_line(process, within=30) == "stopped"
            assert process.wait(timeout=deadline(30)) == 0
        finally:
            process.kill()
