"""The API's building blocks on their own: the request status mapping, ad-hoc model
names and plans, the endpoint guard, leaderboard ranking and field paths."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.exceptions import RequestValidationError

from monitor.api.endpoints import EndpointGuard, EndpointRefused
from monitor.api.plans import ModelEntry, native_name, plan_models
from monitor.api.problems import field_path
from monitor.api.requests import compat_status
from monitor.api.suites import ranked
from monitor.config import OpenAIModelConfig, parse_config
from monitor.records import LatestScore, RunStatus

T0 = datetime(2026, 11, 22, tzinfo=UTC)


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        pytest.param(["queued"], "queued", id="one-queued"),
        pytest.param(["queued", "queued"], "queued", id="all-queued"),
        pytest.param(["running", "queued"], "running", id="one-started"),
        pytest.param(["succeeded", "queued"], "running", id="one-done-one-waiting"),
        pytest.param(["failed", "running"], "running", id="failed-but-one-left"),
        pytest.param(["succeeded", "succeeded"], "completed", id="all-succeeded"),
        pytest.param(["succeeded", "failed"], "failed", id="one-failed"),
        pytest.param(["succeeded", "interrupted"], "failed", id="one-interrupted"),
    ],
)
def test_request_status_from_its_runs(statuses: list[str], expected: str) -> None:
    assert compat_status(RunStatus(s) for s in statuses) == expected


@pytest.mark.parametrize(
    ("model_id", "name"),
    [
        ("gpt-4o", "gpt-4o"),
        ("meta/llama-3.1-8b", "meta-llama-3.1-8b"),
        ("org/model:latest", "org-model-latest"),
        ("/leading", "leading"),
        ("x" * 80, "x" * 64),
        ("///", "model"),
    ],
)
def test_native_names_are_valid_model_names(model_id: str, name: str) -> None:
    assert native_name(model_id) == name


GUARD = EndpointGuard(["http://good.example.com", "http://127.0.0.1:80", "https://[::1]:8443/v1"])


@pytest.mark.parametrize(
    ("endpoint", "allowed"),
    [
        ("http://good.example.com", True),
        ("http://GOOD.example.com/any/path", True),
        ("http://good.example.com:80/v1", True),
        ("http://good.example.com.evil.net", False),
        ("http://evil.net/good.example.com", False),
        ("http://good.example.com:8080/", False),
        ("https://good.example.com/", False),
        ("http://127.0.0.1/v1", True),
        ("http://127.0.0.1:8000", False),
        ("http://127.0.0.2", False),
        ("https://[::1]:8443/v1/chat", True),
        ("https://[::1]:8443/v1beta", False),
        ("https://[::1]/v1", False),
    ],
)
def test_guard_compares_parsed_urls(endpoint: str, allowed: bool) -> None:
    if allowed:
        assert GUARD.check(endpoint)
    else:
        with pytest.raises(EndpointRefused, match="not under any"):
            GUARD.check(endpoint)


def test_guard_messages_never_repeat_the_url() -> None:
    with pytest.raises(EndpointRefused) as info:
        GUARD.check("http://user:s3cret@good.example.com/")
    assert "s3cret" not in str(info.value)


def test_ranking_follows_the_metric_direction() -> None:
    def score(model: str, metric: str, value: float) -> LatestScore:
        return LatestScore("s", model, metric, value, None, None, hash(model) % 100, T0)

    scores = [
        score("a", "mae", 0.3),
        score("b", "mae", 0.1),
        score("c", "mae", 0.3),
        score("d", "r2", 0.9),  # no mae: listed last, unranked
    ]
    lower = ranked("s", "mae", False, scores)
    assert [(e.rank, e.model) for e in lower.entries] == [(1, "b"), (2, "a"), (3, "c"), (None, "d")]
    higher = ranked("s", "mae", True, scores)
    assert [e.model for e in higher.entries] == ["a", "c", "b", "d"]


def test_field_paths() -> None:
    assert field_path(["body", "models", 0, "endpoint"]) == "models[0].endpoint"
    assert field_path(["query", "limit"]) == "limit"
    assert field_path(["body"]) == "body"


def test_adhoc_plans_copy_prompts_not_secrets(tmp_path: Path) -> None:
    (tmp_path / "d.jsonl").write_text('{"id": 1, "expected": "a", "question": "q"}\n')
    openai = {"adapter": "openai", "url": "http://h/v1", "model": "m", "prompt": "Q: {{question}}"}
    config = parse_config(
        {
            "models": [
                {"name": "http-first", "adapter": "http", "url": "http://h/p"},
                {
                    "name": "llm",
                    **openai,
                    "api_key": "sk-not-for-others",
                    "headers": {"X-Team": "secret-header"},
                    "price": {"prompt": 1, "completion": 2},
                    "temperature": 0.7,
                    "concurrency": 9,
                },
            ],
            "suites": [
                {
                    "name": "qa",
                    "dataset": "d.jsonl",
                    "task": "text",
                    "metrics": ["exact-match"],
                    "models": ["http-first", "llm"],
                }
            ],
        },
        base_dir=tmp_path,
    )
    models = {m.name: m for m in config.models}
    guard = EndpointGuard(["http://other:8000"])
    suite = config.suites[0]
    entries = [ModelEntry("org/new", "http://other:8000/v1"), ModelEntry("llm")]
    adhoc, configured = plan_models(entries, suite, models, guard)
    assert isinstance(adhoc.config, OpenAIModelConfig)
    assert (adhoc.config.name, adhoc.config.model, adhoc.config.url) == (
        "org-new",
        "org/new",
        "http://other:8000/v1",
    )
    assert adhoc.config.prompt == "Q: {{question}}" and adhoc.config.temperature == 0.7
    assert adhoc.config.concurrency == 9 and adhoc.config.role == "candidate"
    assert adhoc.config.api_key is None and adhoc.config.headers == {}
    assert adhoc.config.price is None
    assert adhoc.stored() == {"id": "org/new", "model": "org-new", "endpoint": adhoc.config.url}
    assert configured.config is models["llm"] and configured.endpoint is None
    with pytest.raises(RequestValidationError) as info:
        plan_models([ModelEntry("llm", "http://elsewhere/v1")], suite, models, guard)
    assert info.value.errors()[0]["loc"] == ("body", "models", 0, "endpoint")
