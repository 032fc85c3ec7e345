"""Streams: the I/O side of drift monitoring.

Ingest batches (``batch``), reading references and current windows from the store, files
and SQL databases with push-down (``sources``, ``pushdown``), cutting windows
(``windows``), and judging a window into a stored drift report (``evaluate``). The
statistics themselves live in the pure ``monitor.drift`` engine.

May import: the shared vocabulary, ``config``, ``drift`` and ``store``.
"""

from __future__ import annotations
