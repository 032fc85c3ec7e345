"""Streams: ingest records (write token) and list a stream's drift reports; drift
reports by id, with their optional HTML rendering."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel

from monitor.api.auth import require_scope
from monitor.api.ingest import RETRY_AFTER_S, InFlight, feed, idempotency_key, reserved_size
from monitor.api.params import Before, RowId
from monitor.config.streams import IngestSourceConfig, StreamConfig
from monitor.errors import BatchError, StoreBusy
from monitor.records import DriftReport, WindowPerformance
from monitor.store.ingest import Appended, IngestWriter, KeyReused, PendingBatch
from monitor.store.parts import HasStreams
from monitor.streams.batch import BatchParser, body_format, encode, parse_labels
from monitor.streams.html import CONTENT_SECURITY_POLICY
from monitor.streams.shadow import indexed_predictions

router = APIRouter(tags=["streams"])


class IngestOut(BaseModel):
    stream: str
    accepted: int
    batch_id: int
    first_row: int


class PerformanceMetricOut(BaseModel):
    metric: str
    value: float | None
    lower: float | None
    upper: float | None


class PerformanceComparisonOut(BaseModel):
    metric: str
    reference: float | None
    current: float | None
    delta: float | None
    test: str | None
    p_value: float | None
    worse: bool


class DivergenceOut(BaseModel):
    """``disagreement_share`` (categorical, Wilson interval) or ``mean_difference``
    (numerical, shadow minus production: paired t interval and paired t-test p-value)."""

    measure: str
    value: float | None
    lower: float | None
    upper: float | None
    p_value: float | None
    interval: str


class ShadowOut(BaseModel):
    """The window's shadow comparison: ``n_pairs`` records carrying both predictions,
    the share on which they agree, and the divergence (``None`` below ``min_pairs``)."""

    kind: str
    status: str
    n_rows: int
    n_pairs: int
    confidence: float
    agreement: float | None
    divergence: DivergenceOut | None
    mean_abs_difference: float | None = None
    stream: str | None = None
    """The shadow stream joined by record id (``None``: the record's ``shadow_prediction``)."""
    state: str | None = None
    """With a shadow stream: ``provisional`` until ``due_at`` (the window's end plus
    ``shadow.max_lag``), as later shadow records are joined, then ``final``."""
    due_at: datetime | None = None


class PerformanceOut(BaseModel):
    """The window's realized performance from the labels known at ``updated_at``:
    ``provisional`` until ``final_at``; ``reopened`` (and how often) when labels arrived
    after it was final."""

    state: str
    status: str
    n_rows: int
    n_labelled: int
    labelled_share: float
    metrics: list[PerformanceMetricOut]
    baseline: str | None
    worse: bool
    comparison: list[PerformanceComparisonOut]
    groups: dict[str, Any]
    final_at: datetime
    reopened: int
    reopened_at: datetime | None
    updated_at: datetime

    @classmethod
    def of(cls, row: WindowPerformance) -> PerformanceOut:
        return cls(
            state=row.state,
            status=row.status,
            n_rows=row.n_rows,
            n_labelled=row.n_labelled,
            labelled_share=row.labelled_share,
            metrics=[PerformanceMetricOut(**m) for m in row.metrics],
            baseline=row.baseline,
            worse=row.worse,
            comparison=[PerformanceComparisonOut(**c) for c in row.comparison],
            groups=row.groups,
            final_at=row.due_at,
            reopened=row.reopened,
            reopened_at=row.reopened_at,
            updated_at=row.updated_at,
        )


class DriftReportOut(BaseModel):
    id: int
    stream: str
    window_key: str
    window_start: datetime | None
    window_end: datetime | None
    created_at: datetime
    status: str
    n_rows: int
    drift_share: float | None
    dataset_drifted: bool
    drifted_columns: list[str]
    columns: list[dict[str, Any]]
    html_url: str | None
    performance: PerformanceOut | None = None
    segments: list[dict[str, Any]] = []
    shadow: ShadowOut | None = None

    @classmethod
    def of(
        cls, report: DriftReport, performance: WindowPerformance | None = None
    ) -> DriftReportOut:
        return cls(
            id=report.id,
            stream=report.stream,
            window_key=report.window_key,
            window_start=report.window_start,
            window_end=report.window_end,
            created_at=report.created_at,
            status=report.status,
            n_rows=report.n_rows,
            drift_share=report.drift_share,
            dataset_drifted=report.dataset_drifted,
            drifted_columns=[c["column"] for c in report.columns if c.get("drifted")],
            columns=list(report.columns),
            html_url=f"/v1/drift/{report.id}/report.html" if report.has_html else None,
            performance=None if performance is None else PerformanceOut.of(performance),
            segments=list(report.segments),
            shadow=None if report.shadow is None else ShadowOut.model_validate(report.shadow),
        )


class DriftReportPage(BaseModel):
    reports: list[DriftReportOut]
    next_before: int | None


def _store(request: Request) -> HasStreams:
    store: HasStreams = request.app.state.store
    return store


def _stream(request: Request, name: str) -> StreamConfig:
    stream: StreamConfig | None = request.app.state.streams.get(name)
    if stream is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"stream {name!r} not found")
    return stream


