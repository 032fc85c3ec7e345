"""The store's schema as SQLAlchemy Core tables.

This module is what queries are written against. The database itself is created and
evolved only by the Alembic migrations in ``monitor/store/migrations``; a test checks that
the migrated schema and these tables agree, so change both together.

Constraint and index names come from one naming convention, so migrations can refer to
them by a predictable name on every backend.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from monitor.records import RunStatus
from monitor.store.types import UTCDateTime, json_document

__all__ = [
    "NAMING_CONVENTION",
    "baselines",
    "case_results",
    "metadata",
    "models",
    "run_metrics",
    "run_slices",
    "runs",
    "suites",
]

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Identifiers (names, hashes) are bounded so PostgreSQL can index them cheaply; free text
# (URLs, error messages, reasons) is unbounded.
NAME = 200
HASH = 128

metadata = MetaData(naming_convention=NAMING_CONVENTION)

_STATUSES = ", ".join(f"'{status.value}'" for status in RunStatus)

models = Table(
    "models",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(NAME), nullable=False, unique=True),
    Column("adapter", String(32), nullable=False),
    Column("url", Text, nullable=False),
    Column("role", String(32), nullable=False),
    Column("config_hash", String(HASH), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)
"""Models named in the configuration, kept so history outlives a config change."""

suites = Table(
    "suites",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(NAME), nullable=False, unique=True),
    Column("dataset", Text, nullable=False),
    Column("task", String(64), nullable=False),
    Column("config_hash", String(HASH), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)
"""Suites named in the configuration."""

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("suite", String(NAME), nullable=False),
    Column("model", String(NAME), nullable=False),
    Column("status", String(16), nullable=False),
    Column("trigger", String(NAME), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime, nullable=True),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("dataset_sha256", String(HASH), nullable=False),
    Column("config_hash", String(HASH), nullable=False),
    Column("n_cases", Integer, nullable=False, default=0),
    Column("n_errors", Integer, nullable=False, default=0),
    Column("error", Text, nullable=True),
    # Operational metrics, measured at the client (revision 0002). Tokens and cost are
    # NULL when unknown: a missing price or usage report is never stored as 0.
    Column("latency_p50", Float, nullable=True),
    Column("latency_p90", Float, nullable=True),
    Column("latency_p95", Float, nullable=True),
    Column("latency_p99", Float, nullable=True),
    Column("throughput", Float, nullable=True),
    Column("prompt_tokens", BigInteger, nullable=True),
    Column("completion_tokens", BigInteger, nullable=True),
    Column("cost", Float, nullable=True),
    Column("currency", String(3), nullable=True),
    CheckConstraint(f"status IN ({_STATUSES})", name="status"),
    Index("ix_runs_suite_model_id", "suite", "model", "id"),
    Index("ix_runs_status", "status"),
)
"""One execution of a suite against a model. ``suite`` and ``model`` are names, not
foreign keys: a run stays readable after its model leaves the configuration."""

run_metrics = Table(
    "run_metrics",
    metadata,
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("name", String(NAME), primary_key=True),
    Column("value", Float, nullable=False),
    Column("lower", Float, nullable=True),
    Column("upper", Float, nullable=True),
    Column("n", Integer, nullable=False),
    Column("detail", Text, nullable=True),
)
"""Aggregate metrics of a run with their confidence interval; ``detail`` says how the
number was computed when that matters (sacrebleu's signature)."""

run_slices = Table(
    "run_slices",
    metadata,
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("field", String(NAME), primary_key=True),
    Column("value", String(NAME), primary_key=True),
    Column("metric", String(NAME), primary_key=True),
    Column("score", Float, nullable=False),
    Column("lower", Float, nullable=True),
    Column("upper", Float, nullable=True),
    Column("n", Integer, nullable=False),
)
"""Every metric of a run per value of a slice field (``slices`` of the suite)."""

case_results = Table(
    "case_results",
    metadata,
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("case_id", String(NAME), primary_key=True),
    Column("input", json_document(), nullable=False),
    Column("expected", json_document(), nullable=False),
    Column("prediction", json_document(nullable=True), nullable=True),
    Column("scores", json_document(), nullable=False),
    Column("latency_seconds", Float, nullable=True),
    Column("error_kind", String(32), nullable=True),
    Column("error", Text, nullable=True),
    Column("metadata", json_document(nullable=True), nullable=True),
    Column("prompt_tokens", Integer, nullable=True),
    Column("completion_tokens", Integer, nullable=True),
    Column("attempts", json_document(nullable=True), nullable=True),
)
"""What happened to each case of a run; ``attempts`` holds every prediction when the suite
repeats cases."""

baselines = Table(
    "baselines",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("suite", String(NAME), nullable=False),
    Column("model", String(NAME), nullable=False),
    # No cascade: a run that is (or was) a baseline must not vanish from under it.
    Column("run_id", Integer, ForeignKey("runs.id"), nullable=False),
    Column("promoted_at", UTCDateTime, nullable=False),
    Column("promoted_by", String(NAME), nullable=False),
    Column("reason", Text, nullable=False),
    Column("active", Boolean(create_constraint=False), nullable=False),
    Index("ix_baselines_suite_model", "suite", "model"),
)
"""Baseline promotions of a suite x model; the ``active`` row is the current baseline."""
