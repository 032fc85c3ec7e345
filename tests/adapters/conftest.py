"""One fake endpoint per module, with its fault script and request log reset per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.adapters import models
from tests.adapters.endpoints import Endpoint, running_endpoint


@pytest.fixture(scope="module")
def _server() -> Iterator[Endpoint]:
    with running_endpoint() as endpoint:
        yield endpoint


@pytest.fixture
def endpoint(_server: Endpoint) -> Endpoint:
    _server.faults.clear()
    _server.requests.clear()
    _server.peak = 0
    return _server


@pytest.fixture(params=models.HTTP_CLIENTS)
def http_client(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs the test once per HTTP client under the transport (``model_for`` uses it)."""
    monkeypatch.setattr(models, "http_client", request.param)
    return str(request.param)
