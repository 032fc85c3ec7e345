"""One fake endpoint per module, with its fault script and request log reset per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

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
