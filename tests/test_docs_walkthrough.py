"""A new user's first hour, executed: README -> the demo -> docs/models.md -> docs/ci.md ->
docs/streams.md -> docs/alerting.md, every shell command those pages show in a code block
(``monitor ...``, ``curl ...``, ``jq ...`` lines of ``sh``/``bash``/``console`` and plain
blocks, and ``docker``/``pip``/``python``/``twine`` lines of the shell ones) run with
``bash -c`` against a real ``monitor demo`` on loopback, in the order a reader meets
them, each with a deadline, and each must exit 0 (no page gives another code for a
command run here).

Only what a reader must substitute is substituted (``SUBSTITUTED``): the daemon's URL and a
token in the variables the page reads, the port in their copy of the example
configuration, and the files a page says to create. A synopsis (``[--json]``) runs left
bare and with each optional part put in alone, as tests/cli/test_documented_commands.py
parses it. What cannot run here is in ``NOT_RUN``, each with its reason; every other
documented command is run, so a new one runs or is explained (and
``test_every_documented_command_is_run_or_listed`` fails on a ``NOT_RUN`` entry no page
shows any more, or on a command with nothing left to type). Inline ``monitor ...``
mentions in the prose are parsed by tests/cli/test_documented_commands.py, not run here.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.cli.test_documented_commands import variants
from tests.servers import ROOT, MonitorProcess, deadline, wait_for

# The walk, in reading order.
PAGES = ["README.md", "docs/models.md", "docs/ci.md", "docs/streams.md", "docs/alerting.md"]
SHELL_BLOCKS = ("", "sh", "bash", "console", "shell")
COMMAND = re.compile(r"(?:^|&&|;|\(|\$\(|\|)\s*(?:monitor|curl|jq)\s")
# In a block marked as shell these begin a command too (a plain block also holds diagrams).
SHELL = re.compile(r"(?:docker|pip|python|twine)\s")

# (page, how the command line begins) -> why it is not run here.
NOT_RUN: dict[tuple[str, str], str] = {
    (
        "README.md",
        "python -m pip install -r requirements/pip.txt && python -m pip install -r"
        " requirements/run.txt",
    ): "installs into the environment (tests/test_install.py runs the"
    " install in a fresh one); its `monitor demo` is the demo this walk runs",
    ("README.md", "(monitor demo --model-only & trap"): "tests/test_readme_commands.py runs it"
    " verbatim (ports substituted) and checks that one Ctrl-C stops both processes",
    (
        "README.md",
        "python -m pip install -r requirements/pip.txt && python -m pip install -r"
        " requirements/test.txt",
    ): "installs into the environment and runs the whole suite",
    ("README.md", "docker build -t monitor ."): "needs docker",
    ("README.md", "docker run -p 8787:8787 monitor demo"): "needs docker and the image",
    ("docs/models.md", "monitor gate -c monitor.toml --suite churn-eval"): "needs an MLflow"
    " model registry (tests/registry/test_mlflow_server.py runs it on a stand-in)",
    (
        "docs/models.md",
        'monitor canary --remote "$MONITOR_URL" --stream-production churn-prod',
    ): "a 30-minute canary on two live, labelled streams and an MLflow registry",
    ("docs/ci.md", "monitor gate -c PATH --suite S --model M [--baseline"): "a synopsis of"
    " every option (the CI examples run the gate verbatim: tests/gate/)",
    ("docs/ci.md", "monitor canary --remote URL --stream-production NAME"): "a synopsis; a"
    " canary needs two live, labelled streams",
    (
        "docs/ci.md",
        'monitor canary --remote "$MONITOR_URL" --stream-production churn-prod',
    ): "a 10-minute canary on two live, labelled streams",
    (
        "docs/ci.md",
        'pip install "monitor-daemon @ git+https://github.com/OWNER/monitor@',
    ): "installs from the network, from a repository the reader names (OWNER)",
    ("docs/ci.md", "python -m pip install -r requirements/dev.txt"): "installs into the"
    " environment",
    ("docs/ci.md", "python -m build --no-isolation"): ".ci/run builds the sdist and wheel"
    " this way on every CI run (tests/test_install.py checks that it does)",
    ("docs/ci.md", "twine check --strict dist/*"): ".ci/run checks the built sdist and wheel"
    " this way",
    ("docs/ci.md", "twine upload"): "publishes to a package index the reader owns",
}


@dataclass(frozen=True)
class Documented:
    page: str
    line: str

    def __str__(self) -> str:
        return f"{self.page}: {self.line}"


def documented() -> list[Documented]:
    """Every command line of the walk's code blocks, continuation lines joined."""
    found = []
    for page in PAGES:
        text = (ROOT / page).read_text()
        for lang, block in re.findall(r"```([a-z]*)\n(.*?)```", text, re.S):
            if lang not in SHELL_BLOCKS:
                continue
            for line in block.replace("\\\n", " ").splitlines():
                line = re.sub(r"\s+", " ", line.strip().removeprefix("$ "))
                if COMMAND.search(line) or (lang and SHELL.match(line)):
                    found.append(Documented(page, line))
    return found


def reason_not_run(command: Documented) -> str | None:
    for (page, start), reason in NOT_RUN.items():
        if page == command.page and command.line.startswith(start):
            return reason
    return None


