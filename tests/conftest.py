"""Shared test configuration.

Integration tests (marked ``integration``) talk to real components: PostgreSQL, the daemon
as a subprocess, binaries such as hadolint. Locally they skip when a component is
missing; with ``MONITOR_REQUIRE_INTEGRATION=1`` (set by ``.ci/run``) a skipped
integration test fails the run instead, so CI can never go green without them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from monitor.store import Store

REQUIRE_INTEGRATION = os.environ.get("MONITOR_REQUIRE_INTEGRATION") == "1"

# The daemon and the demo must never call home, in tests too.
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("EVIDENTLY_DISABLE_TELEMETRY", "1")

# Model clients honour the environment's proxies: the tests' endpoints are on loopback, so
# a proxy the machine names would carry (or refuse) their requests. The proxy tests set
# their own.
for _name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
    os.environ.pop(_name, None)
    os.environ.pop(_name.lower(), None)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if REQUIRE_INTEGRATION and report.skipped and item.get_closest_marker("integration"):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.longrepr = f"integration test skipped while MONITOR_REQUIRE_INTEGRATION=1: {reason}"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A migrated SQLite store in the test's temporary directory (the store tests have
    their own, on every backend). Imported here, after the telemetry opt-outs above."""
    from monitor.store import Store

    store = Store(f"sqlite:///{tmp_path / 'monitor.db'}")
    store.upgrade()
    yield store
    store.close()
