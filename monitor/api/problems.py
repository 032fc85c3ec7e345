"""422 answers that name the field: one shape for FastAPI's own validation and ours.

Every problem is ``{"loc", "field", "msg", "type"}``: ``loc`` as FastAPI gives it
(``["body", "models", 0, "endpoint"]``), ``field`` the same path as users write it
(``models[0].endpoint``), ``msg`` starting with that path. The offending input is not
echoed back: a body may be megabytes long, and a URL may carry credentials.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

__all__ = ["field_error", "field_path", "validation_problems"]

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


def field_error(loc: Sequence[int | str], message: str) -> RequestValidationError:
    """A validation error about one field, answered like FastAPI's own (422)."""
    return RequestValidationError([{"type": "value_error", "loc": tuple(loc), "msg": message}])


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
