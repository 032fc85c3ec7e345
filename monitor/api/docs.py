"""``/docs`` and ``/redoc`` served from the package: they work on a network with no way out.

FastAPI's own pages load Swagger UI and ReDoc from a public CDN, so on the air-gapped
networks daemons often live in they are blank. ``fastapi-offline`` ships those files in
its wheel; the app serves them under ``/docs/assets`` and the pages load nothing else.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

__all__ = ["ASSETS", "offline_app"]

ASSETS = "/docs/assets"


def offline_app(**kwargs: Any) -> FastAPI:
    """A ``FastAPI`` app whose documentation pages need no network."""
    return FastAPIOffline(docs_url="/docs", redoc_url="/redoc", static_url=ASSETS, **kwargs)
