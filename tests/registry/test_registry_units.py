"""The MLflow registry client against ``httpx.MockTransport``: the REST calls it makes,
every failure mapped to a ``RegistryError`` that names the registry (never its user info
or the token), and the ``registry`` key of a model in the configuration."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from monitor.config import RegistryConfig, load_config
from monitor.errors import ConfigError, RegistryError
from monitor.registry import MlflowRegistry, open_registry

TOKEN = "registry-token-0123456789"
Handler = Callable[[httpx.Request], httpx.Response]


def registry(**config: object) -> RegistryConfig:
    return RegistryConfig(
        **{"kind": "mlflow", "url": "http://user:pw@mlflow.test:5000/", "name": "churn"}
        | {"alias": "champion"}
        | config
    )


def client(
    handler: Handler, *, environ: dict[str, str] | None = None, **config: object
) -> MlflowRegistry:
    return open_registry(
        registry(**config),
        transport=httpx.MockTransport(handler),
        environ=environ if environ is not None else {},
    )


def test_the_alias_is_looked_up_and_moved_and_the_version_tagged() -> None:
    seen: list[tuple[str, str, dict[str, object]]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else dict(request.url.params)
        seen.append((request.method, request.url.path, body))
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
        if request.method == "GET":
            return httpx.Response(200, json={"model_version": {"name": "churn", "version": "7"}})
        return httpx.Response(200, json={})

    with client(handler, environ={"REG_TOKEN": TOKEN}, token_env="REG_TOKEN") as mlflow:
        assert mlflow.alias_version() == "7"
        mlflow.set_tags("7", {"monitor.outcome": "pass", "monitor.verdict_id": "3"})
        mlflow.set_alias("production", "7")
    api = "/api/2.0/mlflow"
    assert seen == [
        ("GET", f"{api}/registered-models/alias", {"name": "churn", "alias": "champion"}),
        (
            "POST",
            f"{api}/model-versions/set-tag",
            {"name": "churn", "version": "7", "key": "monitor.outcome", "value": "pass"},
        ),
        (
            "POST",
            f"{api}/model-versions/set-tag",
            {"name": "churn", "version": "7", "key": "monitor.verdict_id", "value": "3"},
        ),
        (
            "POST",
            f"{api}/registered-models/alias",
            {"name": "churn", "alias": "production", "version": "7"},
        ),
    ]


def _raise(exc: Exception) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return handler


def _answer(status: int, **kwargs: object) -> Handler:
    return lambda request: httpx.Response(status, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("handler", "expected"),
    [
        pytest.param(
            _raise(httpx.ConnectError("[Errno 111] Connection refused")),
            "MLflow registry at http://mlflow.test:5000 is unreachable (alias 'champion' of"
            " registered model 'churn'): ConnectError: [Errno 111] Connection refused",
            id="refused",
        ),
        pytest.param(
            _raise(httpx.ReadTimeout("timed out")),
            "MLflow registry at http://mlflow.test:5000: alias 'champion' of registered model"
            " 'churn': no answer within 10 s",
            id="timeout",
        ),
        pytest.param(
            _answer(401, text="no"),
            "HTTP 401: the registry refused the credentials (check $REG_TOKEN)",
            id="unauthorized",
        ),
        pytest.param(
            _answer(
                400,
                json={
                    "error_code": "INVALID_PARAMETER_VALUE",
                    "message": "Registered model alias champion not found.",
                },
            ),
            "HTTP 400 INVALID_PARAMETER_VALUE: Registered model alias champion not found.",
            id="no-such-alias",
        ),
        pytest.param(
            _answer(502, text="<html>bad gateway</html>"),
            "alias 'champion' of registered model 'churn': HTTP 502 Bad Gateway",
            id="not-mlflow",
        ),
        pytest.param(
            _answer(200, json={"model_version": {"name": "churn"}}),
            "the answer for alias 'champion' of registered model 'churn' holds no"
            " model_version.version",
            id="no-version",
        ),
        pytest.param(
            _answer(200, text="[]"),
            "the answer is not a JSON object",
            id="not-an-object",
        ),
    ],
)
def test_failures_are_registry_errors_that_say_what_happened(
    handler: Handler, expected: str
) -> None:
    with (
        client(handler, environ={"REG_TOKEN": TOKEN}, token_env="REG_TOKEN") as mlflow,
        pytest.raises(RegistryError) as info,
    ):
        mlflow.alias_version()
    message = str(info.value)
    assert expected in message
    assert TOKEN not in message and "pw" not in message and "user" not in message
    # No traceback of httpx's inside: the message is the whole story.
    assert info.value.__cause__ is None
    assert info.value.__context__ is None or info.value.__suppress_context__


def test_a_token_env_that_is_not_set_is_an_error_before_any_call() -> None:
    calls: list[httpx.Request] = []
    with pytest.raises(RegistryError, match=r"registry.token_env names \$REG_TOKEN, which is not"):
        client(lambda r: calls.append(r) or httpx.Response(200), token_env="REG_TOKEN")  # type: ignore[func-returns-value]
    assert calls == []


def test_without_token_env_no_authorization_header_is_sent() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert "authorization" not in request.headers
        return httpx.Response(200, json={"model_version": {"version": 2}})

    with client(handler, url="http://mlflow.test:5000") as mlflow:
        assert mlflow.alias_version() == "2"


def test_user_info_in_the_url_is_sent_as_basic_auth() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == "Basic dXNlcjpwdw=="  # user:pw
        return httpx.Response(200, json={"model_version": {"version": "1"}})

    with client(handler) as mlflow:
        assert mlflow.alias_version() == "1"


MODEL = """
[[models]]
name = "m"
adapter = "http"
url = "{url}"
{registry}

