"""Persistence: runs, case results, metrics and the model/suite catalog.

SQLite (embedded, one instance) or PostgreSQL (production, several replicas), both
through SQLAlchemy Core with Alembic migrations that ship in this package. Everything
else in ``monitor`` reads and writes through :class:`Store`'s parts by domain
(``store.runs``, ``store.queue``, ``store.streams``, ``store.verdicts``, ``store.alerts``,
``store.audit``, ``store.retention``), each consumer typed against the parts it uses
(``monitor.store.parts``).

    store = Store("sqlite:///var/lib/monitor/monitor.db")
    store.upgrade()
    run_id = store.runs.create_run(suite="qa", model="prod", trigger="schedule", ...)

May import: the shared vocabulary and ``alerts`` (the alert states and outbox records it
keeps). Nothing above it: every other stage depends on the store, never the reverse.
"""

from __future__ import annotations

from monitor.store.engine import create_store_engine, redact_url
from monitor.store.store import Store

__all__ = ["Store", "create_store_engine", "redact_url"]
