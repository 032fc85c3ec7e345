"""``check-config`` refuses what the first run would fail on, with the run's own words,
and never prints a traceback, whatever shape of TOML it is fed."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor.cli import cli
from monitor.config import load_config
from monitor.records import RunStatus
from monitor.runs.runner import Runner
from monitor.store import Store
from tests.servers import ROOT, deadline

SUITE = """
[[models]]
name = "prod"
adapter = "openai"
url = "http://127.0.0.1:9/v1"
model = "m"
prompt = "{{{{question}}}}"

[[suites]]
name = "qa"
dataset = "{dataset}"
task = "text"
id = "id"
expected = "answer"
metrics = ["exact-match"]
models = ["prod"]
"""

GOOD_ROW = b'{"id": "a", "question": "q", "answer": "x"}\n'
BAD_DATASETS = [
    pytest.param("d.jsonl", GOOD_ROW * 2, ":2: case id 'a' appears more", id="duplicate-id"),
    pytest.param("d.jsonl", b'{"question": "q", "answer": "x"}\n', ":1: no field 'id'", id="no-id"),
    pytest.param(
        "d.jsonl", b'{"id": "a", "question": "q"}\n', ":1: no field 'answer'", id="no-expected"
    ),
    pytest.param("d.jsonl", GOOD_ROW + b"{not json\n", ":2: not valid JSON", id="bad-json-line"),
    pytest.param(
        "d.jsonl", GOOD_ROW + b"[" * 100_000 + b"\n", ":2: not valid JSON", id="deep-json"
    ),
    pytest.param("d.jsonl", b"[1]\n", ":1: expected a JSON object", id="not-an-object"),
    pytest.param("d.jsonl", b'{"id": "\xff"}\n', ":1: not UTF-8 text", id="not-utf8"),
    pytest.param("d.jsonl", b"", ": the dataset has no rows", id="empty"),
    pytest.param("d.jsonl", b"\n\n", ": the dataset has no rows", id="blank-lines"),
    pytest.param("d.csv", b"id,question,answer\n1,q,x\n1,q,y\n", ":3: case id '1'", id="csv-dup"),
    pytest.param("d.csv", b"id,question\n1,q\n", ":2: no field 'answer'", id="csv-no-expected"),
    pytest.param("d.csv", b"id,question,answer\n", ": the dataset has no rows", id="csv-empty"),
    pytest.param("d.csv", b'id,question,answer\n1,"q\n', ":2: not valid CSV", id="csv-bad-quote"),
    pytest.param("d.parquet", b"PAR1 not really", "not a readable Parquet file", id="bad-parquet"),
]


def _check_config(config: Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["check-config", str(config)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def _run_error(config: Path, tmp_path: Path) -> str:
    """The error the first run of the suite is stored with (a real runner and store)."""
    loaded = load_config(config)
    store = Store(f"sqlite:///{tmp_path / 'runs.db'}")
    store.upgrade()
    try:
        run = asyncio.run(Runner(store).run(loaded.suites[0], loaded.models[0]))
    finally:
        store.close()
    assert run.status is RunStatus.FAILED
    assert run.error is not None
    return run.error


@pytest.mark.parametrize(("name", "content", "says"), BAD_DATASETS)
def test_a_bad_dataset_fails_check_config_as_it_fails_the_run(
    tmp_path: Path, name: str, content: bytes, says: str
) -> None:
    dataset = tmp_path / name
    dataset.write_bytes(content)
    config = tmp_path / "monitor.toml"
    config.write_text(SUITE.format(dataset=dataset))
    code, out, err = _check_config(config)
    error = _run_error(config, tmp_path)
    assert code == 2 and out == ""
    assert err == f"{config}: suites[0].dataset: {error}\n"
    assert error.startswith(f"{dataset}") and says in error


def test_every_bad_dataset_is_reported_at_once(tmp_path: Path) -> None:
    config = tmp_path / "monitor.toml"
    config.write_text(SUITE.split("[[suites]]")[0] + _suites(tmp_path))
    code, _, err = _check_config(config)
    assert code == 2
    assert [line.split(": ", 2)[1] for line in err.splitlines()] == [
        "suites[0].dataset",
        "suites[2].dataset",
        "suites[3].dataset",
    ]


def _suites(tmp_path: Path) -> str:
    tables = []
    for i, content in enumerate([GOOD_ROW * 2, GOOD_ROW, b"", b"\xff\n"]):
        dataset = tmp_path / f"d{i}.jsonl"
        dataset.write_bytes(content)
        table = "[[suites]]" + SUITE.split("[[suites]]")[1].format(dataset=dataset)
        tables.append(table.replace('name = "qa"', f'name = "qa{i}"'))
    return "".join(tables)


def test_a_good_dataset_passes(tmp_path: Path) -> None:
    dataset = tmp_path / "d.jsonl"
    dataset.write_bytes(GOOD_ROW)
    config = tmp_path / "monitor.toml"
    config.write_text(SUITE.format(dataset=dataset))
    code, out, err = _check_config(config)
    assert (code, err) == (0, "") and "OK" in out


MODEL = """
[[models]]
name = "prod"
adapter = "openai"
url = "http://127.0.0.1:9/v1"
model = "m"
prompt = "p"
"""
GARBAGE = [
    pytest.param(
        "a = " + "[" * 1000 + "]" * 1000, "a (line 1): nested more than 32", id="1000-deep"
    ),
    pytest.param("[server]\nport = " + "[" * 100 + "]" * 100, "server.port: nested", id="100-deep"),
    pytest.param(
        MODEL + "headers = { a = " + "[" * 3000 + "]" * 3000 + " }",
        "models[0].headers (line 8): nested",
        id="3000-deep-inline",
    ),
    pytest.param(
        MODEL + 'timeout = "99999999999999999999d"',
        "models[0].timeout: a duration must be at most",
        id="huge-duration",
    ),
    pytest.param(
        MODEL + "timeout = 1e400",
        "models[0].timeout: a duration must be at most",
        id="inf-duration",
    ),
    pytest.param(
        MODEL + "timeout = nan", "models[0].timeout: expected a duration", id="nan-duration"
    ),
    pytest.param(
        MODEL + "timeout = " + "9" * 30,
        "models[0].timeout: a duration must be at most",
        id="30-digit-duration",
    ),
    pytest.param(
        MODEL + 'timeout = "0s"',
        "models[0].timeout: must be a positive duration",
        id="zero-timeout",
    ),
    pytest.param(
        MODEL.replace("[[models]]", '[[models]]\nretry = { backoff = "' + "9" * 400 + 's" }'),
        "models[0].retry.backoff: a duration must be at most",
        id="400-digit-backoff",
    ),
    pytest.param("suites = 5", "suites: ", id="suites-a-number"),
    pytest.param('models = "x"', "models: ", id="models-a-string"),
    pytest.param("[suites]\nname = 1", "suites: ", id="suites-a-table"),
    pytest.param("[[models]]\n[[models]]", "models[0]", id="empty-tables"),
    pytest.param(
        MODEL + '[[suites]]\nname = "s"\nmetrics = [[[]]]', "suites[0]", id="metrics-nested-arrays"
    ),
    pytest.param(
        MODEL + '[[suites]]\nname = "s"\ndataset = "x.jsonl"\ntask = "classification"\n'
        'expected = "y"\nmodels = ["prod"]\nmetrics = [{ name = "f1", average = "mean" }]',
        "option 'average' of metric 'f1': expected one of macro, micro, weighted",
        id="average-mean",
    ),
    pytest.param(
        '[alerts]\n[[alerts.rules]]\nname = "r"\nkind = "run_failed"\nsuite = "nope"\n'
        'model = "prood"\n' + MODEL,
        "alerts.rules[0].suite: unknown suite 'nope'",
        id="rule-unknown-suite",
    ),
    pytest.param(
        '[alerts]\n[[alerts.rules]]\nname = "r"\nkind = "run_failed"\nmodel = "prood"\n' + MODEL,
        "alerts.rules[0].model: unknown model 'prood'; did you mean 'prod'?",
        id="rule-unknown-model",
    ),
    pytest.param(
        '[alerts]\n[[alerts.rules]]\nname = "r"\nkind = "drift"\nstream = "clicks"\n',
        "alerts.rules[0].stream: unknown stream 'clicks'",
        id="rule-unknown-stream",
    ),
    pytest.param(
        '[alerts]\nrules = [{ name = "r", kind = "run_failed", for = "99999999999999999999d" }]',
        "alerts.rules[0].for: a duration must be at most",
        id="rule-huge-for",
    ),
    pytest.param("\xff", "not valid TOML", id="not-utf8"),
    pytest.param('a = "\\ud800"', "not valid TOML", id="surrogate-escape"),
    pytest.param("[server]\nport = " + "9" * 401, "server.port: ", id="401-digit-port"),
]


@pytest.mark.parametrize(("text", "says"), GARBAGE)
def test_garbage_is_a_clear_problem_and_exit_2(tmp_path: Path, text: str, says: str) -> None:
    config = tmp_path / "monitor.toml"
    config.write_bytes(text.encode("utf-8", "surrogateescape"))
    code, out, err = _check_config(config)
    assert code == 2 and out == "", err
    assert "Traceback" not in err
    assert says in err, err
    assert all(line.startswith(f"{config}: ") for line in err.splitlines())


def test_no_traceback_from_the_process_either(tmp_path: Path) -> None:
    """The deepest shapes, through ``python -m monitor`` as a user runs it."""
    config = tmp_path / "monitor.toml"
    config.write_text(
        "a = " + "[" * 5000 + "]" * 5000 + "\n" + MODEL + 'timeout = "99999999999999999999d"\n'
    )
    done = subprocess.run(
        [sys.executable, "-m", "monitor", "check-config", str(config)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=deadline(60),
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr + done.stdout
    assert json.dumps(done.stderr.splitlines()) == json.dumps(
        [f"{config}: a (line 1): nested more than 32 levels deep"]
    )


def test_a_bad_metric_option_is_one_problem(tmp_path: Path) -> None:
    """Not also "metrics: Tuple should have at least 1 item" for the metric it refused."""
    dataset = tmp_path / "d.jsonl"
    dataset.write_bytes(GOOD_ROW)
    config = tmp_path / "monitor.toml"
    text = SUITE.format(dataset=dataset).replace('task = "text"', 'task = "classification"')
    config.write_text(text.replace('["exact-match"]', '[{ name = "f1", average = "mean" }]'))
    code, _, err = _check_config(config)
    assert code == 2
    assert err.splitlines() == [
        f"{config}: suites[0].metrics[0]: option 'average' of metric 'f1': "
        "expected one of macro, micro, weighted, got 'mean'"
    ]
