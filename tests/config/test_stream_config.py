"""``[[streams]]`` and ``[[server.tokens]]``: valid tables load, broken ones name their key."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from monitor.config import FilesSourceConfig, IngestSourceConfig, load_config
from monitor.errors import ConfigError

STREAM = """
[server]
tokens = [{ name = "ci", token = "${WRITE_TOKEN}", scopes = ["read", "write"] }]

[[streams]]
name = "wine"
timestamp = "ts"
record_id = "id"
numerical = ["alcohol", "ash"]
categorical = ["color"]
text = ["note"]
prediction = "quality"
prediction_kind = "categorical"
label = "truth"
reference = { file = "ref.csv" }
window = { every = "1h", min_rows = 50 }
methods = { numerical = ["psi", "ks"] }
thresholds = { mode = "p-value", alpha = 0.01, correction = "bh" }
schedule = { every = "5m" }
"""

SECRET = "a-long-secret-token-value"


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "ref.csv").write_text("ts,alcohol\n2024-01-01T00:00:00Z,1\n")
    path = tmp_path / "config.toml"
    path.write_text(textwrap.dedent(text))
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={"WRITE_TOKEN": SECRET})
    return info.value.problems


def test_stream_loads_with_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, STREAM), environ={"WRITE_TOKEN": SECRET})
    (stream,) = config.streams
    assert stream.reference.file == tmp_path / "ref.csv"
    assert stream.reference.kind == "file"
    assert isinstance(stream.source, IngestSourceConfig)
    assert stream.window.every == timedelta(hours=1) and stream.window.min_rows == 50
    assert stream.monitored_columns() == [
        ("alcohol", "numerical"),
        ("ash", "numerical"),
        ("color", "categorical"),
        ("note", "text"),
        ("quality", "categorical"),
    ]
    assert stream.schema_columns()[0] == "ts" and stream.schema_columns()[-1] == "truth"
    assert config.stream("wine") is stream and config.stream("nope") is None
    (token,) = config.server.tokens
    assert token.token.get_secret_value() == SECRET
    assert SECRET not in repr(config) and SECRET not in str(config.model_dump())


def test_files_source_resolves_glob(tmp_path: Path) -> None:
    text = STREAM.replace(
        "schedule = {", 'source = { kind = "files", glob = "in/*.csv" }\nschedule = {'
    )
    (stream,) = load_config(write(tmp_path, text), environ={"WRITE_TOKEN": SECRET}).streams
    assert isinstance(stream.source, FilesSourceConfig)
    assert stream.source.glob == str(tmp_path / "in/*.csv")


BROKEN = [
    pytest.param(
        ('window = { every = "1h", min_rows = 50 }', 'window = { every = "1h", rows = 10 }'),
        "streams[0].window: set exactly one of 'every' (a duration) or 'rows' (a count)",
        id="window-both",
    ),
    pytest.param(
        ('reference = { file = "ref.csv" }', 'reference = { file = "missing.csv" }'),
        "streams[0].reference.file: no readable file at",
        id="reference-missing-file",
    ),
    pytest.param(
        ('reference = { file = "ref.csv" }', 'reference = { query = "SELECT 1" }'),
        "streams[0].reference: 'query' and 'url' go together",
        id="reference-query-without-url",
    ),
    pytest.param(
        ('reference = { file = "ref.csv" }', "reference = {}"),
        "streams[0].reference: set exactly one of",
        id="reference-none",
    ),
    pytest.param(
        ("schedule = {", 'source = { kind = "files" }\nschedule = {'),
        "streams[0].source.glob: required key is missing",
        id="files-without-glob",
    ),
    pytest.param(
        ("schedule = {", 'source = { kind = "sql", url = "not-a-url", query = "q" }\nschedule = {'),
        "streams[0].source.url: expected a SQLAlchemy URL",
        id="bad-sql-url",
    ),
    pytest.param(
        (
            'window = { every = "1h", min_rows = 50 }',
            'window = { rows = 100 }\nsource = { kind = "files", glob = "*.csv" }',
        ),
        "streams[0]: row-count windows need the ingest source",
        id="rows-window-on-files",
    ),
    pytest.param(
        ("schedule = {", 'source = { kind = "kafka" }\nschedule = {'),
        "streams[0].source",
        id="unknown-source-kind",
    ),
    pytest.param(
        ('methods = { numerical = ["psi", "ks"] }', 'methods = { numerical = ["chi2"] }'),
        "streams[0].methods: numerical: method 'chi2' does not apply",
        id="method-kind-mismatch",
    ),
    pytest.param(
        ('categorical = ["color"]', 'categorical = ["alcohol"]'),
        "streams[0]: column 'alcohol' is named twice in the schema",
        id="duplicate-column",
    ),
    pytest.param(
        ('record_id = "id"', ""),
        "streams[0]: 'label' is joined by record id: set 'record_id' too",
        id="label-without-record-id",
    ),
    pytest.param(
        ('numerical = ["alcohol", "ash"]', 'numerical = ["al cohol"]'),
        "streams[0].numerical[0]: String should match pattern",
        id="bad-column-name",
    ),
    pytest.param(
        ("alpha = 0.01", "alpha = 2"),
        "streams[0].thresholds.alpha: Input should be less than 1",
        id="alpha-out-of-range",
    ),
    pytest.param(
        ("schedule = {", 'performance = { score = "nope" }\nschedule = {'),
        "streams[0]: performance.score: 'nope' must be one of the numerical columns",
        id="performance-score-not-numerical",
    ),
    pytest.param(
        ("schedule = {", 'performance = { metrics = ["mae"] }\nschedule = {'),
        "streams[0]: performance.metrics[0]: 'mae' is not a classification metric",
        id="performance-metric-of-another-task",
    ),
    pytest.param(
        ("schedule = {", 'performance = { metrics = ["roc-auc"] }\nschedule = {'),
        "streams[0]: performance.metrics[0]: 'roc-auc' needs performance.score",
        id="performance-score-metric-without-score",
    ),
    pytest.param(
        ("schedule = {", 'performance = { metrics = ["acuracy"] }\nschedule = {'),
        "streams[0].performance.metrics[0]: unknown metric 'acuracy'; did you mean 'accuracy'?",
        id="performance-unknown-metric",
    ),
    pytest.param(
        ("schedule = {", "performance = { target = { mae = 1.0 } }\nschedule = {"),
        "streams[0]: performance.target: 'mae' is not one of the window's metrics",
        id="performance-target-not-a-metric",
    ),
    pytest.param(
        ("schedule = {", 'performance = { label_delay = "8d" }\nschedule = {'),
        "streams[0].performance: 'reopen_within' must be at least 'label_delay'",
        id="performance-label-delay-past-reopen-window",
    ),
    pytest.param(
        ("schedule = {", 'segments = ["alcohol"]\nschedule = {'),
        "streams[0]: segments[0]: 'alcohol' must be one of the categorical columns",
        id="segment-not-categorical",
    ),
    pytest.param(
        ("schedule = {", 'fairness = { groups = "note" }\nschedule = {'),
        "streams[0]: fairness.groups: 'note' must be one of the categorical columns",
        id="fairness-groups-not-categorical",
    ),
    pytest.param(
        ("[[streams]]", '[[streams]]\nname = "wine"\ntimestamp = "ts"\n[[streams]]'),
        "streams[1].name: duplicate name 'wine' (first used by streams[0])",
        id="duplicate-stream",
    ),
]


@pytest.mark.parametrize(("edit", "expected"), BROKEN)
def test_broken_stream_names_the_key_path(
    tmp_path: Path, edit: tuple[str, str], expected: str
) -> None:
    old, new = edit
    assert old in STREAM
    problems = problems_of(write(tmp_path, STREAM.replace(old, new, 1)))
    assert any(p.startswith(expected) for p in problems), problems


def test_performance_defaults_follow_the_task(tmp_path: Path) -> None:
    """A stream with a prediction and a label scores its windows; a categorical label is
    classification, and the score column adds ROC AUC and log loss."""
    text = STREAM.replace("schedule = {", 'performance = { score = "ash" }\nschedule = {', 1)
    (stream,) = load_config(write(tmp_path, text), environ={"WRITE_TOKEN": SECRET}).streams
    assert stream.measures_performance and stream.task == "classification"
    assert stream.performance.label_delay == timedelta(hours=1)
    specs = stream.performance.metric_specs(stream.task)
    assert specs[:4] == ("accuracy", "precision", "recall", "f1")
    assert {"name": "roc-auc", "positive": "1"} in specs


def test_short_token_is_refused_without_echoing_it(tmp_path: Path) -> None:
    path = write(tmp_path, STREAM)
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={"WRITE_TOKEN": "short-secret"})
    message = str(info.value)
    assert "server.tokens[0].token: a token must be at least 16 characters long" in message
    assert "short-secret" not in message


def test_a_shadow_prediction_is_stored_with_the_prediction_kind_not_drift_judged(
    tmp_path: Path,
) -> None:
    text = STREAM.replace(
        'prediction_kind = "categorical"\n',
        'prediction_kind = "categorical"\nshadow_prediction = "shadow_quality"\n'
        "shadow = { min_pairs = 10, confidence = 0.9 }\n",
    )
    (stream,) = load_config(write(tmp_path, text), environ={"WRITE_TOKEN": SECRET}).streams
    assert stream.shadow_prediction == "shadow_quality"
    assert (stream.shadow.min_pairs, stream.shadow.confidence) == (10, 0.9)
    assert "shadow_quality" in stream.schema_columns()
    assert ("shadow_quality", "categorical") in stream.stored_columns()
    assert "shadow_quality" not in dict(stream.drift_columns())


NO_PREDICTION = STREAM.replace('prediction = "quality"\nprediction_kind = "categorical"\n', "")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            NO_PREDICTION.replace("label = ", 'shadow_prediction = "shadow_quality"\nlabel = '),
            "shadow_prediction: the shadow model's prediction is compared with 'prediction'",
        ),
        (
            STREAM.replace("label = ", 'shadow_prediction = "quality"\nlabel = '),
            "column 'quality' is named twice",
        ),
    ],
    ids=["without-prediction", "same-column"],
)
def test_a_bad_shadow_prediction_is_refused(tmp_path: Path, text: str, expected: str) -> None:
    assert any(expected in p for p in problems_of(write(tmp_path, text)))


def test_shadow_settings_are_checked(tmp_path: Path) -> None:
    text = STREAM.replace("label = ", "shadow = { confidence = 1.5 }\nlabel = ")
    assert any("shadow.confidence" in p for p in problems_of(write(tmp_path, text)))
    text = STREAM.replace("label = ", "shadow = { min_pairs = 5 }\nlabel = ")
    assert any("set 'shadow_prediction'" in p for p in problems_of(write(tmp_path, text)))
