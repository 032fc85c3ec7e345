"""422 answers that name the field: one shape for FastAPI's own validation and ours.

Every problem is ``{"loc", "field", "msg", "type"}``: ``loc`` as FastAPI gives it
(``["body", "models", 0, "endpoint"]``), ``field`` the same path as users write it
(``models[0].endpoint``), ``msg`` starting with that path. The offending input is not
echoed back: a body may be megabytes long, and a URL may carry credentials.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from fastapi import Request, Response
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

__all__ = ["body_problems", "field_error", "field_path", "validation_problems"]

_SOURCES = ("body", "query", "path", "header", "cookie")


def field_path(loc: Sequence[int | str]) -> str:
    """``["body", "models", 0, "endpoint"]`` as ``models[0].endpoint``; a problem with
    the body as a whole is ``body``."""
    parts = list(loc[1:] if loc and loc[0] in _SOURCES else loc)
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or (str(loc[0]) if loc else "body")


class FieldError(RequestValidationError):
    """A ``RequestValidationError`` about one field that reads as one line outside a
    request too (``models[0].id: unknown model 'x'...``): a replica planning a queued API
    run again stores it as the run's error."""

    def __str__(self) -> str:
        return "; ".join(f"{field_path(e['loc'])}: {e['msg']}" for e in self.errors())


def field_error(loc: Sequence[int | str], message: str) -> RequestValidationError:
    """A validation error about one field, answered like FastAPI's own (422)."""
    return FieldError([{"type": "value_error", "loc": tuple(loc), "msg": message}])


def _problem(error: dict[str, Any]) -> dict[str, Any]:
    loc = list(error.get("loc", ()))
    field = field_path(loc)
    message = str(error.get("msg", "invalid"))
    detail = (error.get("ctx") or {}).get("error")
    if error.get("type") == "json_invalid":
        # The parser's position is in the message: the whole body is what is wrong.
        loc, field = loc[:1], "body"
        if detail and str(detail) not in message:
            message = f"{message}: {detail}"
    return {"loc": loc, "field": field, "msg": f"{field}: {message}", "type": error.get("type")}


async def validation_problems(request: Request, exc: Exception) -> JSONResponse:
    """The exception handler for ``RequestValidationError``."""
    errors: Iterable[dict[str, Any]] = (
        exc.errors() if isinstance(exc, RequestValidationError) else ()
    )
    return JSONResponse({"detail": [_problem(e) for e in errors]}, status_code=422)


async def body_problems(request: Request, exc: Exception) -> Response:
    """The handler of (Starlette's) ``HTTPException``: FastAPI's own answer, except for the 400 it
    gives when the standard library cannot parse a declared JSON body (nesting past the
    interpreter's recursion limit, an integer of more than 4,300 digits), which is a 422
    naming ``body`` like every other malformed body. Routes here parse their bodies
    themselves (``bodies.parse_json``); this keeps any other route in the same shape."""
    assert isinstance(exc, HTTPException)
    cause = exc.__cause__
    if exc.status_code == 400 and isinstance(cause, RecursionError | ValueError):
        why = "nested too deeply" if isinstance(cause, RecursionError) else str(cause)
        error = {"type": "json_invalid", "loc": ("body",), "msg": f"Invalid JSON: {why}"}
        return await validation_problems(request, RequestValidationError([error]))
    return await http_exception_handler(request, exc)
