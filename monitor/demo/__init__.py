"""The bundled demo: a real wine classifier served over HTTP, with a degradation switch.

``monitor demo`` serves :class:`DemoModel` next to the daemon, which evaluates it on the
bundled held-out suite (:func:`bundled_test_set`); raising the degradation level, by time
or by hand, gives a genuine regression and data drift to find, and its alert rules
(``alerting``) notify a loopback receiver (``receiver``) through the real outbox and
webhook sink. No network and no files outside the package are needed.

May import: ``config``, ``daemon`` (to run itself), ``sinks`` (the webhook signature the
receiver checks) and the shared vocabulary.
"""

from __future__ import annotations

from monitor.demo.dataset import (
    N_FEATURES,
    WineCase,
    bundled_test_set,
    held_out_ids,
    read_test_set,
    write_test_set,
)
from monitor.demo.model import DemoModel
from monitor.demo.server import (
    create_demo_app,
    run_demo_model,
    serve_demo_model,
)

__all__ = [
    "N_FEATURES",
    "DemoModel",
    "WineCase",
    "bundled_test_set",
    "create_demo_app",
    "held_out_ids",
    "read_test_set",
    "run_demo_model",
    "serve_demo_model",
    "write_test_set",
]
