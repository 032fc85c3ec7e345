"""Fixtures for the API tests: a question-answering suite, an OpenAI-compatible model
server on loopback whose answers can be held back, configurations, and the daemon or a
bare app served by uvicorn on a free port. The stream routes' tests use the stream tests'
``make_stream_config``, re-exported here."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from prometheus_client import CollectorRegistry

from monitor import __version__
from monitor.api import create_app
from monitor.config import AnyModelConfig, Config, SuiteConfig, parse_config
from monitor.daemon.lifecycle import Daemon
from monitor.store import Store
from tests.servers import deadline, serve_in_thread
from tests.streams.conftest import make_stream_config as make_stream_config

WRITE_TOKEN = "api-write-token-0123456789"
READ_TOKEN = "api-read-token-0123456789"
WRITE = {"Authorization": f"Bearer {WRITE_TOKEN}"}
READ = {"Authorization": f"Bearer {READ_TOKEN}"}

QUESTIONS = {f"q{i}": f"answer number {i}" for i in range(8)}
"""Question -> right answer. Model ``good`` answers every one right, ``meh`` the even ones
(exact-match 0.5), anything else answers ``"no idea"``."""


@dataclass
class ModelServer:
    """An OpenAI-compatible ``/v1/chat/completions`` on loopback. While ``hold`` is
    clear, answers wait; ``calls`` counts requests per model and records every path."""

    url: str = ""
    hold: threading.Event = field(default_factory=threading.Event)
    calls: dict[str, int] = field(default_factory=dict)
    paths: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, model: str, question: str) -> str:
        right = QUESTIONS.get(question, "")
        if model == "good" or (model == "meh" and int(question[1:]) % 2 == 0):
            return right
        return "no idea"


@pytest.fixture
def model_server() -> Iterator[ModelServer]:
    server = ModelServer()
    server.hold.set()
    app = FastAPI()

    @app.post("/{path:path}")
    async def chat(path: str, request: Request) -> dict[str, Any]:
        body = json.loads(await request.body())
        with server.lock:
            server.paths.append("/" + path)
            server.calls[body["model"]] = server.calls.get(body["model"], 0) + 1
        while not server.hold.is_set():
            await asyncio.sleep(0.01)
        text = server.answer(body["model"], body["messages"][-1]["content"])
        return {
            "choices": [{"message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2},
        }

    with serve_in_thread(app) as url:
        server.url = url
        yield server
        server.hold.set()


MakeConfig = Callable[..., Config]


@pytest.fixture
def make_config(tmp_path: Path, model_server: ModelServer) -> MakeConfig:
    """``make_config(server={...}, suite={...}, models=[...])``: a ``qa`` suite
    (exact-match, f1-score) with the configured openai model ``prod`` (model ``good``)
    on the model server; ``models`` adds model tables."""
    dataset = tmp_path / "squad-mini.jsonl"
    dataset.write_text(
        "".join(
            json.dumps({"id": f"c{i}", "question": q, "answer": a}) + "\n"
            for i, (q, a) in enumerate(QUESTIONS.items())
        )
    )

    def make(
        *,
        server: dict[str, Any] | None = None,
        suite: dict[str, Any] | None = None,
        models: Sequence[dict[str, Any]] = (),
    ) -> Config:
        raw = {
            "server": {
                "port": 0,
                "shutdown_grace": "200ms",
                "tokens": [
                    {"name": "ci", "token": WRITE_TOKEN, "scopes": ["write"]},
                    {"name": "viewer", "token": READ_TOKEN, "scopes": ["read"]},
                ],
                "allowed_endpoint_prefixes": [f"{model_server.url}/v1"],
                **(server or {}),
            },
            "store": {"data_dir": str(tmp_path / "data")},
            "models": [
                {
                    "name": "prod",
                    "adapter": "openai",
                    "url": f"{model_server.url}/v1",
                    "model": "good",
                    "prompt": "{{question}}",
                    "api_key": "sk-configured-secret-key",
                    "retry": {"attempts": 0},
                },
                *models,
            ],
            "suites": [
                {
                    "name": "qa",
                    "dataset": str(dataset),
                    "task": "text",
                    "expected": "answer",
                    "metrics": ["exact-match", "f1-score"],
                    "models": ["prod"],
                    "benchmark_task": "question-answering",
                    **(suite or {}),
                }
            ],
        }
        return parse_config(raw, base_dir=tmp_path)

    return make


@dataclass
class Recorder:
    """A stand-in for the daemon's ``submit``: remembers what it was handed."""

    handed: list[tuple[SuiteConfig, list[tuple[AnyModelConfig, int]]]] = field(default_factory=list)

    def __call__(self, suite: SuiteConfig, queued: Any) -> None:
        self.handed.append((suite, list(queued)))


@contextlib.contextmanager
def served_app(
    config: Config, store: Store, submit: Callable[..., None] | None = None
) -> Iterator[str]:
    """The API app (no daemon) on a real uvicorn server; yields its base URL."""
    server = config.server
    app = create_app(
        store,
        CollectorRegistry(),
        version=__version__,
        streams=config.streams,
        tokens=server.tokens,
        suites=config.suites,
        models=config.models,
        allowed_endpoint_prefixes=server.allowed_endpoint_prefixes,
        max_body_bytes=server.max_body_bytes,
        open_reads=server.open_reads,
        submit=submit,
    )
    with serve_in_thread(app) as url:
        yield url


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store(f"sqlite:///{tmp_path / 'data' / 'monitor.db'}")
    store.upgrade()
    yield store
    store.close()


@contextlib.asynccontextmanager
async def running(config: Config) -> AsyncIterator[tuple[Daemon, str]]:
    """The daemon serving in this event loop; yields it and its API's base URL."""
    daemon = Daemon(config)
    started = asyncio.Event()
    serving = asyncio.create_task(daemon.serve(started=started))
    await asyncio.wait_for(started.wait(), timeout=deadline(30))
    try:
        yield daemon, f"http://127.0.0.1:{daemon.port}"
    finally:
        daemon.request_stop()
        await asyncio.wait_for(serving, timeout=deadline(30))


async def status_of(http: httpx.AsyncClient, run_id: str) -> dict[str, Any]:
    """``GET /v1/runs/{run_id}`` with a read token."""
    answer = await http.get(f"/v1/runs/{run_id}", headers=READ)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def finished(http: httpx.AsyncClient, run_id: str) -> dict[str, Any] | None:
    """The request's status once it is ``completed`` or ``failed``, else ``None``."""
    body = await status_of(http, run_id)
    return body if body["status"] in ("completed", "failed") else None
