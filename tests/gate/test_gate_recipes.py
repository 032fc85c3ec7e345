"""The example CI jobs install monitor as they are written and their gate step works.

The install steps run verbatim, with only where the package comes from substituted:
the GitHub workflow's ``monitor-daemon @ git+https://github.com/OWNER/monitor@vX.Y.Z``
becomes a local git repository of this source tree, tagged ``vX.Y.Z`` (pip clones the tag
and builds it, as in CI); the GitLab job's becomes the wheel ``python -m build`` makes, as
an index of your own would serve it. Each installs into a fresh virtual environment, then
the job's gate step runs the installed ``monitor gate --remote`` against a real daemon
judging a degraded loopback model: exit 1, the report written and posted.

No network here: the fresh environment sees the locked dependencies (and the locked pip
and setuptools) of the test environment through a ``.pth`` file, and pip is told to use
no index, so everything it installs is the package under test.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from monitor import __version__
from monitor.cli import cli
from tests.gate.test_gate_ci_docs import (
    GITHUB,
    GITHUB_PIPELINE,
    GITLAB,
    GITLAB_PIPELINE,
    NotesApi,
)
from tests.gate.test_gate_command import CASES, TOKEN, parity_model
from tests.servers import ROOT, MonitorProcess, deadline, serve_in_thread

pytestmark = pytest.mark.integration

SOURCE = f"monitor-daemon @ git+https://github.com/OWNER/monitor@v{__version__}"


@dataclass
class Setup:
    root: Path
    repo: Path  # a git repository of this source tree, tagged v{__version__}
    wheel: Path
    daemon_url: str


def _run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=deadline(300),
    )
    assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
    return done.stdout


def _source_repository(root: Path) -> Path:
    repo = root / "monitor-src"
    repo.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, repo / name)
    shutil.copytree(
        ROOT / "monitor", repo / "monitor", ignore=shutil.ignore_patterns("__pycache__")
    )
    git = ["git", "-c", "user.name=ci", "-c", "user.email=ci@localhost"]
    _run("git", "init", "-q", cwd=repo)
    _run("git", "add", "-A", cwd=repo)
    _run(*git, "commit", "-q", "-m", "release", cwd=repo)
    _run(*git, "tag", f"v{__version__}", cwd=repo)
    return repo


def _config(root: Path, good: str, bad: str) -> Path:
    body = '{ n = "{{n}}" }'
    (root / "parity.jsonl").write_text(
        "".join(
            json.dumps({"id": f"n{n:03d}", "n": n, "label": "even" if n % 2 == 0 else "odd"}) + "\n"
            for n in range(CASES)
        )
    )
    config = root / "monitor.toml"
    config.write_text(
        f"""
[server]
port = 0

[[server.tokens]]
name = "ci"
token = "{TOKEN}"
scopes = ["read", "write"]

[store]
data_dir = "{root / "data"}"

[[models]]
name = "prod"
adapter = "http"
url = "{good}/predict"
body = {body}
prediction = "label"

[[models]]
name = "candidate"
role = "candidate"
adapter = "http"
url = "{bad}/predict"
body = {body}
prediction = "label"

[[suites]]
name = "qa"
dataset = "{root / "parity.jsonl"}"
task = "classification"
expected = "label"
inputs = ["n"]
metrics = ["accuracy"]
models = ["prod", "candidate"]
"""
    )
    return config


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    """The package built two ways, and a daemon whose production model has a baseline."""
    if shutil.which("git") is None or shutil.which("curl") is None:
        pytest.skip("git and curl are needed to run the example CI jobs")
    root = tmp_path_factory.mktemp("recipes")
    repo = _source_repository(root)
    # The build runs while the daemon starts.
    build = subprocess.Popen(
        [sys.executable, "-m", "build", "--no-isolation", "--wheel", "--outdir", "dist", repo],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    with (
        serve_in_thread(parity_model(degraded=False)) as good,
        serve_in_thread(parity_model(degraded=True)) as bad,
    ):
        config = _config(root, good, bad)
        daemon = MonitorProcess("run", "-c", str(config), cwd=root)
        try:
            url = daemon.wait_for_line(r"HTTP API on (http://\S+) ", timeout=60).group(1)
            runner = CliRunner()
            args = ["bench", "-c", str(config), "--suite", "qa", "--model", "prod", "--json"]
            first = runner.invoke(cli, args)
            assert first.exit_code == 0, first.output
            run_id = json.loads(first.stdout)["runs"][0]["id"]
            promoted = runner.invoke(cli, ["baseline", "promote", "-c", str(config), str(run_id)])
            assert promoted.exit_code == 0, promoted.output
            built, _ = build.communicate(timeout=deadline(300))
            assert build.returncode == 0, built
            [wheel] = (root / "dist").glob("monitor_daemon-*.whl")
            yield Setup(root, repo, wheel, url)
        finally:
            daemon.stop()
            if build.poll() is None:
                build.kill()
                build.wait()


def _fresh_venv(where: Path) -> Path:
    """A new virtual environment that sees the test environment's packages (no network to
    install them from) and has the locked pip on PATH as ``pip``."""
    _run(sys.executable, "-m", "venv", "--without-pip", where, cwd=where.parent)
    python = where / "bin" / "python"
    purelib = _run(
        python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", cwd=where
    )
    Path(purelib.strip(), "test-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    pip = where / "bin" / "pip"
    pip.write_text(
        f"#!{python}\nimport sys\nfrom pip._internal.cli.main import main\nsys.exit(main())\n"
    )
    pip.chmod(0o755)
    return where / "bin"


def _environment(bin_dir: Path, package: str, **extra: str) -> dict[str, str]:
    """The job's shell: the fresh environment first on PATH, pip without this machine's
    configuration or any index (and building in place, from the locked setuptools)."""
    kept = {
        k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON", "VIRTUAL_ENV"))
    }
    return {
        **kept,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_NO_INDEX": "1",
        "PIP_NO_BUILD_ISOLATION": "0",  # pip reads "0" here as "do not isolate"
        "MONITOR_PACKAGE": package,
        **extra,
    }


def _installed_from(bin_dir: Path) -> str:
    """Where the environment's ``monitor`` package is imported from (not from a
    ``PYTHONPATH`` the test run has, which would hide what the job installed)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    return _run(
        bin_dir / "python", "-c", "import monitor; print(monitor.__file__)", cwd=bin_dir, env=env
    ).strip()


