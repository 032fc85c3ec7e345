"""Runner tests against a faulty endpoint reuse the adapter tests' fake endpoint fixtures."""

from __future__ import annotations

from tests.adapters.conftest import _server, endpoint, http_client

__all__ = ["_server", "endpoint", "http_client"]
