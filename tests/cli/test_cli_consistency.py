"""One command line: ``-c/--config`` everywhere, ``runs show``, ``verdicts list|show``, a
header row on every list, progress on stderr only when asked for or on a terminal, and a
quiet start-up log."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from monitor.alerts.engine import Phase, Transition
from monitor.cli import cli
from monitor.cli.common import RepeatsOnce, echo_table
from monitor.cli.progress import case_progress, line, wanted
from monitor.records import CaseChange, CaseResult, MetricComparison, MetricValue, RunStatus
from monitor.store import Store
from tests.servers import ROOT, deadline
from tests.store.test_store_alerts import message, state

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def leaves(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from leaves(command, (*prefix, name))
        else:
            yield (*prefix, name)


def command(path: tuple[str, ...]) -> click.Command:
    found: click.Command = cli
    for name in path:
        assert isinstance(found, click.Group)
        found = found.commands[name]
    return found


# -c/--config


# The demo brings its own configuration.
@pytest.mark.parametrize("path", sorted(set(leaves(cli)) - {("demo",)}), ids=" ".join)
def test_every_command_that_reads_a_configuration_takes_dash_c(path: tuple[str, ...]) -> None:
    opts = {opt for param in command(path).params for opt in param.opts}
    assert {"-c", "--config"} <= opts


def test_check_config_takes_dash_c_and_keeps_the_positional_alias() -> None:
    example = str(ROOT / "config.example.toml")
    by_option, by_argument, both = (
        invoke("check-config", "-c", example),
        invoke("check-config", example),
        invoke("check-config", "--config", example, example),
    )
    assert by_option[0] == by_argument[0] == both[0] == 0
    assert by_option[1] == by_argument[1] == both[1]
    assert f"{example}: OK" in by_option[1]


def test_check_config_refuses_none_or_two_different_files(tmp_path: Path) -> None:
    code, _, err = invoke("check-config")
    assert code == 2 and "Missing option '-c' / '--config'" in err
    code, _, err = invoke("check-config", "-c", str(tmp_path / "a.toml"), str(tmp_path / "b.toml"))
    assert code == 2 and "two configuration files" in err


# runs show, verdicts list|show, headers


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with a failed and a succeeded run, a baseline, a verdict with a changed
    case, a firing alert and a dead letter; the configuration that reads it."""
    tmp = tmp_path_factory.mktemp("seeded")
    url = f"sqlite:///{tmp / 'monitor.db'}"
    store = Store(url)
    store.upgrade()
    ids = []
    for minute, status in enumerate((RunStatus.FAILED, RunStatus.SUCCEEDED)):
        run_id = store.runs.create_run(
            suite="qa",
            model="m",
            trigger="schedule",
            dataset_sha256="d" * 64,
            config_hash="c",
            at=T0 + timedelta(minutes=minute),
            status=RunStatus.RUNNING,
        )
        ok = status is RunStatus.SUCCEEDED
        store.runs.finish_run(
            run_id,
            status=status,
            at=T0 + timedelta(minutes=minute, seconds=3),
            error=None if ok else "endpoint unreachable",
            cases=[CaseResult("c1", {}, "a", prediction="a")],
            metrics=[MetricValue("accuracy", 0.875, 0.8, 0.95, 40)] if ok else [],
        )
        ids.append(run_id)
    store.verdicts.promote_baseline(ids[1], by="test", reason="golden", at=T0)
    row = MetricComparison(
        *("accuracy", "", "regressed", "mcnemar-exact", 40, 0.9, 0.875, -0.025),
        *(-0.05, -0.01, 0.01, 0.005, 0.0, "dropped beyond the margin"),
    )
    change = CaseChange("c1", "degraded", "accuracy", 1.0, 0.0, "in", "a", "a", "b")
    store.verdicts.add_verdict(
        run_id=ids[1],
        baseline_run_id=ids[1],
        suite="qa",
        model="m",
        outcome="regressed",
        reason="accuracy dropped",
        at=T0,
        dataset_changed=False,
        metrics=[row],
        changes=[change],
    )
    store.alerts.apply_alert_transitions(
        [Transition(state(), Phase.PENDING, "firing")], [message("m1")]
    )
    store.close()
    config = tmp / "monitor.toml"
    config.write_text(f'[store]\nurl = "{url}"\n')
    return config