def test_the_examples_pin_the_release_in_one_place() -> None:
    workflow = yaml.safe_load(GITHUB.read_text())
    job = yaml.safe_load(GITLAB.read_text())["model-gate"]
    assert workflow["jobs"]["gate"]["env"]["MONITOR_PACKAGE"] == SOURCE
    assert job["variables"]["MONITOR_PACKAGE"] == SOURCE
    install = next(
        s for s in workflow["jobs"]["gate"]["steps"] if s.get("name") == "Install monitor"
    )
    assert install["run"] == job["script"][0] == 'pip install "$MONITOR_PACKAGE"'


def test_the_pipelines_install_the_same_pinned_release() -> None:
    """Not ``pip install monitor``: that names some other project, or none."""
    workflow = yaml.safe_load(GITHUB_PIPELINE.read_text())
    gitlab = yaml.safe_load(GITLAB_PIPELINE.read_text())
    assert workflow["env"]["MONITOR_PACKAGE"] == gitlab["variables"]["MONITOR_PACKAGE"] == SOURCE
    installs = [
        step["run"]
        for job in workflow["jobs"].values()
        for step in job["steps"]
        if "pip install" in step.get("run", "")
    ]
    installs += [line for line in gitlab["default"]["before_script"] if "pip install" in line]
    assert len(installs) == 3
    assert set(installs) == {'pip install "$MONITOR_PACKAGE"'}
    for path in (GITHUB_PIPELINE, GITLAB_PIPELINE):  # nor another install anywhere else
        assert set(re.findall(r"pip install \S+", path.read_text())) == {
            'pip install "$MONITOR_PACKAGE"'
        }, path


def test_github_workflow_installs_from_the_tag_and_gates(setup: Setup, tmp_path: Path) -> None:
    bin_dir = _fresh_venv(tmp_path / "venv")
    package = SOURCE.replace("https://github.com/OWNER/monitor", f"file://{setup.repo}")
    steps = yaml.safe_load(GITHUB.read_text())["jobs"]["gate"]["steps"]
    install = next(s for s in steps if s.get("name") == "Install monitor")
    work = tmp_path / "work"
    work.mkdir()
    _run("bash", "-e", "-c", install["run"], cwd=work, env=_environment(bin_dir, package))
    assert _installed_from(bin_dir).startswith(str(tmp_path / "venv"))

    gate = next(s for s in steps if s.get("id") == "gate")
    script = gate["run"].replace("${{ vars.MONITOR_URL }}", setup.daemon_url)
    assert "${{" not in script
    output, summary = tmp_path / "output", tmp_path / "summary.md"
    env = _environment(
        bin_dir,
        package,
        MONITOR_TOKEN=TOKEN,
        GITHUB_OUTPUT=str(output),
        GITHUB_STEP_SUMMARY=str(summary),
    )
    _run("bash", "-e", "-c", script, cwd=work, env=env)
    assert output.read_text() == "code=1\n"  # regressed: the job's last step fails with it
    report = (work / "gate.md").read_text()
    assert report.startswith("<!-- monitor-gate -->") and "**Regressed**: qa on candidate" in report
    assert summary.read_text() == report and (work / "gate.xml").read_text().startswith("<?xml")


def test_gitlab_job_installs_the_built_wheel_and_gates(setup: Setup, tmp_path: Path) -> None:
    bin_dir = _fresh_venv(tmp_path / "venv")
    package = SOURCE.replace(re.sub(r".*@ ", "", SOURCE), setup.wheel.as_uri())
    api = NotesApi()
    work = tmp_path / "work"
    work.mkdir()
    script = "set -e\n" + "\n".join(yaml.safe_load(GITLAB.read_text())["model-gate"]["script"])
    with serve_in_thread(api.app) as notes:
        env = _environment(
            bin_dir,
            package,
            CI_API_V4_URL=f"{notes}/api/v4",
            CI_PROJECT_ID="5",
            CI_MERGE_REQUEST_IID="9",
            GATE_NOTES_TOKEN="glpat-notes",
            MONITOR_URL=setup.daemon_url,
            MONITOR_TOKEN=TOKEN,
        )
        done = subprocess.run(
            ["bash", "-c", script],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=deadline(300),
        )
    assert done.returncode == 1, done.stdout + done.stderr
    assert _installed_from(bin_dir).startswith(str(tmp_path / "venv"))
    [note] = api.notes
    assert note["body"] == (work / "gate.md").read_text()
    assert "**Regressed**: qa on candidate" in note["body"]