_INGEST_MEDIA = {
    "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
    "application/x-ndjson": {"schema": {"type": "string", "description": "one object a line"}},
    "text/csv": {"schema": {"type": "string", "description": "a header row, then records"}},
    "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
}
_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}}
_BUSY: dict[int | str, dict[str, Any]] = {
    429: {"description": "Too many batches of this stream in flight", "headers": _RETRY_AFTER},
    503: {"description": "The store stayed locked; nothing was stored", "headers": _RETRY_AFTER},
}


@router.post(
    "/v1/streams/{name}/records",
    status_code=status.HTTP_201_CREATED,
    response_model=IngestOut,
    responses={
        400: {"description": "A malformed Idempotency-Key"},
        401: {"description": "No or unknown token"},
        403: {"description": "The token lacks the write scope"},
        404: {"description": "No such stream"},
        409: {"description": "The stream does not take ingested records"},
        413: {"description": "The body or the batch is too large"},
        415: {"description": "Unsupported content type"},
        422: {
            "description": "The batch does not fit the schema, or its Idempotency-Key was "
            "used for another batch; nothing was stored"
        },
        **_BUSY,
    },
    openapi_extra={
        "parameters": [
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "A retry with the same key and body is stored once and "
                "answered as the first time (for 24 hours)",
                "schema": {"type": "string", "maxLength": 202},
            }
        ],
        "requestBody": {"required": True, "content": _INGEST_MEDIA},
    },
)
async def ingest(
    request: Request, name: str, _token: Annotated[str, Depends(require_scope("write"))]
) -> Any:
    """Append a batch of records: a JSON array, NDJSON, CSV or Parquet body. The batch
    is validated whole; a bad one is refused with the first offending rows and columns.
    With an ``Idempotency-Key`` a retried batch is stored once."""
    stream = _stream(request, name)
    source = stream.source
    if not isinstance(source, IngestSourceConfig):
        raise HTTPException(
            status.HTTP_409_CONFLICT, detail=f"stream {name!r} reads {source.kind}, not ingest"
        )
    fmt = body_format(request.headers.get("content-type"))
    if fmt is None:
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            detail="send application/json, application/x-ndjson, text/csv or "
            "application/vnd.apache.parquet",
        )
    key = idempotency_key(request)
    writer: IngestWriter = request.app.state.ingest_writer
    gate: InFlight = request.app.state.ingest_in_flight
    size = reserved_size(request, source.max_body_bytes)
    with gate.slot(
        name, limit=source.max_in_flight, byte_limit=source.max_in_flight_bytes, size=size
    ):
        parser = BatchParser(stream, fmt)
        try:
            rest = await feed(request, parser)  # at most max_body_bytes: see body_limits()
            target = _Target(name, key, stream if _is_shadow(request, name) else None)
            appended = await anyio.to_thread.run_sync(
                _finish_and_store, parser, rest, source, target, writer
            )
        except BatchError as exc:
            return JSONResponse(status_code=422, content=_batch_problems(exc))
        except KeyReused as exc:
            raise HTTPException(422, detail=str(exc)) from None
        except StoreBusy:
            raise _busy() from None
        except _TooLarge as exc:
            raise HTTPException(413, detail=str(exc)) from None
    answer = IngestOut(
        stream=name,
        accepted=appended.n_rows,
        batch_id=appended.batch_id,
        first_row=appended.first_row,
    )
    headers = {"Idempotent-Replayed": "true"} if appended.replayed else None
    return JSONResponse(answer.model_dump(), status_code=201, headers=headers)


