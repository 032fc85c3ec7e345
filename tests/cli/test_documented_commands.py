"""Every ``monitor`` command line the README and docs/ show parses as written: the command
exists, every flag is one it takes, every required option is there, every value is of its
type. Optional parts of a synopsis (``[--json]``) are checked both left out and, one at a
time, put in. Executing them is the business of the tests of each command (and of
tests/test_readme_commands.py for the README's one-liner)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from monitor.cli import cli
from tests.servers import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
OPTIONAL = re.compile(r"\s*\[([^\[\]]*)\]")


def documented() -> list[tuple[str, str]]:
    """(page, command line) for each ``monitor ...`` line in a code block, and each inline
    ``monitor ... -c ...`` span (a whole command, not a mention)."""
    found = []
    for page in PAGES:
        text = page.read_text()
        lines = []
        for block in re.findall(r"```[a-z]*\n(.*?)```", text, re.S):
            lines += block.replace("\\\n", " ").splitlines()
        lines += re.findall(r"`(monitor [^`]*-c [^`]*)`", text)
        for line in lines:
            for part in re.split(r"\s*(?:&&|;|&|\|\||\(|\))\s*", line.strip()):
                if re.match(r"monitor [a-z]", part):
                    found.append((page.name, part))
    return found


def variants(line: str) -> list[str]:
    """The line with every optional group left out, and with each put in alone."""
    groups = OPTIONAL.findall(line)
    bare = OPTIONAL.sub("", line)
    return [bare, *(f"{bare} {group}" for group in groups)]


def parse(words: list[str]) -> None:
    command: click.Command = cli
    while isinstance(command, click.Group):
        name, *words = words
        assert name in command.commands, f"no command {name!r}"
        command = command.commands[name]
    command.make_context("monitor", words)


LINES = documented()


def test_the_docs_show_commands_to_check() -> None:
    assert len(LINES) > 20
    assert {page for page, _ in LINES} >= {"README.md", "ci.md", "alerting.md", "streams.md"}


@pytest.mark.parametrize(("page", "line"), LINES, ids=[f"{p}: {c}" for p, c in LINES])
def test_documented_command_parses(
    page: str, line: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # where the files the line names exist
    for variant in variants(line):
        if re.search(r"\.\.\.|\|", variant):
            continue  # a choice (`list|show`, `--id ID ... | --all`): shown, not typed
        # a placeholder (PATH, RUN_ID, N) stands for a value: 1 is one of every type here
        words = [
            "1" if re.fullmatch(r"[A-Z][A-Z_]*", word) else word
            for word in shlex.split(variant.split(" #", 1)[0])[1:]
        ]
        for word in words:
            if re.fullmatch(r"[\w.-]+\.(parquet|csv|jsonl|toml)", word):
                (tmp_path / word).touch()
        try:
            parse(words)
        except click.ClickException as exc:
            pytest.fail(f"{page}: `{variant}`: {exc.format_message()}")
