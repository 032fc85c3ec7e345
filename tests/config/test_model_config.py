"""``[[models]]`` for every adapter: valid tables load with their defaults normalised, and
each mistake names its key path without echoing a secret."""

from __future__ import annotations

import re
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from monitor.config import (
    Config,
    KServeModelConfig,
    MlflowModelConfig,
    OpenAIModelConfig,
    RetryConfig,
    load_config,
)
from monitor.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]

SUITE = """
[[suites]]
name = "s"
dataset = "data.jsonl"
task = "classification"
expected = "label"
metrics = ["accuracy"]
models = ["m"]
"""

OPENAI = """
[[models]]
name = "m"
adapter = "openai"
url = "http://127.0.0.1:8000/v1"
model = "llama-3.1-8b"
api_key = "${OPENAI_API_KEY}"
rate_limit = "20/s"
retry = { attempts = 5, backoff = "100ms", max_backoff = "10s" }
"""


def load(tmp_path: Path, models: str) -> Config:
    (tmp_path / "data.jsonl").write_text('{"id": 1, "x": 1, "label": "a"}\n')
    path = tmp_path / "config.toml"
    path.write_text(textwrap.dedent(models) + SUITE)
    return load_config(path, environ={"OPENAI_API_KEY": "sk-secret"})


def problems(tmp_path: Path, models: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, models)
    return info.value.problems


def test_openai_model_loads_with_secret_key_and_rate(tmp_path: Path) -> None:
    config = load(tmp_path, OPENAI)
    (model,) = config.models
    assert isinstance(model, OpenAIModelConfig)
    assert model.api_key is not None and model.api_key.get_secret_value() == "sk-secret"
    assert "sk-secret" not in repr(model) and "sk-secret" not in str(model.model_dump())
    assert model.rate_limit is not None and model.rate_limit.per_second == 20
    assert model.retry == RetryConfig(
        attempts=5, backoff=timedelta(milliseconds=100), max_backoff=timedelta(seconds=10)
    )
    assert (model.endpoint, model.temperature, model.concurrency) == ("chat", 0.0, 4)


def test_batching_models_load(tmp_path: Path) -> None:
    text = """
    [[models]]
    name = "m"
    adapter = "mlflow"
    url = "http://127.0.0.1:5000"
    columns = ["x"]
    batch_size = 64

    [[models]]
    name = "k"
    adapter = "kserve-v2"
    url = "http://127.0.0.1:8080"
    model = "wine"
    inputs = [{ name = "input-0", field = "features", datatype = "FP64", shape = [13] }]
    """
    mlflow, kserve = load(tmp_path, text).models
    assert isinstance(mlflow, MlflowModelConfig) and mlflow.batch_size == 64
    assert mlflow.batch_linger == timedelta(milliseconds=5) and mlflow.format == "dataframe_split"
    assert isinstance(kserve, KServeModelConfig) and kserve.inputs[0].shape == (13,)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (('rate_limit = "20/s"', 'rate_limit = "fast"'), "models[0].rate_limit: expected a rate"),
        (('rate_limit = "20/s"', 'rate_limit = "0/s"'), "models[0].rate_limit: expected a rate"),
        (("attempts = 5", "attempts = 1000"), "models[0].retry.attempts: Input should be less"),
        (("attempts = 5", "attempts = 5, jitter = 1"), "models[0].retry.jitter: unknown key"),
        (
            ('max_backoff = "10s"', 'max_backoff = "10ms"'),
            "models[0].retry: max_backoff must be at least backoff",
        ),
        (('model = "llama-3.1-8b"', ""), "models[0].model: required key is missing"),
        (
            ('model = "llama-3.1-8b"', 'model = "x"\nbatch_size = 4'),
            "models[0].batch_size: unknown key",
        ),
        (
            ('model = "llama-3.1-8b"', 'model = "x"\nendpoint = "embeddings"'),
            "models[0].endpoint: Input should be 'chat' or 'completions'",
        ),
        (
            ('model = "llama-3.1-8b"', 'model = "x"\nsytem_prompt = "hi"'),
            "models[0].sytem_prompt: unknown key; did you mean 'system_prompt'?",
        ),
        (
            ('model = "llama-3.1-8b"', 'model = "x"\nhttp_client = "curl"'),
            "models[0].http_client: Input should be 'aiohttp' or 'httpx', got 'curl'",
        ),
        (
            ('model = "llama-3.1-8b"', 'model = "x"\nhttp_client = "fast"'),
            "models[0].http_client: 'fast' was removed with the hand-written HTTP/1.1 client;"
            " expected one of: 'aiohttp', 'httpx'",
        ),
        (
            ('model = "llama-3.1-8b"', 'model = "x"\nca_bundle = "certs/ca.pem"'),
            "models[0].ca_bundle: no readable file at '",
        ),
        (
            ('model = "llama-3.1-8b"', 'model = "x"\nca_bundle = "data.jsonl"\ntls_verify = false'),
            "models[0]: ca_bundle is set but tls_verify is false",
        ),
    ],
    ids=[
        "rate-syntax",
        "rate-zero",
        "unbounded-retries",
        "retry-unknown-key",
        "backoff-order",
        "model-missing",
        "batching-key-on-openai",
        "endpoint-choice",
        "typo",
        "http-client-choice",
        "http-client-fast-removed",
        "ca-bundle-missing",
        "ca-bundle-unverified",
    ],
)
def test_broken_model_names_the_key_path(
    tmp_path: Path, edit: tuple[str, str], expected: str
) -> None:
    old, new = edit
    assert old in OPENAI
    found = problems(tmp_path, OPENAI.replace(old, new, 1))
    assert any(p.startswith(expected) for p in found), found
    assert all("sk-secret" not in p for p in found)


