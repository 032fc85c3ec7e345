"""The daemon's drift test reuses the stream tests' config fixture."""

from __future__ import annotations

from tests.streams.conftest import make_stream_config

__all__ = ["make_stream_config"]
