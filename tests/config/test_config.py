"""Config loading: the example is valid, and every broken config names its key path."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from monitor.config import load_config
from monitor.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]

VALID = """
[server]
port = 9000

[[models]]
name = "m1"
adapter = "http"
url = "http://127.0.0.1:1/predict"
headers = { Authorization = "Bearer ${TOKEN}" }

[[suites]]
name = "s1"
dataset = "data.jsonl"
task = "classification"
expected = "label"
metrics = ["accuracy"]
models = ["m1"]
schedule = { every = "5m", jitter = "10s" }
"""


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "data.jsonl").write_text('{"id": 1, "x": 1, "label": "a"}\n')
    path = tmp_path / "config.toml"
    path.write_text(textwrap.dedent(text))
    return path


def problems_of(path: Path, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={"TOKEN": "s3cret-value"} if environ is None else environ)
    return info.value.problems


def test_example_config_is_valid_as_shipped() -> None:
    config = load_config(ROOT / "config.example.toml", environ={})
    assert [m.name for m in config.models] == ["wine-classifier"]
    assert config.models[0].url == "http://127.0.0.1:8788/predict"
    assert config.suites[0].dataset == ROOT / "monitor/demo/data/wine-test.jsonl"
    assert config.suites[0].schedule is not None
    assert config.suites[0].schedule.every == timedelta(seconds=30)


def test_valid_config_is_normalised(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, VALID), environ={"TOKEN": "s3cret-value"})
    model = config.models[0]
    assert model.headers["Authorization"].get_secret_value() == "Bearer s3cret-value"
    assert "s3cret" not in repr(config)
    assert config.suites[0].dataset == tmp_path / "data.jsonl"
    assert config.suites[0].schedule is not None
    assert config.suites[0].schedule.jitter == timedelta(seconds=10)
    assert config.store.effective_url == f"sqlite:///{tmp_path / 'monitor-data' / 'monitor.db'}"
    with pytest.raises(Exception, match="frozen"):
        config.server.port = 1  # type: ignore[misc]


def test_env_default_and_escape(tmp_path: Path) -> None:
    text = VALID.replace('"Bearer ${TOKEN}"', '"${MISSING:-fallback}$${literal}"')
    config = load_config(write(tmp_path, text), environ={})
    assert config.models[0].headers["Authorization"].get_secret_value() == "fallback${literal}"


BROKEN = [
    pytest.param(
        ("port = 9000", 'port = 9000\nallowed_endpoint_prefixes = ["http://vllm:8000", "ftp://x"]'),
        "server.allowed_endpoint_prefixes[1]: expected an http:// or https:// URL with a host",
        id="prefix-not-http",
    ),
    pytest.param(
        ("port = 9000", 'port = 9000\nallowed_endpoint_prefixes = ["http://h/v1?key=1"]'),
        "server.allowed_endpoint_prefixes[0]: a prefix is scheme://host[:port][/path]",
        id="prefix-with-query",
    ),
    pytest.param(
        ("port = 9000", "port = 9000\nmax_body_bytes = 10"),
        "server.max_body_bytes: Input should be greater than or equal to 1024",
        id="tiny-body-limit",
    ),
    pytest.param(
        ("[server]", "[server]\nprot = 1"),
        "server.prot: unknown key; did you mean 'port'?",
        id="unknown-key",
    ),
    pytest.param(
        ("port = 9000", 'port = "high"'),
        "server.port: Input should be a valid integer",
        id="wrong-type",
    ),
    pytest.param(
        ("port = 9000", "port = 70000"),
        "server.port: Input should be less than or equal to 65535",
        id="out-of-range",
    ),
    pytest.param(
        ('every = "5m"', 'every = "5 minutes"'),
        "suites[0].schedule.every: expected a duration like '30s', '5m' or '1h', got '5 minutes'",
        id="bad-duration",
    ),
    pytest.param(
        ('every = "5m", jitter = "10s"', 'cron = "61 * * * *"'),
        "suites[0].schedule.cron: invalid cron expression",
        id="bad-cron",
    ),
    pytest.param(
        ('every = "5m", jitter = "10s"', 'every = "5m", cron = "* * * * *"'),
        "suites[0].schedule: set exactly one of 'every' (a duration) or 'cron'",
        id="every-and-cron",
    ),
    pytest.param(
        ("${TOKEN}", "${NOT_SET}"),
        "models[0].headers.Authorization: environment variable 'NOT_SET' is not set",
        id="missing-env-var",
    ),
    pytest.param(
        ('models = ["m1"]', 'models = ["m2"]'),
        "suites[0].models[0]: unknown model 'm2'; defined: m1",
        id="unknown-model",
    ),
    pytest.param(
        ('dataset = "data.jsonl"', 'dataset = "missing.jsonl"'),
        "suites[0].dataset: no readable file at",
        id="unreadable-dataset",
    ),
    pytest.param(
        ('metrics = ["accuracy"]', 'metrics = ["acuracy"]'),
        "suites[0].metrics[0]: unknown metric 'acuracy'; did you mean 'accuracy'?",
        id="unknown-metric",
    ),
    pytest.param(
        ('task = "classification"', 'task = "text"'),
        "suites[0].metrics[0]: metric 'accuracy' does not apply to task 'text'",
        id="metric-task-mismatch",
    ),
    pytest.param(
        ('adapter = "http"', 'adapter = "grpc"'),
        "models[0].adapter: unknown adapter 'grpc';"
        " expected one of: openai, http, mlflow, kserve-v2",
        id="unknown-adapter",
    ),
    pytest.param(
        ('url = "http://127.0.0.1:1/predict"', 'url = "ftp://x"'),
        "models[0].url: expected an http:// or https:// URL with a host",
        id="bad-url",
    ),
    pytest.param(
        ('name = "m1"', 'name = "my model"'),
        "models[0].name: String should match pattern",
        id="bad-name",
    ),
    pytest.param(
        ("[[suites]]", "[[stream]]\nname = 'x'\n\n[[suites]]"),
        "stream: unknown key; did you mean 'streams'?",
        id="unknown-section",
    ),
    pytest.param(
        ('task = "classification"', ""), "suites[0].task: required key is missing", id="missing-key"
    ),
    pytest.param(("port = 9000", "port = 9000\n[server.x"), "not valid TOML", id="toml-syntax"),
    pytest.param(
        (
            'models = ["m1"]',
            'models = ["m1"]\nverdict = { metrics = { accuracy = { max_drop = "3 points" } } }',
        ),
        "suites[0].verdict.metrics.accuracy.max_drop",
        id="bad-max-drop",
    ),
    pytest.param(
        ('models = ["m1"]', 'models = ["m1"]\nverdict = { metrics = { f1 = { min = 0.8 } } }'),
        "verdict.metrics.f1: not a metric of this suite (expected one of: accuracy, cost,"
        " latency, tokens)",
        id="verdict-unknown-metric",
    ),
    pytest.param(
        (
            'models = ["m1"]',
            'models = ["m1"]\nverdict = { metrics = { accuracy = '
            '{ max_drop = 0.02, min_effect = "1%" } } }',
        ),
        "give max_drop and min_effect both as numbers or both as percentages",
        id="verdict-mixed-terms",
    ),
    pytest.param(
        ('models = ["m1"]', 'models = ["m1"]\nbaseline = "latest"'),
        "suites[0].baseline: Input should be 'manual' or 'auto'",
        id="bad-baseline-mode",
    ),
]


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            ('"Bearer ${TOKEN}"', '"Bearer s3cr\u00e9t-value"'),
            "models[0].headers: header 'Authorization' holds a character an HTTP header"
            " cannot carry",
        ),
        (
            ('adapter = "http"', 'adapter = "openai"\nmodel = "x"\napi_key = "s3cr\\nvalue"'),
            "models[0].api_key: api_key holds a character an HTTP header cannot carry",
        ),
    ],
    ids=["header", "api-key"],
)
def test_a_header_value_that_cannot_be_sent_is_refused_without_showing_it(
    tmp_path: Path, edit: tuple[str, str], expected: str
) -> None:
    old, new = edit
    problems = problems_of(write(tmp_path, VALID.replace(old, new, 1)))
    assert any(expected in p for p in problems), problems
    assert not any("s3cr" in p for p in problems), problems


@pytest.mark.parametrize(("edit", "expected"), BROKEN)
def test_broken_config_names_the_key_path(
    tmp_path: Path, edit: tuple[str, str], expected: str
) -> None:
    old, new = edit
    assert old in VALID
    problems = problems_of(write(tmp_path, VALID.replace(old, new, 1)))
    assert any(p.startswith(expected) or expected in p for p in problems), problems
    assert all("\n" not in p for p in problems)


def test_duplicate_model_name(tmp_path: Path) -> None:
    model = VALID[VALID.index("[[models]]") : VALID.index("[[suites]]")]
    problems = problems_of(write(tmp_path, VALID + model))
    assert "models[1].name: duplicate name 'm1' (first used by models[0])" in problems


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = VALID.replace("port = 9000", "port = -1").replace('every = "5m"', 'every = "soon"')
    text = text.replace('models = ["m1"]', 'models = ["nope"]')
    problems = problems_of(write(tmp_path, text))
    assert len(problems) == 3, problems


def test_secret_never_appears_in_messages(tmp_path: Path) -> None:
    text = VALID.replace('jitter = "10s"', 'jitter = "${TOKEN}"')
    problems = problems_of(write(tmp_path, text))
    assert problems == [
        "suites[0].schedule.jitter: expected a duration like '30s', '5m' or '1h', got '${TOKEN}'"
    ]


def test_unreadable_file(tmp_path: Path) -> None:
    problems = problems_of(tmp_path / "nope.toml")
    assert problems[0].startswith("cannot read the file")


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://monitor:s3cr3t@db.internal:5432/monitor",
        "postgresql://monitor:p%40ss%2Fword@127.0.0.1/monitor?sslmode=require",
        "postgresql://monitor@127.0.0.1/monitor",
        "sqlite:////var/lib/monitor/monitor.db",
    ],
    ids=["password", "quoted-password", "no-password", "sqlite"],
)
def test_shown_store_url_agrees_with_the_stores_redaction(url: str) -> None:
    from monitor.config import StoreConfig
    from monitor.store import redact_url

    shown = StoreConfig(url=url).shown_url
    assert shown == redact_url(url)
    assert "s3cr3t" not in shown and "p%40ss" not in shown
