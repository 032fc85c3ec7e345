"""``[[streams]]``: a named feed of production data watched for drift.

A stream names its columns (the schema), where its reference data comes from, where its
current data comes from (the ingest API, a glob of files or a SQL query), how the data is
cut into windows, which drift methods and thresholds apply, and when windows are judged.
Everything is checked here, at load time, so a daemon never discovers a broken stream at
its first window.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, ValidationInfo, field_validator, model_validator

from monitor.config._base import Duration, Name, Section, resolve_path
from monitor.config.suites import FAIRNESS_MEASURES, FairnessMeasure, ScheduleConfig

Method = Literal["ks", "wasserstein", "psi", "jensenshannon", "hellinger", "chi2", "linf"]
NUMERICAL_METHODS = ("ks", "wasserstein", "psi", "jensenshannon", "hellinger")
CATEGORICAL_METHODS = ("chi2", "jensenshannon", "psi", "linf")
# Column names become SQL identifiers (push-down) and Prometheus label values.
ColumnName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")]
FILE_SUFFIXES = (".parquet", ".csv", ".jsonl", ".ndjson", ".json")
# A stream's window metrics when ``performance.metrics`` names none.
CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1")
SCORE_METRICS = ("roc-auc", "log-loss")
REGRESSION_METRICS = ("mae", "rmse", "r2", "mape")


def _readable_data_file(value: Path, info: ValidationInfo) -> Path:
    path = resolve_path(value, info)
    if path.suffix.lower() not in FILE_SUFFIXES:
        raise ValueError(f"expected a Parquet, CSV or JSONL file, got '{path.name}'")
    if not path.is_file() or not os.access(path, os.R_OK):
        raise ValueError(f"no readable file at '{path}'")
    return path


def _sqlalchemy_url(value: str) -> str:
    # The message never echoes the URL: it may carry a password.
    expected = "expected a SQLAlchemy URL like 'postgresql://USER@HOST/DB'"
    if "://" not in value:
        raise ValueError(expected)
    # SQLAlchemy's import costs a quarter second: paid only by configurations with a URL.
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        make_url(value)
    except ArgumentError:
        raise ValueError(expected) from None
    return value


class ReferenceConfig(Section):
    """``reference``: exactly one of a file, a SQL query, or a past window of the stream."""

    file: Path | None = None
    url: str | None = None
    query: str | None = None
    start: datetime | None = None
    end: datetime | None = None

    @field_validator("file")
    @classmethod
    def _file(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return None if value is None else _readable_data_file(value, info)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else _sqlalchemy_url(value)

    @field_validator("start", "end")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("expected a time with an offset, e.g. 2024-05-01T00:00:00Z")
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> ReferenceConfig:
        kinds = [self.file is not None, self.query is not None, self.start is not None]
        if sum(kinds) != 1:
            raise ValueError(
                "set exactly one of 'file', 'query' (with 'url') or 'start'/'end' (a past window)"
            )
        if (self.query is None) != (self.url is None):
            raise ValueError("'query' and 'url' go together")
        if (self.start is None) != (self.end is None):
            raise ValueError("'start' and 'end' go together")
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError("'end' must be after 'start'")
        return self

    @property
    def kind(self) -> Literal["file", "sql", "window"]:
        return "file" if self.file else "sql" if self.query else "window"


class IngestSourceConfig(Section):
    """``source`` with ``kind = "ingest"``: records are POSTed to the API."""

    kind: Literal["ingest"] = "ingest"
    max_body_bytes: int = Field(32 * 1024 * 1024, ge=1024)
    max_batch_rows: int = Field(500_000, ge=1)
    retention: Duration = timedelta(days=30)
    max_in_flight: int = Field(16, ge=1, le=1024)
    """Batches of this stream parsed or stored at once; one more is answered 429 with
    ``Retry-After``."""
    max_in_flight_bytes: int = Field(128 * 1024 * 1024, ge=1024)
    """Body bytes of this stream's batches in flight (each reserves its
    ``Content-Length``, a chunked one ``max_body_bytes``); past it, 429. A batch holds
    at most about twice its body, so this bounds ingest memory to about twice it."""


class FilesSourceConfig(Section):
    """``source`` with ``kind = "files"``: a glob of Parquet/CSV/JSONL files."""

    kind: Literal["files"]
    glob: str

    @field_validator("glob")
    @classmethod
    def _absolute(cls, value: str, info: ValidationInfo) -> str:
        base = (info.context or {}).get("base_dir")
        expanded = os.path.expanduser(value)
        if base is not None and not os.path.isabs(expanded):
            expanded = os.path.join(str(base), expanded)
        return expanded


class SqlSourceConfig(Section):
    """``source`` with ``kind = "sql"``: a query over the user's database, windowed on the
    timestamp column. With ``pushdown`` the database computes the bin and category counts."""

    kind: Literal["sql"]
    url: str
    query: str
    pushdown: bool = True

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _sqlalchemy_url(value)


SourceConfig = Annotated[
    IngestSourceConfig | FilesSourceConfig | SqlSourceConfig, Field(discriminator="kind")
]


class WindowConfig(Section):
    """``window``: tumbling by time (``every = "1h"``) or by row count (``rows = 10000``).

    ``backfill`` bounds how many not yet judged windows one evaluation catches up on
    (after downtime, or behind a fast producer): the newest ones are judged, the older
    ones are dropped, logged and counted, so a long outage cannot queue hours of work."""

    every: Duration | None = None
    rows: int | None = Field(None, ge=1)
    min_rows: int = Field(100, ge=1)
    backfill: int = Field(100, ge=1, le=100_000)

    @model_validator(mode="after")
    def _one_kind(self) -> WindowConfig:
        if (self.every is None) == (self.rows is None):
            raise ValueError("set exactly one of 'every' (a duration) or 'rows' (a count)")
        if self.every is not None and self.every <= timedelta(0):
            raise ValueError("'every' must be a positive duration")
        return self


class MethodsConfig(Section):
    """``methods``: per column kind; the first method of a kind decides ``drifted``."""

    numerical: tuple[Method, ...] = ()
    categorical: tuple[Method, ...] = ()
    text: tuple[Method, ...] = ()

    @model_validator(mode="after")
    def _fit_kinds(self) -> MethodsConfig:
        for kind, allowed in (
            ("numerical", NUMERICAL_METHODS),
            ("categorical", CATEGORICAL_METHODS),
            ("text", NUMERICAL_METHODS),
        ):
            wrong = [m for m in getattr(self, kind) if m not in allowed]
            if wrong:
                raise ValueError(
                    f"{kind}: method {wrong[0]!r} does not apply; expected: {', '.join(allowed)}"
                )
        return self


class ThresholdsConfig(Section):
    """``thresholds``: how a statistic becomes a ``drifted`` flag."""

    mode: Literal["calibrated", "p-value", "fixed"] = "calibrated"
    false_alarm_rate: float = Field(0.01, gt=0.0, lt=0.5)
    alpha: float = Field(0.05, gt=0.0, lt=1.0)
    correction: Literal["holm", "bh", "none"] = "holm"
    fixed: dict[Method, float] = Field(default_factory=dict)
    drift_share: float = Field(0.5, gt=0.0, le=1.0)
    n_bins: int = Field(20, ge=2, le=1000)
    seed: int = 0


class ReportConfig(Section):
    """``report``: the optional HTML report per window; its plots count a bounded sample."""

    html: bool = False
    sample_rows: int = Field(5000, ge=100, le=1_000_000)


def _metric_spec(
    spec: str | dict[str, str | int | float | bool],
) -> str | dict[str, str | int | float | bool]:
    from monitor.scoring import build_metric

    build_metric(spec)  # a ValueError names the metric and what was expected
    return spec


MetricSpec = Annotated[str | dict[str, str | int | float | bool], AfterValidator(_metric_spec)]


class PerformanceConfig(Section):
    """``performance``: realized performance per window, from the labels joined to its
    records (a stream with both ``prediction`` and ``label``).

    A window's performance is provisional until ``label_delay`` after its end, then
    final; labels that change a final window's figures re-open it (``reopen_within``
    bounds how far back, and retention bounds it too). ``target`` holds metric values
    to judge windows against when the reference carries no labels."""

    label_delay: Duration = timedelta(hours=1)
    metrics: tuple[MetricSpec, ...] = ()
    score: ColumnName | None = None
    positive: str = "1"
    min_labels: int = Field(30, ge=1)
    target: dict[str, float] = Field(default_factory=dict)
    alpha: float = Field(0.05, gt=0.0, lt=1.0)
    interval_rows: int = Field(20_000, ge=100, le=10_000_000)
    reopen_within: Duration = timedelta(days=7)
    seed: int = 0

    @field_validator("label_delay", "reopen_within")
    @classmethod
    def _not_negative(cls, value: timedelta) -> timedelta:
        if value < timedelta(0):
            raise ValueError(f"must not be negative, got: {value}")
        return value

    @model_validator(mode="after")
    def _reopen_after_delay(self) -> PerformanceConfig:
        if self.reopen_within < self.label_delay:
            raise ValueError(
                "'reopen_within' must be at least 'label_delay' (a window is re-checked"
                " until it is final)"
            )
        return self

    def metric_specs(
        self, task: Literal["classification", "regression"]
    ) -> tuple[str | dict[str, str | int | float | bool], ...]:
        """The metrics a window is scored with: the configured ones, else the task's
        defaults; ROC AUC and log loss read ``score`` and take ``positive``."""
        specs: tuple[str | dict[str, str | int | float | bool], ...]
        if self.metrics:
            specs = self.metrics
        elif task == "regression":
            specs = REGRESSION_METRICS
        else:
            specs = CLASSIFICATION_METRICS + (SCORE_METRICS if self.score is not None else ())
        return tuple(
            {"name": s, "positive": self.positive} if s in ("roc-auc", "log-loss") else s
            for s in specs
        )


class FairnessConfig(Section):
    """``fairness``: group fairness of a classification stream's windows over the
    categorical column ``groups``; ``positive`` is the favourable outcome."""

    groups: ColumnName
    positive: str = "1"
    metrics: tuple[FairnessMeasure, ...] = FAIRNESS_MEASURES


class ShadowConfig(Section):
    """``shadow``: how a window compares the shadow model's predictions with
    ``prediction``: from the record's ``shadow_prediction`` column, or (``stream``) from
    the ``prediction`` of another stream's records with the same record id.

    ``min_pairs`` records carrying both predictions are needed for any figure;
    numerical predictions agree when within ``tolerance`` of each other; intervals are
    at ``confidence``. With ``stream``, a window joins the shadow records that arrive up
    to ``max_lag`` after its end: it is provisional until then, and final after."""

    stream: Name | None = None
    max_lag: Duration = timedelta(minutes=10)
    min_pairs: int = Field(30, ge=1)
    tolerance: float = Field(0.0, ge=0.0)
    confidence: float = Field(0.95, gt=0.0, lt=1.0)

    @field_validator("max_lag")
    @classmethod
    def _lag_not_negative(cls, value: timedelta) -> timedelta:
        if value < timedelta(0):
            raise ValueError(f"must not be negative, got: {value}")
        return value


class StreamConfig(Section):
    """``[[streams]]``: schema, reference, source, window, methods, thresholds, schedule."""

    name: Name
    timestamp: ColumnName
    record_id: ColumnName | None = None
    numerical: tuple[ColumnName, ...] = ()
    categorical: tuple[ColumnName, ...] = ()
    text: tuple[ColumnName, ...] = ()
    prediction: ColumnName | None = None
    prediction_kind: Literal["numerical", "categorical"] = "numerical"
    shadow_prediction: ColumnName | None = None
    label: ColumnName | None = None
    label_kind: Literal["numerical", "categorical"] = "categorical"
    reference: ReferenceConfig
    source: SourceConfig = Field(default_factory=IngestSourceConfig)
    window: WindowConfig
    methods: MethodsConfig = Field(default_factory=MethodsConfig)
    thresholds: ThresholdsConfig = Field(default_factory=ThresholdsConfig)
    schedule: ScheduleConfig | None = None
    report: ReportConfig = Field(default_factory=ReportConfig)
    max_exported_columns: int = Field(50, ge=1, le=1000)
    performance: PerformanceConfig = Field(default_factory=PerformanceConfig)
    segments: tuple[ColumnName, ...] = ()
    max_segments: int = Field(10, ge=1, le=100)
    fairness: FairnessConfig | None = None
    shadow: ShadowConfig = Field(default_factory=ShadowConfig)

    @model_validator(mode="after")
    def _schema(self) -> StreamConfig:
        monitored = self.monitored_columns()
        if not monitored:
            raise ValueError("name at least one numerical, categorical, text or prediction column")
        names = [name for name, _ in monitored]
        extra = [self.timestamp, self.record_id, self.label, self.shadow_prediction]
        seen: set[str] = set()
        for name in [*names, *(n for n in extra if n is not None)]:
            if name in seen:
                raise ValueError(f"column {name!r} is named twice in the schema")
            seen.add(name)
        self._check_shadow()
        if self.label is not None and self.record_id is None:
            raise ValueError("'label' is joined by record id: set 'record_id' too")
        if self.reference.kind == "window" and not isinstance(self.source, IngestSourceConfig):
            raise ValueError("a past-window reference needs the ingest source")
        if self.window.rows is not None and not isinstance(self.source, IngestSourceConfig):
            raise ValueError(
                "row-count windows need the ingest source; use 'every' for files and SQL"
            )
        self._check_performance()
        return self

    def _check_shadow(self) -> None:
        shadow = self.shadow
        if shadow.stream is not None:
            self._check_shadow_stream(shadow.stream)
            return
        if shadow.model_fields_set and self.shadow_prediction is None:
            raise ValueError(
                "shadow: set 'shadow_prediction' (a column of this stream) or"
                " 'shadow.stream' (a stream of the shadow model's predictions)"
            )
        if "max_lag" in shadow.model_fields_set:
            raise ValueError("shadow.max_lag: applies to a shadow stream; set 'shadow.stream'")
        if self.shadow_prediction is not None and self.prediction is None:
            raise ValueError(
                "shadow_prediction: the shadow model's prediction is compared with"
                " 'prediction': set 'prediction' too"
            )

    def _check_shadow_stream(self, name: str) -> None:
        """A shadow stream is joined by record id to this ingest stream's predictions
        (the other stream's own checks are the root config's: ``shadow_stream_problems``)."""
        if self.shadow_prediction is not None:
            raise ValueError(
                "shadow.stream: the shadow model's predictions come either on this stream's"
                " records ('shadow_prediction') or from another stream, not both"
            )
        if name == self.name:
            raise ValueError("shadow.stream: a stream cannot be its own shadow")
        if self.prediction is None:
            raise ValueError(
                "shadow.stream: the shadow stream's predictions are compared with"
                " 'prediction': set 'prediction' too"
            )
        if self.record_id is None:
            raise ValueError(
                "shadow.stream: the shadow stream is joined by record id: set 'record_id' too"
            )
        if not isinstance(self.source, IngestSourceConfig):
            raise ValueError(
                "shadow.stream: a stream joined to a shadow stream needs the ingest source"
            )

    def _check_groups(self) -> None:
        for i, column in enumerate(self.segments):
            if column not in self.categorical:
                raise ValueError(
                    f"segments[{i}]: {column!r} must be one of the categorical columns"
                )
        if self.fairness is None:
            return
        if self.fairness.groups not in self.categorical:
            raise ValueError(
                f"fairness.groups: {self.fairness.groups!r} must be one of the categorical columns"
            )
        if not self.measures_performance or self.task != "classification":
            raise ValueError(
                "fairness needs a classification stream: 'prediction' and a categorical 'label'"
            )

    def _check_performance(self) -> None:
        self._check_groups()
        performance = self.performance
        if performance.score is not None and performance.score not in self.numerical:
            raise ValueError(
                f"performance.score: {performance.score!r} must be one of the numerical"
                " columns (the positive class's probability)"
            )
        if not self.measures_performance:
            return
        if self.task == "regression" and self.prediction_kind != "numerical":
            raise ValueError(
                "performance: a numerical label needs prediction_kind = 'numerical' (regression)"
            )
        from monitor.scoring import build_metric

        for i, spec in enumerate(performance.metric_specs(self.task)):
            metric = build_metric(spec)
            if self.task not in metric.tasks:
                raise ValueError(
                    f"performance.metrics[{i}]: {metric.name!r} is not a {self.task} metric"
                )
            if metric.needs_scores and performance.score is None:
                raise ValueError(
                    f"performance.metrics[{i}]: {metric.name!r} needs performance.score"
                    " (a column with the positive class's probability)"
                )
        targets = {build_metric(s).label for s in performance.metric_specs(self.task)}
        unknown = sorted(set(performance.target) - targets)
        if unknown:
            raise ValueError(
                f"performance.target: {unknown[0]!r} is not one of the window's metrics"
                f" ({', '.join(sorted(targets))})"
            )

    @property
    def compares_shadow(self) -> bool:
        """Whether windows get a shadow comparison (a column or a shadow stream)."""
        has_shadow = self.shadow_prediction is not None or self.shadow.stream is not None
        return self.prediction is not None and has_shadow

    @property
    def measures_performance(self) -> bool:
        """Whether windows get realized performance: a prediction and a label to score."""
        return self.prediction is not None and self.label is not None

    @property
    def task(self) -> Literal["classification", "regression"]:
        """Classification for a categorical label, regression for a numerical one."""
        return "regression" if self.label_kind == "numerical" else "classification"

    def monitored_columns(self) -> list[tuple[str, Literal["numerical", "categorical", "text"]]]:
        """Every column drift is computed on, with its kind, in schema order."""
        columns: list[tuple[str, Literal["numerical", "categorical", "text"]]] = [
            *((c, "numerical") for c in self.numerical),
            *((c, "categorical") for c in self.categorical),
            *((c, "text") for c in self.text),
        ]
        if self.prediction is not None:
            columns.append((self.prediction, self.prediction_kind))
        return columns

    def drift_columns(self) -> list[tuple[str, Literal["numerical", "categorical", "text"]]]:
        """The monitored columns plus the label, if any: the columns drift is judged on.
        Labels may arrive after their records (``POST .../labels``, joined by record id);
        a window's drift on the label covers the labels known when it is judged."""
        columns = self.monitored_columns()
        if self.label is not None:
            columns.append((self.label, self.label_kind))
        return columns

    def stored_columns(self) -> list[tuple[str, Literal["numerical", "categorical", "text"]]]:
        """The drift columns plus the shadow prediction (of the prediction's kind): every
        typed column an ingested batch stores."""
        columns = self.drift_columns()
        if self.shadow_prediction is not None:
            columns.append((self.shadow_prediction, self.prediction_kind))
        return columns

    def schema_columns(self) -> list[str]:
        """Every column an ingested record may carry."""
        optional = [self.record_id, self.label, self.shadow_prediction]
        return [
            self.timestamp,
            *(n for n, _ in self.monitored_columns()),
            *(n for n in optional if n is not None),
        ]
