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

from fastapi.responses import JSONResponse
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["INTERNAL_ERROR", "ResponseGuard"]

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
