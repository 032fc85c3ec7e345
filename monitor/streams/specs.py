"""A stream's configuration as the drift engine's column specs and settings.

Apart from ``evaluate`` so that ``monitor drift`` on files needs neither the store nor
SQLAlchemy (``tests/cli/test_import_cost.py``).
"""

from __future__ import annotations

from monitor.config.streams import StreamConfig
from monitor.drift import ColumnSpec, DriftSettings

__all__ = ["column_specs", "drift_settings"]


def column_specs(stream: StreamConfig) -> list[ColumnSpec]:
    """The engine's column specs for the stream's monitored columns."""
    methods = stream.methods
    return [
        ColumnSpec(name, kind, tuple(getattr(methods, kind)))
        for name, kind in stream.drift_columns()
    ]


def drift_settings(stream: StreamConfig) -> DriftSettings:
    """The engine's settings from the stream's thresholds and window."""
    t = stream.thresholds
    return DriftSettings(
        threshold_mode=t.mode,
        false_alarm_rate=t.false_alarm_rate,
        alpha=t.alpha,
        correction=t.correction,
        fixed_thresholds={str(method): value for method, value in t.fixed.items()},
        n_bins=t.n_bins,
        drift_share=t.drift_share,
        min_rows=stream.window.min_rows,
        seed=t.seed,
    )
