"""The human drift report: Evidently's data-drift page on a bounded sample of a window.

Evidently is imported inside the function: it takes seconds to import and the daemon's hot
path must not pay for it. Its telemetry is switched off before the import (the daemon makes
no call home). Only a sample of at most ``report.sample_rows`` rows of the reference and of
the window is handed to it, so the page costs the same on a window of any size. The
numbers users act on are the monitor's own (stored report, metrics); this page is for
looking at distributions.
"""

from __future__ import annotations

import os
import warnings

import pyarrow as pa

from monitor.config.streams import StreamConfig

__all__ = ["render_report"]


def render_report(stream: StreamConfig, reference: pa.Table, current: pa.Table) -> str:
    """Evidently's ``DataDriftPreset`` page for the monitored columns, as one HTML string."""
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("EVIDENTLY_DISABLE_TELEMETRY", "1")
    # Evidently and its dependencies warn about their own use of deprecated APIs; that is
    # noise for our users (and an error under a strict warnings filter).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy inside Evidently (0/0 bins)
        return _render(stream, reference, current)


def _render(stream: StreamConfig, reference: pa.Table, current: pa.Table) -> str:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    numerical = [n for n, k in stream.drift_columns() if k == "numerical"]
    categorical = [n for n, k in stream.drift_columns() if k == "categorical"]
    text = [n for n, k in stream.drift_columns() if k == "text"]
    definition = DataDefinition(
        numerical_columns=numerical, categorical_columns=categorical, text_columns=text
    )
    frames = []
    limit = stream.report.sample_rows
    for table in (reference, current):
        columns = [c for c in (*numerical, *categorical, *text) if c in table.column_names]
        sample = _sample(table.select(columns), limit, seed=stream.thresholds.seed)
        frames.append(Dataset.from_pandas(sample.to_pandas(), data_definition=definition))
    snapshot = Report([DataDriftPreset()]).run(current_data=frames[1], reference_data=frames[0])
    html: str = snapshot.get_html_str(as_iframe=False)
    return html


def _sample(table: pa.Table, limit: int, *, seed: int) -> pa.Table:
    if table.num_rows <= limit:
        return table
    import numpy as np

    rows = np.sort(np.random.default_rng(seed).choice(table.num_rows, size=limit, replace=False))
    return table.take(pa.array(rows))
