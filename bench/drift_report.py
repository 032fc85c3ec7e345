"""The HTML drift report: ours against Evidently's DataDriftPreset page, in one run.

Same seeded data for both: ``--columns`` numerical columns of ``--rows`` rows in the
reference and in the window, every column shifted by ``--shift`` standard deviations (0.07
by default: a small drift that 30k rows detect). Ours is the engine's judgement (profile +
compare, not timed: the daemon has it already) rendered by ``render_report`` on a sample of
``--sample`` rows a side (the stream's ``report.sample_rows``, 5000 by default); Evidently
renders its own page on the same sample, as the daemon used to. Reported per side: seconds
to render (best of ``--repeat``), page size, and how many columns the page calls drifted
against the engine's count.

Usage: python bench/drift_report.py --columns 30 --rows 30000
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa

from monitor.config import parse_config
from monitor.drift import build_profile, compare
from monitor.streams import sources
from monitor.streams.evaluate import column_specs, drift_settings
from monitor.streams.html import _sample, render_report

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("EVIDENTLY_DISABLE_TELEMETRY", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--columns", type=int, default=30)
    parser.add_argument("--rows", type=int, default=30_000)
    parser.add_argument("--shift", type=float, default=0.07)
    parser.add_argument("--sample", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    names = [f"c{i}" for i in range(args.columns)]
    raw = {
        "streams": [
            {
                "name": "bench",
                "timestamp": "ts",
                "numerical": names,
                "reference": {"file": "unused.csv"},
                "window": {"rows": args.rows},
                "report": {"html": True, "sample_rows": args.sample},
            }
        ]
    }
    with tempfile.TemporaryDirectory() as scratch:  # the config wants a reference file
        Path(scratch, "unused.csv").write_text("ts\n")
        (stream,) = parse_config(raw, base_dir=scratch).streams
    rng = np.random.default_rng(0)
    ts = {"ts": pa.array(["2024-01-01T00:00:00Z"] * args.rows)}
    reference = pa.table({n: rng.normal(0, 1, args.rows) for n in names} | ts)
    current = pa.table({n: rng.normal(args.shift, 1, args.rows) for n in names} | ts)
    profile = build_profile(
        sources.to_columns(reference, stream), column_specs(stream), drift_settings(stream)
    )
    result = compare(profile, sources.to_columns(current, stream))

    ours = best(args.repeat, lambda: render_report(stream, result, reference, current))
    page = render_report(stream, result, reference, current)
    said = page.count('class="column drifted"')
    print(f"engine: {len(result.drifted_columns)} of {args.columns} columns drifted")
    row("monitor", ours, len(page.encode()), said)

    theirs_page, theirs, counted = evidently(stream, reference, current, args.sample, args.repeat)
    row("Evidently", theirs, len(theirs_page.encode()), counted)
    print(
        f"ratio: Evidently / monitor render time {theirs / ours:.0f}x, "
        f"page size {len(theirs_page.encode()) / len(page.encode()):.0f}x"
    )


def evidently(stream, reference, current, sample, repeat):  # type: ignore[no-untyped-def]
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    names = [n for n, _ in stream.drift_columns()]
    definition = DataDefinition(numerical_columns=names)
    frames = [
        Dataset.from_pandas(
            _sample(t.select(names), sample, seed=0).to_pandas(), data_definition=definition
        )
        for t in (reference, current)
    ]

    def render():  # type: ignore[no-untyped-def]
        snapshot = Report([DataDriftPreset()]).run(current_data=frames[1], reference_data=frames[0])
        return snapshot, snapshot.get_html_str(as_iframe=False)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        seconds = best(repeat, render)
        snapshot, html = render()
    # The page's headline, "Drifted Columns", is this metric (its own tests' verdicts).
    counted = next(
        int(m["value"]["count"])
        for m in snapshot.dict()["metrics"]
        if m["metric_name"].startswith("DriftedColumnsCount")
    )
    return html, seconds, counted


def best(repeat: int, work) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def row(name: str, seconds: float, size: int, drifted: int | None) -> None:
    said = "?" if drifted is None else str(drifted)
    print(f"{name:10s} {seconds:8.3f} s  {size / 1e6:7.2f} MB  page says {said} drifted")


if __name__ == "__main__":
    main()