def test_tls_keys_default_to_verifying_and_ca_bundle_resolves_next_to_the_file(
    tmp_path: Path,
) -> None:
    (tmp_path / "ca.pem").write_text("not read at load")
    (plain,) = load(tmp_path, OPENAI).models
    assert plain.http_client == "aiohttp" and plain.tls_verify and plain.ca_bundle is None
    (bundled,) = load(tmp_path, OPENAI + 'ca_bundle = "ca.pem"\n').models
    assert bundled.ca_bundle == (tmp_path / "ca.pem").resolve()


def test_api_key_value_is_never_echoed(tmp_path: Path) -> None:
    found = problems(tmp_path, OPENAI.replace('model = "llama-3.1-8b"', "model = 1"))
    assert found and all("sk-secret" not in p for p in found)


def test_kserve_tensor_errors(tmp_path: Path) -> None:
    text = """
    [[models]]
    name = "m"
    adapter = "kserve-v2"
    url = "http://127.0.0.1:8080"
    model = "wine"
    inputs = [{ name = "x", field = "f", datatype = "FLOAT" }]
    """
    found = problems(tmp_path, text)
    assert any(p.startswith("models[0].inputs[0].datatype: Input should be") for p in found)


def test_commented_example_models_are_valid(tmp_path: Path) -> None:
    """The openai (a model and a judge), mlflow and kserve-v2 examples in
    config.example.toml, uncommented."""
    text = (ROOT / "config.example.toml").read_text()
    block = text[text.index("# An OpenAI-compatible server") : text.index("# Suites: a dataset")]
    key = re.compile(r"^(\[\[models\]\]|[a-z_]+ = )")
    lines = [line[2:] for line in block.splitlines() if key.match(line[2:])]
    models = "\n".join(lines).replace("[[models]]", "\n[[models]]")
    config = load(tmp_path, models + '\n[[models]]\nname = "m"\nadapter = "http"\nurl = "http://h"')
    adapters = [(m.adapter, m.role) for m in config.models]
    assert adapters == [
        ("openai", "production"),
        ("openai", "judge"),
        ("mlflow", "production"),
        ("kserve-v2", "production"),
        ("http", "production"),
    ]
