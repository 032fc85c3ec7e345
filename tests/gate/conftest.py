"""Snapshot files for the gate's reports: ``snapshot(name, text)`` fails on any difference
and shows a diff; ``MONITOR_UPDATE_SNAPSHOTS=1`` rewrites the files instead."""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable
from pathlib import Path

import pytest

SNAPSHOTS = Path(__file__).parent / "snapshots"
UPDATE = os.environ.get("MONITOR_UPDATE_SNAPSHOTS") == "1"


def check_snapshot(name: str, text: str, *, update: bool = UPDATE) -> None:
    path = SNAPSHOTS / name
    if update:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="")
        return
    if not path.exists():
        pytest.fail(f"no snapshot {path}; MONITOR_UPDATE_SNAPSHOTS=1 writes it")
    with path.open(encoding="utf-8", newline="") as file:
        expected = file.read()
    if text != expected:
        diff = difflib.unified_diff(
            expected.splitlines(keepends=True),
            text.splitlines(keepends=True),
            f"snapshots/{name}",
            "rendered",
        )
        pytest.fail(
            f"{name} differs from its snapshot (MONITOR_UPDATE_SNAPSHOTS=1 rewrites it):\n"
            + "".join(diff)
        )


@pytest.fixture
def snapshot() -> Callable[[str, str], None]:
    return check_snapshot