def test_runs_list_has_a_header_row(seeded: Path) -> None:
    code, out, _ = invoke("runs", "list", "-c", str(seeded))
    lines = out.splitlines()
    assert code == 0 and len(lines) == 3
    assert lines[0].split() == ["ID", "FINISHED", "STATUS", "SUITE", "MODEL", "SCORES"]
    assert lines[1].split()[0] == "2" and "accuracy=0.8750" in lines[1]
    assert "endpoint unreachable" in lines[2]
    # columns line up under their header
    assert lines[1].index("succeeded") == lines[0].index("STATUS") == lines[2].index("failed")


def test_runs_show_tells_the_run_and_its_verdict(seeded: Path) -> None:
    code, out, _ = invoke("runs", "show", "-c", str(seeded), "2")
    assert code == 0
    assert out.startswith("run 2: qa on m, succeeded (schedule)")
    assert "0.8750 [0.8000, 0.9500] (n=40)" in out
    assert "verdict   regressed against run 2 (monitor verdicts show 1)" in out
    code, out, _ = invoke("runs", "show", "-c", str(seeded), "2", "--json")
    shown = json.loads(out)
    assert code == 0 and shown["id"] == 2 and shown["metrics"][0]["value"] == 0.875


def test_runs_show_of_an_unknown_run_is_a_usage_error(seeded: Path) -> None:
    code, out, err = invoke("runs", "show", "-c", str(seeded), "99")
    assert (code, out) == (2, "") and "no run 99 in the store" in err


def test_verdicts_list_and_show(seeded: Path) -> None:
    code, out, _ = invoke("verdicts", "list", "-c", str(seeded))
    header, row = out.splitlines()
    assert code == 0 and header.split()[:5] == ["ID", "CREATED", "OUTCOME", "SUITE", "MODEL"]
    assert row.split()[:5] == ["1", "2026-03-01", "12:00:00", "regressed", "qa"]
    code, out, _ = invoke("verdicts", "list", "-c", str(seeded), "--json", "--run", "2")
    assert code == 0 and [json.loads(x)["id"] for x in out.splitlines()] == [1]
    code, out, _ = invoke("verdicts", "list", "-c", str(seeded), "--run", "1")
    assert code == 0 and out == ""

    code, out, _ = invoke("verdicts", "show", "-c", str(seeded), "1")
    assert code == 0 and out.startswith("verdict 1: regressed, run 2 of qa on m")
    metric = next(x for x in out.splitlines() if x.startswith("accuracy"))
    assert metric.split()[:6] == ["accuracy", "-", "regressed", "0.9000", "0.8750", "-0.0250"]
    assert "[-0.0500, -0.0100]" in metric
    assert any(
        x.split() == ["c1", "degraded", "accuracy", "1.0000", "0.0000"] for x in out.splitlines()
    )
    code, out, _ = invoke("verdicts", "show", "-c", str(seeded), "1", "--json")
    assert code == 0 and json.loads(out)["changes"][0]["case_id"] == "c1"
    code, _, err = invoke("verdicts", "show", "-c", str(seeded), "7")
    assert code == 2 and "no verdict 7" in err


@pytest.mark.parametrize(
    ("args", "header"),
    [
        (
            ("baseline", "list"),
            ["ACTIVE", "ID", "SUITE", "MODEL", "TIER", "RUN", "PROMOTED", "BY", "REASON"],
        ),
        (("alerts", "list"), ["STATE", "SEVERITY", "UPDATED", "RULE", "SUMMARY"]),
    ],
    ids=["baseline list", "alerts list"],
)
def test_lists_have_a_header_row(seeded: Path, args: tuple[str, ...], header: list[str]) -> None:
    code, out, _ = invoke(*args, "-c", str(seeded))
    assert code == 0 and out.splitlines()[0].split() == header and len(out.splitlines()) == 2


def test_echo_table_aligns_columns_and_prints_nothing_without_rows(
    capsys: pytest.CaptureFixture[str],
) -> None:
    echo_table(("A", "LONGER", "LAST"), [(1, "x", "free text"), (22, "yyyyyyyy", "z")])
    echo_table(("A", "B"), [])
    assert capsys.readouterr().out == (
        "A   LONGER    LAST\n1   x         free text\n22  yyyyyyyy  z\n"
    )


