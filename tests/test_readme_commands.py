"""README's commands, executed: the example configuration against the demo model, started
with the README's one-liner, lists its runs with ``monitor runs list -c
config.example.toml``, and one Ctrl-C stops it, leaving nothing running.

Only the ports are substituted (the README's are fixed, 8787 and 8788; the suite runs
under xdist): the API's in a copy of ``config.example.toml``, the model's by
``MONITOR_DEMO_MODEL_URL``, which the example reads, and ``--model-port``.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.servers import ROOT, deadline, wait_for


def one_liner() -> str:
    text = (ROOT / "README.md").read_text()
    [command] = [c for c in re.findall(r"```sh\n(.+?)\n```", text, re.S) if "--model-only" in c]
    return command


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _has_run(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/runs", timeout=2) as response:
            return b'"succeeded"' in response.read()
    except OSError:
        return False


def _group_gone(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return True
    return False


def test_the_one_liner_is_a_subshell_that_stops_the_model_on_exit() -> None:
    assert one_liner() == (
        "(monitor demo --model-only & trap 'kill $!' EXIT; monitor run -c config.example.toml)"
    )


@pytest.mark.integration
def test_one_ctrl_c_stops_the_daemon_and_the_demo_model(tmp_path: Path) -> None:
    api, model = _free_port(), _free_port()
    text = (ROOT / "config.example.toml").read_text()
    assert "\nport = 8787\n" in text
    text = text.replace("\nport = 8787\n", f"\nport = {api}\n")
    text = text.replace('dataset = "monitor/', f'dataset = "{ROOT}/monitor/')
    (tmp_path / "config.example.toml").write_text(text)
    command = one_liner().replace("--model-only", f"--model-only --model-port {model}")
    env = {
        **os.environ,
        # the README's reader has the virtual environment active: monitor is on PATH
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "MONITOR_DEMO_MODEL_URL": f"http://127.0.0.1:{model}",
    }
    # A new session: the shell and everything it starts are one process group, as the
    # foreground job of a terminal is; Ctrl-C is SIGINT to that group.
    shell = subprocess.Popen(
        ["bash", "-c", command],
        cwd=tmp_path,
        env=env,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    group = os.getpgid(shell.pid)
    try:
        wait_for(lambda: _answers(f"http://127.0.0.1:{api}/readyz"), timeout=90, what="the daemon")
        wait_for(lambda: _has_run(api), timeout=60, what="a finished run")
        # "What you see": the runs from the command line, on the same store
        listed = subprocess.run(
            ["monitor", "runs", "list", "-c", "config.example.toml"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=deadline(60),
        )
        assert listed.returncode == 0, listed.stderr
        assert listed.stdout.split()[:6] == ["ID", "FINISHED", "STATUS", "SUITE", "MODEL", "SCORES"]
        assert "wine-holdout" in listed.stdout
        os.killpg(group, signal.SIGINT)
        output, _ = shell.communicate(timeout=deadline(60))
        assert shell.returncode == 0, output
        wait_for(lambda: _group_gone(group), timeout=30, what="every process of the job to exit")
        assert "demo model listening on" in output and "stopped" in output
    finally:
        if not _group_gone(group):
            os.killpg(group, signal.SIGKILL)
        if shell.poll() is None:
            shell.wait()
