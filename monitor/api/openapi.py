"""The OpenAPI document, completed: every status a route can answer, with its body.

FastAPI documents a route's success and, for routes with parameters, a 422 in its own
error shape. The answers that come from around the route are added here, by rule, to
every operation (so a route added later gets them too):

- ``401`` (with ``WWW-Authenticate``) and ``403`` where a bearer token is checked;
- ``404`` where the path names something (an id, a stream, a suite);
- ``413`` where there is a request body (``limits.BodyLimit``);
- ``422`` where there are parameters or a body, in the shape ``problems`` answers
  (``{"detail": [{"loc", "field", "msg", "type"}]}``); ingest's refusals of a batch,
  ``{"detail", "total_problems", "problems"}``, besides;
- ``429`` (with ``Retry-After``) on the ingest routes, which bound batches in flight.

Every error answer is ``application/json`` with a ``detail``. The ingest and label
bodies, which their routes read raw, are declared with the media types they take (a
JSON array, NDJSON, CSV, Parquet), so a client generator or a fuzzer can build them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

__all__ = ["complete", "install"]

Document = dict[str, Any]

_REF = "#/components/schemas/"
_SCHEMAS: dict[str, Any] = {
    "Problem": {
        "title": "Problem",
        "type": "object",
        "required": ["detail"],
        "properties": {"detail": {"type": "string", "description": "What went wrong."}},
    },
    "FieldProblem": {
        "title": "FieldProblem",
        "type": "object",
        "required": ["loc", "field", "msg", "type"],
        "properties": {
            "loc": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
            "field": {"type": "string", "description": "The path as users write it."},
            "msg": {"type": "string", "description": "Starts with ``field``."},
            "type": {"type": "string"},
        },
    },
    "ValidationProblem": {
        "title": "ValidationProblem",
        "type": "object",
        "required": ["detail"],
        "properties": {
            "detail": {"type": "array", "items": {"$ref": f"{_REF}FieldProblem"}},
        },
    },
    "BatchProblem": {
        "title": "BatchProblem",
        "type": "object",
        "required": ["detail", "total_problems", "problems"],
        "properties": {
            "detail": {"type": "string"},
            "total_problems": {"type": "integer"},
            "problems": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["row", "column", "message"],
                    "properties": {
                        "row": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
                        "column": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                        "message": {"type": "string"},
                    },
                },
            },
        },
    },
}

_RECORDS = {"type": "array", "items": {"type": "object", "additionalProperties": True}}
_TEXT_BODY = {"type": "string"}
INGEST_BODIES: dict[str, dict[str, Any]] = {
    "/v1/streams/{name}/records": {
        "description": "A batch of records: a JSON array of objects, NDJSON (one object a "
        "line), CSV with a header row, or a Parquet file. Columns as the stream's schema.",
        "required": True,
        "content": {
            "application/json": {"schema": _RECORDS},
            "application/x-ndjson": {"schema": _TEXT_BODY},
            "text/csv": {"schema": _TEXT_BODY},
            "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
        },
    },
    "/v1/streams/{name}/labels": {
        "description": 'True labels by record id: ``[{"<record_id>": ..., "<label>": ...}]``.',
        "required": True,
        "content": {"application/json": {"schema": _RECORDS}},
    },
}
"""Request bodies of the routes that read theirs raw, by path (all ``POST``)."""

_DESCRIPTIONS = {
    "401": "No token, or an unknown one",
    "403": "The token lacks the scope",
    "404": "Not found",
    "413": "The request body is too large",
    "422": "A parameter or the body is malformed or out of range; ``field`` names it",
    "429": "Too many batches in flight; retry after ``Retry-After`` seconds",
}
_HEADERS = {
    "401": {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "``Bearer``"}},
    "429": {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait"}},
}


def install(app: FastAPI) -> None:
    """Make ``app.openapi()`` answer the completed document (built once, then cached)."""
    build: Callable[[], Document] = app.openapi

    def openapi() -> Document:
        if app.openapi_schema is None:
            app.openapi_schema = complete(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def complete(document: Document) -> Document:
    """``document`` with the statuses and bodies above added to every operation."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas.update(_SCHEMAS)
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            _complete_operation(path, method, operation)
    return document


def _complete_operation(path: str, method: str, operation: dict[str, Any]) -> None:
    if method == "post" and path in INGEST_BODIES:
        operation.setdefault("requestBody", INGEST_BODIES[path])
    responses: dict[str, Any] = operation.setdefault("responses", {})
    parameters = operation.get("parameters", [])
    body = "requestBody" in operation
    wanted = set()
    if operation.get("security"):
        wanted |= {"401", "403"}
    if any(p.get("in") == "path" for p in parameters):
        wanted.add("404")
    if body:
        wanted.add("413")
    if body or parameters:
        wanted.add("422")
    if method == "post" and path in INGEST_BODIES:
        wanted.add("429")
    for status in wanted:
        responses.setdefault(status, {"description": _DESCRIPTIONS[status]})
    for status, response in responses.items():
        if status[0] in "45":
            _error_body(path, status, response)


def _error_body(path: str, status: str, response: dict[str, Any]) -> None:
    """The body of an error answer, unless the route declared its own model."""
    if status == "422":
        schema: dict[str, Any] = {"$ref": f"{_REF}ValidationProblem"}
        if path in INGEST_BODIES:
            schema = {"anyOf": [schema, {"$ref": f"{_REF}BatchProblem"}]}
        response["content"] = {"application/json": {"schema": schema}}
    elif "content" not in response:
        response["content"] = {"application/json": {"schema": {"$ref": f"{_REF}Problem"}}}
    if status in _HEADERS:
        response.setdefault("headers", _HEADERS[status])