# ---------------------------------------------------------------------------- substitution
SUBSTITUTED = """
$MONITOR_URL, $MONITOR_TOKEN   the demo's API, a token (the demo's reads are open)
$RUN_ID                        a run of the demo's that a verdict judged (the demo runs
                               `--every 5s`, so the second run comes sooner)
config.toml, monitor.toml      the reader's copy of config.example.toml: the API port a
                               free one, the dataset path absolute, the model the demo's;
                               for `monitor drift --stream wine` it also declares the stream
                               `wine` that command names
today.parquet, ref.parquet     the reader's files that `monitor drift` compares: two
                               small Parquet files of the stream's columns
(--id ID ... | --all)          --all (there are no dead letters to name)
"""
CHOICES = {"(--id ID ... | --all)": "--all"}
PLACEHOLDER = re.compile(r"(?<![$\w])[A-Z][A-Z_]+\b")

WINE_STREAM = """
[[streams]]
name = "wine"
timestamp = "ts"
numerical = ["alcohol", "malic_acid"]
reference = { file = "ref.parquet" }
window = { rows = 100, min_rows = 50 }
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Walk:
    work: Path
    env: dict[str, str]
    port: int  # the API port in the reader's config.toml


def _write_parquet(path: Path, shift: float) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = 400
    ts = [f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}Z" for i in range(rows)]
    alcohol = [13.0 + shift + ((i * 37) % 100) / 100 for i in range(rows)]
    malic = [2.0 + ((i * 53) % 100) / 50 for i in range(rows)]
    pq.write_table(pa.table({"ts": ts, "alcohol": alcohol, "malic_acid": malic}), path)


@pytest.fixture(scope="module")
def walk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Walk]:
    work = tmp_path_factory.mktemp("reader")
    demo = MonitorProcess(
        "demo", "--port", "0", "--every", "5s", "--data-dir", str(work / "demo-data")
    )
    try:
        api = demo.wait_for_line(r"verdicts:\s+(http://\S+)/v1/verdicts", timeout=60).group(1)
        model = demo.wait_for_line(r"model:\s+(http://\S+)/predict").group(1)

        def judged_run() -> int | None:
            verdicts = httpx.get(f"{api}/v1/verdicts", timeout=deadline(10)).json()["verdicts"]
            return int(verdicts[0]["run_id"]) if verdicts else None

        run_id = wait_for(judged_run, timeout=120, what="a run of the demo's judged by a verdict")
        port = _free_port()
        text = (ROOT / "config.example.toml").read_text()
        assert "\nport = 8787\n" in text
        text = text.replace("\nport = 8787\n", f"\nport = {port}\n")
        text = text.replace('dataset = "monitor/', f'dataset = "{ROOT}/monitor/')
        for name in ("config.toml", "monitor.toml"):
            (work / name).write_text(text)
        (work / "wine").mkdir()
        (work / "wine" / "config.toml").write_text(text + WINE_STREAM)
        _write_parquet(work / "wine" / "ref.parquet", 0.0)
        _write_parquet(work / "wine" / "today.parquet", 0.0)
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            # the reader has the virtual environment active: monitor is on PATH
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "MONITOR_URL": api,
            "MONITOR_TOKEN": "a-token-the-demo-does-not-need",
            "RUN_ID": str(run_id),
            "MONITOR_DEMO_MODEL_URL": model,
        }
        yield Walk(work, env, port)
    finally:
        demo.stop()


def _instances(command: Documented) -> list[str]:
    """The concrete lines a reader types for ``command``: a synopsis with each optional
    part alone; a part with a placeholder left (``[--sink NAME]``) is not typed."""
    line = command.line
    for choice, pick in CHOICES.items():
        line = line.replace(choice, pick)
    return [v for v in variants(line) if not PLACEHOLDER.search(v.split(" #", 1)[0])]


def _cwd(walk: Walk, line: str) -> Path:
    return walk.work / "wine" if "--stream wine" in line else walk.work


def _run(walk: Walk, line: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", line],
        cwd=_cwd(walk, line),
        env=walk.env,
        capture_output=True,
        text=True,
        timeout=deadline(90),
    )


def _serve(walk: Walk, line: str) -> int:
    """A daemon command: started, up once ``/readyz`` answers, stopped with Ctrl-C."""
    proc = subprocess.Popen(
        ["bash", "-c", f"exec {line}"],
        cwd=_cwd(walk, line),
        env=walk.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def ready() -> bool:
            try:
                url = f"http://127.0.0.1:{walk.port}/readyz"
                return httpx.get(url, timeout=2).status_code == 200
            except httpx.HTTPError:
                return proc.poll() is not None

        wait_for(ready, timeout=90, what=f"`{line}` to answer /readyz")
        proc.send_signal(signal.SIGINT)
        return proc.wait(timeout=deadline(30))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_every_documented_command_is_run_or_listed() -> None:
    commands = documented()
    assert len(commands) >= 10
    assert {c.page for c in commands} == set(PAGES)
    for (page, start), _ in NOT_RUN.items():  # no stale entry
        assert any(c.page == page and c.line.startswith(start) for c in commands), (page, start)
    for command in commands:
        if reason_not_run(command) is None:
            assert _instances(command), f"{command}: nothing left to run; list it in NOT_RUN"


@pytest.mark.integration
def test_the_walkthrough_runs_verbatim(walk: Walk) -> None:
    failures = []
    ran = 0
    for command in documented():
        if reason_not_run(command) is not None:
            continue
        for line in _instances(command):
            ran += 1
            if re.match(r"monitor run\b", line):
                code, out = _serve(walk, line.split(" #", 1)[0].strip()), ""
            else:
                done = _run(walk, line)
                code, out = done.returncode, done.stdout[-1500:] + done.stderr[-1500:]
            if code != 0:  # no page gives another code for what is run here
                failures.append(f"{command.page}: `{line}` exited {code}:\n{out}")
    assert ran >= 8
    assert not failures, "\n\n".join(failures)
