"""The install path of a fresh machine: README's two commands, CI and the image all install
the lock, and the lock pins everything with hashes."""

from __future__ import annotations

import re
import tomllib

import pytest

from tests.servers import ROOT

LOCKS = ("pip.txt", "run.txt", "test.txt", "dev.txt")


def readme_commands() -> list[str]:
    """The shell blocks of README's "Try it: two commands" section."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Try it: two commands", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", section, flags=re.S)


def pins(lock: str) -> dict[str, list[str]]:
    """``name==version[; marker]`` of every requirement in a lock file, with its hashes."""
    text = (ROOT / "requirements" / lock).read_text()
    entries: dict[str, list[str]] = {}
    for block in re.split(r"\n(?=\S)", text):
        head = block.split(" \\", 1)[0].strip()
        if head and not head.startswith("#"):
            entries[head] = re.findall(r"--hash=sha256:([0-9a-f]{64})", block)
    return entries


def test_readme_has_exactly_two_commands_and_both_install_the_lock() -> None:
    run, test = readme_commands()
    lock_install = (
        "python -m pip install -r requirements/pip.txt && python -m pip install -r requirements/{}"
        " && python -m pip install --no-deps --no-build-isolation -e . && "
    )
    assert run == lock_install.format("run.txt") + "monitor demo"
    assert test == lock_install.format("test.txt") + "python -m pytest"


def test_ci_runs_the_readme_test_command_verbatim_in_a_fresh_venv() -> None:
    script = (ROOT / ".ci" / "run").read_text()
    lines = [line for line in script.splitlines() if line.strip()]
    assert lines[-1] == readme_commands()[1]
    assert "python3 -m venv" in script and "requirements/lock --check" in script


def test_the_image_installs_the_lock() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install --no-compile -r requirements/run.txt" in dockerfile
    assert "--no-deps --no-build-isolation ." in dockerfile


@pytest.mark.parametrize("lock", LOCKS)
def test_every_locked_requirement_is_pinned_with_hashes(lock: str) -> None:
    entries = pins(lock)
    assert entries
    for head, hashes in entries.items():
        assert re.match(r"^[a-z0-9][a-z0-9._-]*(\[[a-z0-9,-]+\])?==\S+( ; .+)?$", head), head
        assert hashes, f"{lock}: {head} has no hash"


def test_the_locks_cover_pyproject_and_agree_with_each_other() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

    def names(lock: str) -> dict[str, str]:
        found = {}
        for head in pins(lock):
            name, _, version = head.split(" ; ")[0].partition("==")
            found.setdefault(re.sub(r"\[.*\]", "", name), version)
        return found

    def wanted(requirements: list[str]) -> set[str]:
        bare = (re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0].lower() for r in requirements)
        # PEP 503 normalisation, as the lock files spell names (proxy.py: proxy-py).
        normal = (re.sub(r"[-_.]+", "-", name) for name in bare)
        return {name for name in normal if name != "monitor-daemon"}

    run, test, dev = names("run.txt"), names("test.txt"), names("dev.txt")
    extras = project["optional-dependencies"]
    assert wanted(project["dependencies"] + extras["report"]) <= set(run)
    assert wanted(extras["test"]) <= set(test)
    assert wanted(extras["dev"]) <= set(dev)
    for subset in (run, test):
        assert {name: dev[name] for name in subset} == subset  # one resolution


def test_ci_builds_the_package_and_checks_it_after_the_lint_step() -> None:
    lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    build = lines.index('python -m build --no-isolation --outdir "$dist" .')
    assert lines.index("mypy") < build < lines.index('twine check --strict "$dist"/*')
    assert build < len(lines) - 1  # and before the test suite, which stays the last line
    dev = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert {re.split(r"[<>=]", r)[0] for r in dev["dev"]} >= {"build", "twine"}
