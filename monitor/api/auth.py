"""Bearer-token authorisation for the API.

Tokens are configured under ``[[server.tokens]]`` (values from the environment) and kept
on ``app.state.tokens``. ``require_scope("write")`` is a FastAPI dependency: no or an
unknown token answers 401 (with ``WWW-Authenticate: Bearer``), a known token without
the scope answers 403. A token with ``write`` may read too. ``read_access`` guards every
read route under ``/v1``: open while no token is configured, ``require_scope("read")``
as soon as one is. The presented token is compared with every configured one in
constant time (``hmac.compare_digest``), and no answer or log line ever contains it.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from monitor.config.server import Scope, TokenConfig

__all__ = ["read_access", "require_scope"]

_bearer = HTTPBearer(auto_error=False, description="A token from [[server.tokens]].")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def require_scope(scope: Scope) -> Callable[..., Awaitable[str]]:
    """A dependency that admits a request whose bearer token has ``scope``; it returns
    the token's configured name (safe to log), never the token."""

    async def check(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> str:
        if credentials is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                detail="a bearer token is required (Authorization: Bearer TOKEN)",
                headers=_CHALLENGE,
            )
        token = _match(request.app.state.tokens, credentials.credentials)
        if token is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED, detail="unknown token", headers=_CHALLENGE
            )
        if not _grants(token, scope):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                detail=f"token {token.name!r} lacks the {scope!r} scope",
            )
        return token.name

    return check


_read = require_scope("read")


async def read_access(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str | None:
    """A dependency for read routes: anyone may read while no token is configured (or
    with ``server.open_reads``); otherwise a token with ``read`` (or ``write``) is
    required. Returns the token's name,
    ``None`` for an open read."""
    if not request.app.state.tokens or request.app.state.open_reads:
        return None
    return await _read(request, credentials)


def _grants(token: TokenConfig, scope: Scope) -> bool:
    # Whoever may start runs and ingest data may also read what came of it.
    return scope in token.scopes or (scope == "read" and "write" in token.scopes)


def _match(tokens: Sequence[TokenConfig], presented: str) -> TokenConfig | None:
    """The configured token equal to ``presented``. Every token is compared, so the time
    taken does not reveal which one (or how much of one) matched."""
    given = presented.encode()
    found = None
    for token in tokens:
        if hmac.compare_digest(token.token.get_secret_value().encode(), given):
            found = token
    return found
