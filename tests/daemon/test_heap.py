"""``monitor.daemon.heap``: start-up's objects are frozen in the ``monitor`` process only.

Each case runs in a fresh interpreter: freezing the test process's own objects would keep
its garbage for the rest of the session."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import gc, sys
import monitor.daemon.heap as heap
if sys.argv[1] == "owned":
    heap.own_process()
heap.preload()
cycle = [0]
cycle.append(cycle)  # garbage made while starting: collected, not frozen
del cycle
heap.freeze_startup_objects()
print(gc.get_freeze_count(), gc.collect())
"""


def _run(mode: str) -> tuple[int, int]:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True
    ).stdout.split()
    return int(out[0]), int(out[1])


def test_the_monitor_process_freezes_what_start_up_left() -> None:
    frozen, collected_after = _run("owned")
    assert frozen > 100_000  # the compute libraries preloaded at start-up, not a handful
    assert collected_after == 0  # start-up's garbage went before the freeze


def test_a_process_that_only_imports_monitor_keeps_its_collector() -> None:
    frozen, _ = _run("borrowed")
    assert frozen == 0


def test_preload_imports_what_runs_compute_with() -> None:
    probe = "import sys, monitor.daemon.heap as h; h.preload(); print('sklearn' in sys.modules)"
    after = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert after.stdout.strip() == "True"