@dataclass(frozen=True, slots=True)
class _Target:
    """The stream a batch goes to, its idempotency key, and whether another stream names
    it as its shadow (its predictions are then stored by record id with the batch)."""

    stream: str
    key: str | None
    shadow: StreamConfig | None = None


def _is_shadow(request: Request, name: str) -> bool:
    streams: dict[str, StreamConfig] = request.app.state.streams
    return any(s.shadow.stream == name for s in streams.values())


def _finish_and_store(
    parser: BatchParser,
    rest: bytes,
    source: IngestSourceConfig,
    where: _Target,
    writer: IngestWriter,
) -> Appended:
    """The last piece of the body, the checks, the encoding and the write: one worker
    thread hop for a small batch."""
    parser.feed(rest)
    batch = parser.finish()
    if batch.n_rows > source.max_batch_rows:
        raise _TooLarge(f"{batch.n_rows} rows; at most {source.max_batch_rows} per batch")
    pending = PendingBatch(
        where.stream,
        received_at=datetime.now(UTC),
        first_ts=batch.first_ts,
        last_ts=batch.last_ts,
        n_rows=batch.n_rows,
        payload=encode(batch.table),
        key=where.key,
        fingerprint=parser.digest.hexdigest(),
        predictions=() if where.shadow is None else indexed_predictions(where.shadow, batch.table),
    )
    del batch  # the encoded payload is all that is kept
    return writer.append(pending)


def _busy() -> HTTPException:
    return HTTPException(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        detail="the store is locked by other writers; nothing was stored, retry later",
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


class LabelsOut(BaseModel):
    stream: str
    accepted: int


@router.post(
    "/v1/streams/{name}/labels",
    status_code=status.HTTP_201_CREATED,
    response_model=LabelsOut,
    responses={
        401: {"description": "No or unknown token"},
        403: {"description": "The token lacks the write scope"},
        404: {"description": "No such stream"},
        409: {"description": "The stream has no label column"},
        413: {"description": "The body is too large"},
        422: {"description": "A label does not fit; nothing was stored"},
        **_BUSY,
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "array",
                        "items": {"type": "object", "description": "{record_id: label}"},
                    }
                }
            },
        }
    },
)
async def ingest_labels(
    request: Request, name: str, _token: Annotated[str, Depends(require_scope("write"))]
) -> Any:
    """Attach true labels to records sent earlier, by record id: a JSON array of
    ``{"<record_id>": ..., "<label>": ...}``. A label sent again replaces the old one."""
    stream = _stream(request, name)
    if stream.label is None or stream.record_id is None:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=f"stream {name!r} has no label")
    source = stream.source
    # Labels of a stream read from files or SQL get the ingest defaults.
    bounds = source if isinstance(source, IngestSourceConfig) else IngestSourceConfig()
    writer: IngestWriter = request.app.state.ingest_writer
    gate: InFlight = request.app.state.ingest_in_flight
    store = _store(request)
    size = reserved_size(request, body_limits([stream])[f"/v1/streams/{name}/labels"])
    with gate.slot(
        f"{name} labels",
        limit=bounds.max_in_flight,
        byte_limit=bounds.max_in_flight_bytes,
        size=size,
    ):
        body = await request.body()  # size-limited by body_limits()

        def work() -> LabelsOut:
            labels = parse_labels(stream, body)
            writer.write(lambda: store.streams.upsert_labels(name, labels, at=datetime.now(UTC)))
            return LabelsOut(stream=name, accepted=len(labels))

        try:
            return await anyio.to_thread.run_sync(work)
        except BatchError as exc:
            return JSONResponse(status_code=422, content=_batch_problems(exc))
        except StoreBusy:
            raise _busy() from None


