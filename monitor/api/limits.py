"""Request bodies are size-limited before they are read whole, on every route.

``BodyLimit`` is a plain ASGI middleware. A ``Content-Length`` over the limit is answered
``413`` at once, before the route runs or a byte of the body is read; a body without one
(chunked) is counted as it streams in, and the first chunk past the limit ends the
request with ``413``. Either way nothing of the body is stored.

The limit is ``server.max_body_bytes`` unless a path has its own: stream ingest takes
each stream's ``max_body_bytes``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import HTTPException
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["DEFAULT_MAX_BODY_BYTES", "BodyLimit", "too_large"]

DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024


def too_large(limit: int) -> str:
    """The ``detail`` of a 413 answer."""
    return f"the request body is over {limit} bytes"


class BodyLimit:
    """Refuse request bodies over ``default`` bytes (over ``per_path[path]`` bytes on
    those paths) with ``413``."""

    def __init__(
        self, app: ASGIApp, *, default: int, per_path: Mapping[str, int] | None = None
    ) -> None:
        self.app = app
        self.default = default
        self.per_path = dict(per_path or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.per_path.get(scope["path"], self.default)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            answer = JSONResponse({"detail": too_large(limit)}, status_code=413)
            await answer(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Raised inside the route's read of the body: FastAPI answers it as
                    # an HTTP error, so the route never sees a truncated body.
                    raise HTTPException(413, detail=too_large(limit))
            return message

        await self.app(scope, counted, send)


def _content_length(scope: Scope) -> int | None:
    headers: Any = scope.get("headers") or ()
    for name, value in headers:
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isascii() and text.isdigit() else None
    return None
