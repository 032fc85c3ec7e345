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
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from monitor.records import RunStatus
from monitor.store.types import UTCDateTime, json_document

__all__ = [
    "NAMING_CONVENTION",
    "alert_history",
    "alert_outbox",
    "alert_silences",
    "alert_states",
    "audit_log",
    "baselines",
    "case_results",
    "drift_profiles",
    "drift_reports",
    "ingest_keys",
    "judge_answers",
    "metadata",
    "models",
    "replicas",
    "retention_tallies",
    "run_fairness",
    "run_judges",
    "run_metrics",
    "run_requests",
    "run_rollups",
    "run_slice_gaps",
    "run_slices",
    "runs",
    "stream_batches",
    "stream_labels",
    "stream_performance",
    "stream_predictions",
    "stream_windows",
    "suites",
    "verdict_metrics",
    "verdicts",
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
    # The API request the run belongs to, if any (revision 0005).
    Column("request_id", String(64), ForeignKey("run_requests.id"), nullable=True),
    # Refreshed by the process that owns a queued or running run (revision 0009): a run
    # whose heartbeat is older than ``[store] stale_after`` was abandoned.
    Column("heartbeat_at", UTCDateTime, nullable=True),
    # How many cases the run set out to score (revision 0020): its dataset's, after
    # ``sample``; null for runs stored before it or not yet started.
    Column("n_planned", Integer, nullable=True),
    # The suite's tier the run ran (revision 0015); empty: the suite as configured.
    Column("tier", String(NAME), nullable=False, server_default=""),
    # The model version the model's registry alias named when the run started (revision
    # 0022); NULL: the model has no registry.
    Column("model_version", String(NAME), nullable=True),
    # The work queue (revision 0012). ``slot_at``: the schedule slot a scheduled run is
    # for (one live run per slot); ``lease_owner``: the replica that claimed the run and
    # keeps its heartbeat (its lease) fresh until the run is judged; ``retry_of``: the
    # run whose expired lease this one re-runs.
    Column("slot_at", UTCDateTime, nullable=True),
    Column("lease_owner", String(NAME), nullable=True),
    Column("retry_of", Integer, nullable=True),
    CheckConstraint(f"status IN ({_STATUSES})", name="status"),
    Index("ix_runs_suite_model_id", "suite", "model", "id"),
    Index("ix_runs_status", "status"),
    Index("ix_runs_request_id", "request_id"),
    Index("ix_runs_finished_at", "finished_at"),
    Index("ix_runs_lease_owner", "lease_owner"),
    Index(
        "uq_runs_suite_model_slot_at",
        "suite",
        "model",
        "slot_at",
        unique=True,
        sqlite_where=text("status != 'interrupted'"),
        postgresql_where=text("status != 'interrupted'"),
    ),
)
"""One execution of a suite against a model. ``suite`` and ``model`` are names, not
foreign keys: a run stays readable after its model leaves the configuration."""