[[suites]]
name = "s"
dataset = "data.jsonl"
task = "classification"
expected = "label"
metrics = ["accuracy"]
models = ["m"]
"""


def config_problems(tmp_path: Path, url: str, registry: str) -> list[str]:
    (tmp_path / "data.jsonl").write_text('{"id": 1, "x": 1, "label": "a"}\n')
    path = tmp_path / "config.toml"
    path.write_text(textwrap.dedent(MODEL.format(url=url, registry=registry)))
    try:
        load_config(path, environ={})
    except ConfigError as exc:
        return exc.problems
    return []


def test_a_registry_fills_the_version_into_the_url(tmp_path: Path) -> None:
    (tmp_path / "data.jsonl").write_text('{"id": 1, "x": 1, "label": "a"}\n')
    path = tmp_path / "config.toml"
    registry = (
        'registry = { kind = "mlflow", url = "http://127.0.0.1:5000", name = "churn",'
        ' alias = "champion", token_env = "MLFLOW_TRACKING_TOKEN" }'
    )
    path.write_text(MODEL.format(url="http://serve.test/v{version}/predict", registry=registry))
    (model,) = load_config(path, environ={}).models
    assert model.registry is not None and model.registry.alias == "champion"
    assert model.with_version("3").url == "http://serve.test/v3/predict"
    # A version cannot change the URL's shape.
    assert model.with_version("1/../x?y").url == "http://serve.test/v1%2F..%2Fx%3Fy/predict"


@pytest.mark.parametrize(
    ("url", "registry", "expected"),
    [
        pytest.param(
            "http://serve.test/v{version}",
            "",
            "models[0]: url holds '{version}' but the model has no registry",
            id="version-without-registry",
        ),
        pytest.param(
            "http://serve.test",
            'registry = { kind = "mlflow", url = "http://r.test", name = "c", alais = "x" }',
            "models[0].registry.alais: unknown key; did you mean 'alias'?",
            id="misspelt-key",
        ),
        pytest.param(
            "http://serve.test",
            'registry = { kind = "sagemaker", url = "http://r.test", name = "c", alias = "x" }',
            "models[0].registry.kind:",
            id="unknown-kind",
        ),
        pytest.param(
            "http://serve.test",
            'registry = { kind = "mlflow", url = "ftp://r.test", name = "c", alias = "x" }',
            "models[0].registry.url: expected an http:// or https:// URL with a host",
            id="bad-url",
        ),
    ],
)
def test_registry_mistakes_name_their_key(
    tmp_path: Path, url: str, registry: str, expected: str
) -> None:
    problems = config_problems(tmp_path, url, registry)
    assert any(expected in p for p in problems), problems


def _report(**run: object) -> Any:
    """The parts of a ``GateReport`` a promotion reads."""
    verdict = SimpleNamespace(id=7, outcome="pass", suite="qa", review=None)
    fields = {"id": 5, "model": "cand", "model_version": "3", "dataset_sha256": "d" * 64}
    return SimpleNamespace(
        verdict=verdict,
        run=SimpleNamespace(**(fields | {"tier": ""} | run)),
        baseline=SimpleNamespace(id=2),
    )


def test_a_refused_promotion_records_nothing_and_a_done_one_is_audited(tmp_path: Path) -> None:
    from monitor.registry.promotion import gate_evidence, promote
    from monitor.store import Store

    store = Store(f"sqlite:///{tmp_path / 'monitor.db'}")
    store.upgrade()
    calls: list[str] = []

    def refusing(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path.rsplit("/", 1)[-1])
        if request.url.path.endswith("/registered-models/alias"):
            return httpx.Response(403, json={"error_code": "PERMISSION_DENIED"})
        return httpx.Response(200, json={})

    try:
        with client(refusing) as mlflow, pytest.raises(RegistryError, match="HTTP 403"):
            promote(
                mlflow, "3", "champion", gate_evidence(_report()), audit=store.audit, actor="ci"
            )
        # The tags went first (evidence before the alias); the alias was refused.
        assert calls == ["set-tag"] * 6 + ["alias"]
        assert store.audit.audit_entries() == []

        with client(lambda r: httpx.Response(200, json={})) as mlflow:
            evidence = gate_evidence(_report(tier="smoke"))
            done = promote(mlflow, "3", "champion", evidence, audit=store.audit, actor="ci")
        assert done.tags["monitor.tier"] == "smoke" and done.version == "3"
        (entry,) = store.audit.audit_entries()
        assert (entry.action, entry.actor, entry.target) == (
            "registry.promoted",
            "ci",
            "model version churn/3",
        )
        assert entry.details["registry"] == "MLflow registry at http://mlflow.test:5000"
        assert entry.details["tags"]["monitor.verdict_id"] == "7"
    finally:
        store.close()
