"""In-process Prometheus instruments of the stream jobs: windows given up on.

A window the evaluation drops (past the ``backfill`` limit, or its rows past retention)
has no report, so the store cannot tell it; the daemon that dropped it counts it here.
Like the request instruments it starts at zero with the process and is registered on the
daemon's own registry, every configured stream present from the start.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter


class StreamMetrics:
    """``monitor_stream_windows_skipped_total{stream}``."""

    def __init__(self, registry: CollectorRegistry, *, streams: Iterable[str] = ()) -> None:
        self._skipped = Counter(
            "monitor_stream_windows_skipped",
            "Complete windows never judged: older than the backfill limit allows to catch "
            "up on, or whose rows retention dropped first.",
            labelnames=["stream"],
            registry=registry,
        )
        for stream in streams:
            self._skipped.labels(stream)

    def windows_skipped(self, stream: str, count: int) -> None:
        """Count ``count`` windows of ``stream`` dropped unjudged."""
        if count:
            self._skipped.labels(stream).inc(count)