run_requests = Table(
    "run_requests",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("suite", String(NAME), nullable=False),
    Column("models", json_document(), nullable=False),
    Column("sample", Integer, nullable=True),
    Column("baseline", String(NAME), nullable=True),
    Column("requested_by", String(NAME), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_run_requests_created_at", "created_at"),
)
"""Requests of the compatible runs API: a suite against several models, one run each
(``runs.request_id``). ``models`` keeps each entry without secrets: the id as sent, the
run's model name and the ad-hoc endpoint (no credentials, query or fragment)."""

run_rollups = Table(
    "run_rollups",
    metadata,
    Column("suite", String(NAME), primary_key=True),
    Column("model", String(NAME), primary_key=True),
    Column("succeeded", BigInteger, nullable=False, default=0),
    Column("failed", BigInteger, nullable=False, default=0),
    Column("interrupted", BigInteger, nullable=False, default=0),
    Column("cases", BigInteger, nullable=False, default=0),
    Column("case_errors", BigInteger, nullable=False, default=0),
    Column("prompt_tokens", BigInteger, nullable=True),
    Column("completion_tokens", BigInteger, nullable=True),
    Column("cost", json_document(), nullable=False),
    Column("last_finished_at", UTCDateTime, nullable=True),
    Column("last_success_at", UTCDateTime, nullable=True),
    # The run that finished last (ties: the higher id) and the newest succeeded run (the
    # highest id): retention never deletes either, the exporter reads their rows.
    Column("last_run_id", Integer, nullable=True),
    Column("success_run_id", Integer, nullable=True),
    Column("last_duration_seconds", Float, nullable=True),
    Column("last_cases", Integer, nullable=True),
    Column("last_case_errors", Integer, nullable=True),
    Column("last_cost", Float, nullable=True),
    Column("last_currency", String(3), nullable=True),
    # The newest verdict of a scheduled run of the pair (revision 0013).
    Column("verdict_id", Integer, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
    # The judges' usage of the finished runs, apart from the model's (revision 0024).
    Column("judge_prompt_tokens", BigInteger, nullable=True),
    Column("judge_completion_tokens", BigInteger, nullable=True),
    Column("judge_cost", json_document(), nullable=True),
)
"""The latest state of every suite x model, kept up to date in the transaction of each
write that changes it (a run created or finished, a verdict stored), so ``/metrics`` reads
one row per pair instead of grouping every stored run, and the run counters keep counting
runs that retention has deleted (revision 0013). ``updated_at`` is the pair's last write:
the exporter drops pairs outside the configuration once it is ``adhoc_series_ttl`` old."""

retention_tallies = Table(
    "retention_tallies",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", BigInteger, nullable=False),
)
"""What deleted rows contributed to counters computed from the rows that remain (outbox
deliveries and failed attempts, redriven dead letters), added in the transaction that
deletes them, so a Prometheus counter never goes down when retention runs (revision 0013)."""

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

run_slice_gaps = Table(
    "run_slice_gaps",
    metadata,
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("field", String(NAME), primary_key=True),
    Column("metric", String(NAME), primary_key=True),
    Column("gap", Float, nullable=False),
    Column("best", String(NAME), nullable=False),
    Column("worst", String(NAME), nullable=False),
    Column("lower", Float, nullable=True),
    Column("upper", Float, nullable=True),
)
"""Per slice field and metric of a run, the largest gap between two slice values with
its 95% interval, computed when the run was scored (revision 0026): the interval needs
the cases, which ``run_slices`` does not keep."""

run_fairness = Table(
    "run_fairness",
    metadata,
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("measure", String(NAME), primary_key=True),
    Column("groups", String(NAME), nullable=False),
    Column("value", Float, nullable=False),
    Column("lower", Float, nullable=True),
    Column("upper", Float, nullable=True),
    Column("n", Integer, nullable=False),
)
"""Group fairness measures of a run (``fairness`` of the suite) over the case field
``groups``, with their 95% interval (revision 0017)."""

run_judges = Table(
    "run_judges",
    metadata,
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("metric", String(NAME), primary_key=True),
    Column("judge", String(NAME), nullable=False),
    Column("prompt_sha256", String(64), nullable=False),
    Column("requests", Integer, nullable=False),
    Column("errors", Integer, nullable=False),
    Column("prompt_tokens", BigInteger, nullable=True),
    Column("completion_tokens", BigInteger, nullable=True),
    Column("cost", Float, nullable=True),
    Column("currency", String(3), nullable=True),
    Column("first_error", Text, nullable=True),
    Column("agreement", Float, nullable=True),
    Column("cached", Integer, nullable=False, server_default=text("0")),
)
"""Per judge metric of a run (revision 0016): its judge, the sha256 of the prompt that
produced the scores, requests, judge errors, and the judge's tokens and cost, kept apart
from the model's own (``runs.prompt_tokens``, ``runs.cost``)."""

judge_answers = Table(
    "judge_answers",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("judge", String(NAME), nullable=False),
    Column("answer", json_document(), nullable=False),
    Column("logprobs", json_document(nullable=True), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
)
"""Judge answers kept for reuse (revision 0016): ``key`` is the sha256 of the judge's
identity, the prompt's sha256, the rendered prompt (so the case's inputs and answer), the
answer's schema and the repeat, so an unchanged case judged again does not pay again."""

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
    # What the endpoint said about its answer (probabilities, a score), for metrics that
    # need it when a verdict recomputes them on resampled cases (revision 0006).
    Column("model_scores", json_document(nullable=True), nullable=True),
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
    Column("dataset_sha256", String(HASH), nullable=False, server_default=""),
    # The baseline run's tier (revision 0015): one active baseline per tier.
    Column("tier", String(NAME), nullable=False, server_default=""),
    Index("ix_baselines_suite_model", "suite", "model"),
    Index(
        "uq_baselines_active",
        "suite",
        "model",
        "tier",
        unique=True,
        sqlite_where=text("active"),
        postgresql_where=text("active"),
    ),
)
"""Baseline promotions of a suite x model x tier; the ``active`` row is the current
baseline (at most one, by a partial unique index)."""

verdicts = Table(
    "verdicts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("baseline_run_id", Integer, ForeignKey("runs.id"), nullable=False),
    Column("suite", String(NAME), nullable=False),
    Column("model", String(NAME), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("dataset_changed", Boolean(create_constraint=False), nullable=False),
    Column("changes", json_document(), nullable=False),
    # Null when the suite asks for no review; else needs_review, approved or rejected.
    Column("review", String(16), nullable=True),
    Column("reviewed_by", String(NAME), nullable=True),
    Column("reviewed_at", UTCDateTime, nullable=True),
    Column("review_reason", Text, nullable=True),
    UniqueConstraint("run_id", "baseline_run_id"),
    Index("ix_verdicts_suite_model_id", "suite", "model", "id"),
    Index("ix_verdicts_created_at", "created_at"),
    Index("ix_verdicts_baseline_run_id", "baseline_run_id"),
)
"""A run judged against a baseline run; ``changes`` holds the per-case diff shown in
reports (degraded and improved cases, truncated); ``review`` its approval, when gated."""

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(NAME), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(NAME), nullable=False),
    Column("reason", Text, nullable=False),
    Column("details", json_document(), nullable=False),
    Index("ix_audit_log_at", "at"),
)
"""Who reviewed a verdict, promoted a baseline or silenced alerts, when and why. Rows are
only ever inserted: the store has no update or delete of them, and database triggers
(migration 0015) refuse both."""

verdict_metrics = Table(
    "verdict_metrics",
    metadata,
    Column("verdict_id", Integer, ForeignKey("verdicts.id", ondelete="CASCADE"), primary_key=True),
    Column("metric", String(NAME), primary_key=True),
    Column("slice", String(2 * NAME), primary_key=True),
    Column("outcome", String(16), nullable=False),
    Column("method", String(32), nullable=False),
    Column("n", Integer, nullable=False),
    Column("baseline", Float, nullable=False),
    Column("new", Float, nullable=False),
    Column("delta", Float, nullable=False),
    Column("lower", Float, nullable=False),
    Column("upper", Float, nullable=False),
    Column("p_value", Float, nullable=False),
    Column("p_adjusted", Float, nullable=False),
    Column("margin", Float, nullable=False),
    Column("reason", Text, nullable=False),
    Column("cases_needed", Integer, nullable=True),
    Column("unpaired", Integer, nullable=False),
    Column("degraded", Integer, nullable=True),
    Column("improved", Integer, nullable=True),
    Column("position", Integer, nullable=False),
    Column("bound", Float, nullable=True),
    Column("bound_side", String(8), nullable=True),
    Column("bound_level", Float, nullable=True),
)
"""One metric (overall, or per slice ``field=value``) of a verdict, in report order;
``bound*`` are null in rows stored before migration 0007."""

alert_states = Table(
    "alert_states",
    metadata,
    Column("fingerprint", String(64), primary_key=True),
    Column("rule", String(NAME), nullable=False),
    Column("labels", json_document(), nullable=False),
    Column("phase", String(16), nullable=False),
    Column("count", Integer, nullable=False),
    Column("active_since", UTCDateTime, nullable=True),
    Column("fired_at", UTCDateTime, nullable=True),
    Column("resolved_at", UTCDateTime, nullable=True),
    Column("notified_at", UTCDateTime, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("summary", Text, nullable=False),
    Column("value", Float, nullable=True),
    Column("threshold", Float, nullable=True),
    Column("details", json_document(), nullable=False),
    Column("links", json_document(), nullable=False),
    Index("ix_alert_states_phase", "phase"),
)
"""The alert engine's state, one row per fingerprint: what a restart resumes from."""

alert_history = Table(
    "alert_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("fingerprint", String(64), nullable=False),
    Column("rule", String(NAME), nullable=False),
    Column("from_phase", String(16), nullable=False),
    Column("to_phase", String(16), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("summary", Text, nullable=False),
    Column("value", Float, nullable=True),
    Index("ix_alert_history_fingerprint_id", "fingerprint", "id"),
    Index("ix_alert_history_at", "at"),
)
"""Every phase change of every alert, oldest first."""

alert_outbox = Table(
    "alert_outbox",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("sink", String(NAME), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("event", String(16), nullable=False),
    Column("payload", json_document(), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("claimed_until", UTCDateTime, nullable=True),
    Column("delivered_at", UTCDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("sequence", Integer, nullable=False),
    Column("retry_since", UTCDateTime, nullable=False),
    CheckConstraint(
        "status IN ('pending', 'delivered', 'superseded', 'dead', 'discarded')", name="status"
    ),
    Index("ix_alert_outbox_status_next_attempt_at", "status", "next_attempt_at"),
    Index("ix_alert_outbox_fingerprint_sink", "fingerprint", "sink"),
    Index("ix_alert_outbox_created_at", "created_at"),
)
"""Notifications to deliver, written in the same transaction as the state change. The
``id`` is the idempotency id a receiver sees on every attempt; ``sequence`` orders the
notifications of one fingerprint (since migration 0008)."""

alert_silences = Table(
    "alert_silences",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("matchers", json_document(), nullable=False),
    Column("starts_at", UTCDateTime, nullable=False),
    Column("ends_at", UTCDateTime, nullable=False),
    Column("created_by", String(NAME), nullable=False),
    Column("comment", Text, nullable=False),
    Index("ix_alert_silences_ends_at", "ends_at"),
)
"""Silences of direct sinks (webhook, Slack): matching alerts change state, unsent."""
stream_batches = Table(
    "stream_batches",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("stream", String(NAME), nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("first_ts", UTCDateTime, nullable=False),
    Column("last_ts", UTCDateTime, nullable=False),
    Column("first_row", Integer, nullable=False),
    Column("n_rows", Integer, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Index("ix_stream_batches_stream_last_ts", "stream", "last_ts"),
    Index("ix_stream_batches_stream_first_row", "stream", "first_row", unique=True),
)
"""Ingested records, one row per accepted batch holding its rows as Arrow IPC bytes: a
batch is stored whole or not at all, and a window reads only the batches it overlaps."""

drift_profiles = Table(
    "drift_profiles",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("stream", String(NAME), nullable=False),
    Column("reference_hash", String(HASH), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("n_rows", Integer, nullable=False),
    Column("profile", LargeBinary, nullable=False),
    Index("ix_drift_profiles_stream_reference_hash", "stream", "reference_hash", unique=True),
)
"""Reference profiles (bins, categories, calibrated thresholds), one per stream x
reference content, so a profile is never recomputed per window."""

drift_reports = Table(
    "drift_reports",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("stream", String(NAME), nullable=False),
    Column("window_key", String(NAME), nullable=False),
    Column("window_start", UTCDateTime, nullable=True),
    Column("window_end", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("status", String(32), nullable=False),
    Column("n_rows", Integer, nullable=False),
    Column("drift_share", Float, nullable=True),
    Column("dataset_drifted", Boolean(create_constraint=False), nullable=False),
    Column("columns", json_document(), nullable=False),
    Column("profile_id", Integer, ForeignKey("drift_profiles.id"), nullable=True),
    Column("html", Text, nullable=True),
    Column("segments", json_document(), nullable=True),
    Column("shadow", json_document(nullable=True), nullable=True),
    Column("shadow_due_at", UTCDateTime, nullable=True),
    Index("ix_drift_reports_stream_window_key", "stream", "window_key", unique=True),
    Index("ix_drift_reports_stream_id", "stream", "id"),
    Index("ix_drift_reports_created_at", "created_at"),
    Index("ix_drift_reports_stream_shadow_due_at", "stream", "shadow_due_at"),
)
"""One drift report per stream window; ``html`` holds the optional HTML report,
``segments`` the drift per segment (null before migration 0018 and without segments).
``shadow`` the window's shadow comparison (streams with a ``shadow_prediction`` or a
``shadow.stream``); ``shadow_due_at`` when a window joined to a shadow stream becomes
final (null once it is, and for every other window)."""

stream_labels = Table(
    "stream_labels",
    metadata,
    Column("stream", String(NAME), primary_key=True),
    Column("record_id", String(NAME), primary_key=True),
    Column("label", Text, nullable=True),
    Column("received_at", UTCDateTime, nullable=False),
    Index("ix_stream_labels_stream_received_at", "stream", "received_at"),
)
"""True labels that arrive after their records, joined to them by record id when a window
is judged. A label sent again for the same record replaces the old one."""

stream_predictions = Table(
    "stream_predictions",
    metadata,
    Column("stream", String(NAME), primary_key=True),
    Column("record_id", String(NAME), primary_key=True),
    Column("prediction", Text, nullable=True),
    Column("received_at", UTCDateTime, nullable=False),
    Index("ix_stream_predictions_stream_received_at", "stream", "received_at"),
)
"""The predictions of a shadow stream (one that another stream names in
``shadow.stream``) by record id, written with the batch that carries them: a production
window joins them on its records' ids. A record sent again replaces its prediction."""

stream_performance = Table(
    "stream_performance",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("stream", String(NAME), nullable=False),
    Column("window_key", String(NAME), nullable=False),
    Column("window_start", UTCDateTime, nullable=True),
    Column("window_end", UTCDateTime, nullable=True),
    Column("report_id", Integer, ForeignKey("drift_reports.id"), nullable=True),
    Column("state", String(32), nullable=False),
    Column("status", String(32), nullable=False),
    Column("n_rows", Integer, nullable=False),
    Column("n_labelled", Integer, nullable=False),
    Column("metrics", json_document(), nullable=False),
    Column("comparison", json_document(), nullable=False),
    Column("groups", json_document(), nullable=False),
    Column("worse", Boolean(create_constraint=False), nullable=False),
    Column("baseline", String(32), nullable=True),
    Column("due_at", UTCDateTime, nullable=False),
    Column("labels_until", UTCDateTime, nullable=True),
    Column("labels_digest", String(HASH), nullable=False),
    Column("reopened", Integer, nullable=False),
    Column("reopened_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_stream_performance_stream_window_key", "stream", "window_key", unique=True),
    Index("ix_stream_performance_stream_window_end", "stream", "window_end"),
)
"""A stream window's realized performance, one row per window, updated in place as its
labels arrive (provisional, final, reopened); the drift report of the window stays as it
was judged."""

ingest_keys = Table(
    "ingest_keys",
    metadata,
    Column("stream", String(NAME), primary_key=True),
    Column("key", String(NAME), primary_key=True),
    Column("fingerprint", String(HASH), nullable=False),
    Column("batch_id", Integer, nullable=False),
    Column("first_row", Integer, nullable=False),
    Column("n_rows", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_ingest_keys_stream_created_at", "stream", "created_at"),
)
"""The ``Idempotency-Key`` of each keyed ingest batch with the answer it got: a retry with
the same key and body is answered from here, not stored again. No foreign key to the
batch: retention may drop the batch while its key still guards against a late retry."""

stream_windows = Table(
    "stream_windows",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("stream", String(NAME), nullable=False),
    Column("window_key", String(NAME), nullable=False),
    Column("position", BigInteger, nullable=False),
    Column("window_start", UTCDateTime, nullable=True),
    Column("window_end", UTCDateTime, nullable=True),
    Column("first_row", BigInteger, nullable=True),
    Column("end_row", BigInteger, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("lease_owner", String(NAME), nullable=True),
    Column("heartbeat_at", UTCDateTime, nullable=True),
    Index("ix_stream_windows_stream_window_key", "stream", "window_key", unique=True),
    Index("ix_stream_windows_stream_position", "stream", "position"),
)
"""Stream windows due to be judged (revision 0025): the scheduling leader queues one row
per stream x window key, any replica claims it (``lease_owner``, ``heartbeat_at`` its
lease), judges the window, stores its drift report and deletes the row. ``position`` is
the window's number in its stream's windowing: a stream's windows are judged in that
order, one at a time."""

replicas = Table(
    "replicas",
    metadata,
    Column("name", String(NAME), primary_key=True),
    Column("host", String(NAME), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("version", String(64), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("seen_at", UTCDateTime, nullable=False),
    Column("leader", Boolean, nullable=False),
)
"""The daemon processes using the store (revision 0012): each refreshes ``seen_at`` every
``[store] heartbeat_every`` and deletes its row when it stops; ``leader`` marks the one
that holds the scheduling lock."""