class _TooLarge(Exception):
    pass


def body_limits(streams: Iterable[StreamConfig]) -> dict[str, int]:
    """The body size limit of each stream's ingest and labels paths (for ``BodyLimit``):
    an ingest stream's ``max_body_bytes``, 32 MiB for labels of other streams."""
    limits: dict[str, int] = {}
    for stream in streams:
        source = stream.source
        limit = source.max_body_bytes if isinstance(source, IngestSourceConfig) else 32 << 20
        limits[f"/v1/streams/{stream.name}/labels"] = limit
        if isinstance(source, IngestSourceConfig):
            limits[f"/v1/streams/{stream.name}/records"] = limit
    return limits


def _batch_problems(exc: BatchError) -> dict[str, Any]:
    return {
        "detail": "the batch was refused whole; nothing was stored",
        "total_problems": exc.total,
        "problems": [
            {"row": row, "column": column, "message": message}
            for row, column, message in exc.problems
        ],
    }


@router.get("/v1/streams/{name}/reports", responses={404: {"description": "No such stream"}})
async def list_reports(
    request: Request,
    name: str,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: Before = None,
) -> DriftReportPage:
    """A stream's drift reports, newest first. Page with ``before=<next_before>``."""
    _stream(request, name)
    store = _store(request)

    def read() -> tuple[list[DriftReport], dict[str, WindowPerformance]]:
        reports = store.streams.list_drift_reports(name, limit=limit, before_id=before)
        return reports, store.streams.performance_for(name, [r.window_key for r in reports])

    reports, performance = await anyio.to_thread.run_sync(read)
    next_before = reports[-1].id if len(reports) == limit else None
    return DriftReportPage(
        reports=[DriftReportOut.of(r, performance.get(r.window_key)) for r in reports],
        next_before=next_before,
    )


@router.get("/v1/drift/{report_id}", responses={404: {"description": "No such report"}})
async def get_report(request: Request, report_id: RowId) -> DriftReportOut:
    """One drift report: per column method, statistic, threshold, drifted, quality, and
    the window's realized performance when the stream scores one."""
    store = _store(request)

    def read() -> tuple[DriftReport | None, WindowPerformance | None]:
        report = store.streams.get_drift_report(report_id)
        if report is None:
            return None, None
        return report, store.streams.performance_for(report.stream, [report.window_key]).get(
            report.window_key
        )

    report, performance = await anyio.to_thread.run_sync(read)
    if report is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"drift report {report_id} not found")
    return DriftReportOut.of(report, performance)


# Pages stored by earlier versions carry Evidently's scripts: under this policy they do not run.
REPORT_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@router.get(
    "/v1/drift/{report_id}/report.html",
    response_class=HTMLResponse,
    responses={404: {"description": "No such report, or it has no HTML"}},
)
async def get_report_html(request: Request, report_id: RowId) -> HTMLResponse:
    """The HTML report of a window, when the stream renders one: the engine's verdicts
    per column with reference-vs-window plots. Served under a policy that lets no script
    run and nothing load, so ingested text on it stays text."""
    html = await anyio.to_thread.run_sync(_store(request).streams.get_drift_html, report_id)
    if html is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, detail=f"drift report {report_id} has no HTML report"
        )
    return HTMLResponse(html, headers=REPORT_HEADERS)
