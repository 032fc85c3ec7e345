"""Every answer sends ``X-Content-Type-Options: nosniff``; an unexpected error is a JSON
500 on a connection that stays open.

Starlette's outermost ``ServerErrorMiddleware`` answers an unhandled exception with a 500
and then re-raises it, so that the server logs it. uvicorn, seeing an exception after the
answer started, closes the transport: a keep-alive client that sent its next request
meanwhile has it reset. ``ResponseGuard`` sits inside that middleware and ends the
exception there: logged once with its traceback, answered ``500 {"detail": ...}`` when no
answer has started yet. Only an error after the answer started (nothing else can be
said) still propagates, and then the connection has to close.
"""

from __future__ import annotations

import logging

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from starlette.datastructures import MutableHeaders
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["INTERNAL_ERROR", "ResponseGuard", "method_not_allowed"]

logger = logging.getLogger(__name__)

INTERNAL_ERROR = "internal error; the daemon's log has the details"


class ResponseGuard:
    """Adds ``nosniff`` to every HTTP answer and turns an unhandled exception into a
    logged JSON 500 without dropping the connection."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def guarded(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                MutableHeaders(scope=message)["X-Content-Type-Options"] = "nosniff"
            await send(message)

        try:
            await self.app(scope, receive, guarded)
        except Exception:
            if started:
                raise
            logger.exception("%s %s failed", scope.get("method"), scope.get("path"))
            answer = JSONResponse({"detail": INTERNAL_ERROR}, status_code=500)
            await answer(scope, receive, guarded)


async def method_not_allowed(request: Request, exc: Exception) -> Response:
    """A 405 whose ``Allow`` lists every method of the path, as the OpenAPI document
    has them. Routers register ``GET`` and ``POST /v1/runs`` as two routes, and
    Starlette answers from the first one alone."""
    path = request.url.path
    methods = {
        method.upper()
        for template, operations in request.app.openapi()["paths"].items()
        if compile_path(template)[0].match(path)
        for method in operations
    }
    headers = getattr(exc, "headers", None) or {}
    allow = ", ".join(sorted(methods)) if methods else headers.get("Allow", "")
    return JSONResponse({"detail": "Method Not Allowed"}, status_code=405, headers={"Allow": allow})
