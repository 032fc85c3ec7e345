"""The CI gate's reports and remote client.

``monitor gate`` runs a suite against a model (locally, or on a daemon with ``--remote``),
judges the run against its baseline and exits with a documented code. This package renders
what it found (:mod:`monitor.gate.report`, with pictures: :mod:`monitor.gate.chart`,
:mod:`monitor.gate.worddiff`, and the HTML page the daemon serves,
:mod:`monitor.gate.html`) and asks a daemon to do the run (:mod:`monitor.gate.remote`).
See ``docs/ci.md``.

May import: the shared vocabulary and ``wire`` (the JSON shapes of runs and verdicts);
httpx for ``--remote``; Mako, lazily, for the page. Never FastAPI or an ``api`` module:
the CI gate does not pay for the server.
"""

from __future__ import annotations

from monitor.gate.html import render_html
from monitor.gate.remote import TOKEN_ENV, RemoteFailure, remote_report
from monitor.gate.report import (
    EXIT_AWAITING_REVIEW,
    EXIT_INFRASTRUCTURE,
    EXIT_PASS,
    EXIT_REGRESSED,
    EXIT_USAGE,
    GateReport,
    render_failure_markdown,
    render_json,
    render_junit,
    render_markdown,
)

# Every flag of ``monitor gate``, as docs/ci.md writes the command line (``-c`` is the
# short form of ``--config``, ``--no-progress`` the other side of ``--progress``). The
# command defines these and no others; a test checks that
# the docs and the example CI files use only these.
GATE_FLAGS: tuple[str, ...] = (
    "-c",
    "--suite",
    "--model",
    "--baseline",
    "--sample",
    "--tier",
    "--report-md",
    "--report-json",
    "--junit",
    "--remote",
    "--allow-dataset-change",
    "--timeout",
    "--progress",
    "--wait-review",
    "--promote-alias",
)

__all__ = [
    "EXIT_AWAITING_REVIEW",
    "EXIT_INFRASTRUCTURE",
    "EXIT_PASS",
    "EXIT_REGRESSED",
    "EXIT_USAGE",
    "GATE_FLAGS",
    "TOKEN_ENV",
    "GateReport",
    "RemoteFailure",
    "remote_report",
    "render_failure_markdown",
    "render_html",
    "render_json",
    "render_junit",
    "render_markdown",
]
