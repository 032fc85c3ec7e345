"""Keep the cyclic garbage collector off the event loop's back.

The daemon imports scipy, scikit-learn, pandas, SQLAlchemy, pydantic and FastAPI: some
220,000 objects that live as long as the process. A full collection walks every one of
them (about 110 ms here), and CPython starts one whenever the objects that survived
younger collections have grown by a quarter, in the middle of a run or a scrape: every
request in flight then waits. ``freeze_startup_objects`` moves what start-up created out
of the collector's sight (``gc.freeze``) once, so a full collection walks only what runs
and requests allocated since. Frozen objects are still freed by reference counting; only
reference cycles among them would never be collected, and start-up's are few (modules,
classes, the configuration) and meant to last.

The libraries runs and verdicts compute with (numpy, scipy.stats, scikit-learn's metrics:
most of those objects) are imported lazily, so the CLI and ``/readyz`` do not wait for
them. ``preload`` imports them: the gate and ``monitor bench`` call it before freezing; the
daemon calls it in a thread once it is ready, then freezes again, so the first run does
not pay the import and full collections still skip them.
"""

from __future__ import annotations

import gc
import importlib

COMPUTE_LIBRARIES = ("numpy", "scipy.stats", "sklearn.metrics")

_owned = False


def own_process() -> None:
    """The ``monitor`` entry point owns this process: ``freeze_startup_objects`` acts.
    Anything else that calls the commands in-process (a test's ``CliRunner``) keeps its
    collector as it is."""
    global _owned
    _owned = True


def freeze_startup_objects() -> None:
    """Collect start-up's garbage, then freeze every object still alive. Called by each
    ``monitor`` command that runs an event loop, just before it starts; does nothing in a
    process that ``own_process`` was not called in."""
    if _owned:
        gc.collect()
        gc.freeze()


def preload() -> None:
    """Import ``COMPUTE_LIBRARIES`` (a few seconds, once per process)."""
    for name in COMPUTE_LIBRARIES:
        importlib.import_module(name)