# progress


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_shown_on_a_terminal_or_when_asked() -> None:
    assert wanted(None, Tty()) and not wanted(None, io.StringIO())
    assert wanted(True, io.StringIO()) and not wanted(False, Tty())


def test_progress_line_has_rate_and_time_left() -> None:
    assert line("qa x m", 30, 120, 10.0) == "qa x m: 30/120 cases, 3.0 cases/s, 0:00:30 left"
    assert line("qa x m", 0, 120, 0.0) == "qa x m: 0/120 cases"


def test_progress_off_a_terminal_is_a_line_every_so_often_and_one_at_the_end() -> None:
    now = [0.0]
    out = io.StringIO()
    with case_progress("gate", True, stream=out, clock=lambda: now[0], every=10.0) as advance:
        assert advance is not None
        for done in range(1, 61):
            now[0] = done * 0.5  # two cases a second
            advance(done, 60)
    assert out.getvalue().splitlines() == [
        "gate: 20/60 cases, 2.0 cases/s, 0:00:20 left",
        "gate: 40/60 cases, 2.0 cases/s, 0:00:10 left",
        "gate: 60/60 cases, 2.0 cases/s, 0:00:00 left",
    ]


def test_progress_on_a_terminal_is_rich_s_bar_with_rate_and_time_left() -> None:
    out = Tty()
    with case_progress("qa x m", True, stream=out) as advance:
        assert advance is not None
        for done in range(1, 11):
            advance(done, 10)
    assert "10/10" in out.getvalue() and "cases/s" in out.getvalue()


def test_no_progress_gives_no_callback() -> None:
    with case_progress("qa", False, stream=Tty()) as advance:
        assert advance is None


# a quiet start-up


def test_repeating_warnings_are_logged_once_an_hour_per_job() -> None:
    now = [0.0]
    kept = RepeatsOnce(every=3600.0, clock=lambda: now[0])
    template = 'Execution of job "%s" skipped: maximum number of running instances reached (%d)'

    def passes(job: str) -> bool:
        record = logging.LogRecord(
            "apscheduler.scheduler", logging.WARNING, "", 0, template, (job, 1), None
        )
        return kept.filter(record) and bool(record.getMessage())

    assert [passes("a"), passes("a"), passes("b"), passes("a")] == [True, False, True, False]
    now[0] = 3600.0
    record = logging.LogRecord("x", logging.WARNING, "", 0, template, ("a", 1), None)
    assert kept.filter(record) and "2 repeat(s) not logged since the last" in record.getMessage()
    other = logging.LogRecord("x", logging.WARNING, "", 0, "something else %s", ("a",), None)
    assert kept.filter(other) and kept.filter(other)


QUIET_START = """
import logging, sys
from monitor.cli.common import setup_logging
from monitor.store import Store
setup_logging(sys.argv[1])
store = Store(sys.argv[2])
store.upgrade()
log = logging.getLogger("apscheduler.scheduler")
for _ in range(3):
    log.warning(
        'Execution of job "%s" skipped: maximum number of running instances reached (%d)',
        "alerts",
        1,
    )
logging.getLogger("monitor.daemon.lifecycle").info("HTTP API on http://127.0.0.1:1")
"""


@pytest.mark.parametrize("level", ["info", "debug"])
def test_start_up_at_info_shows_no_migrations_and_a_repeated_skip_once(
    tmp_path: Path, level: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", QUIET_START, level, f"sqlite:///{tmp_path / 'm.db'}"],
        capture_output=True,
        text=True,
        timeout=deadline(60),
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    skipped = [x for x in done.stderr.splitlines() if "skipped: maximum number" in x]
    assert "HTTP API on http://127.0.0.1:1" in done.stderr
    if level == "info":
        assert "alembic" not in done.stderr and "Running upgrade" not in done.stderr
        assert len(skipped) == 1 and "logged again at most once an hour" in skipped[0]
    else:
        assert "Running upgrade  -> 0001" in done.stderr and len(skipped) == 3
