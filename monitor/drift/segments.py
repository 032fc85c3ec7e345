"""Drift per segment: each value of a segment column judged against its own reference rows.

A segment is just a smaller reference/current pair: the reference rows whose segment
column holds ``EU`` get their own ``ReferenceProfile`` (bins, categories and, in
calibrated mode, null distributions simulated at that segment's window sizes, cached in
the profile like any other), and the window's ``EU`` rows are compared with it by the same
``compare``. The segments are the ``max_segments`` most frequent values of the
REFERENCE (ties broken by the value), so a segment's profile does not change from window
to window; every other value, a value the reference never saw, and a missing value fall
in ``__other__``, judged against the reference's remaining rows.

The segment column itself is left out of its segments' comparisons: inside ``EU`` it holds
one value on both sides. A segment whose reference has fewer than ``min_rows`` rows is
``insufficient_reference`` and one whose window has fewer is ``insufficient_data``: both
are reported, neither is judged. Per segment column, the judged segment with the largest
drift share (ties: the first by name) is marked ``largest``.

Pure: numpy only, like the rest of the engine.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from monitor.drift.compare import compare
from monitor.drift.profile import ReferenceProfile, build_profile
from monitor.drift.types import ColumnSpec, DriftResult, DriftSettings

OTHER = "__other__"

SegmentStatus = Literal["ok", "insufficient_data", "insufficient_reference"]

__all__ = [
    "OTHER",
    "SegmentDrift",
    "SegmentProfile",
    "SegmentStatus",
    "build_segment_profiles",
    "compare_segments",
    "kept_values",
    "segment_keys",
]


@dataclass(frozen=True)
class SegmentProfile:
    """The reference of one segment: its row count and profile (``None`` below
    ``min_rows``: too few rows to judge against)."""

    column: str
    segment: str
    reference_rows: int
    profile: ReferenceProfile | None


@dataclass(frozen=True)
class SegmentDrift:
    """The drift of one segment in one window (``result`` is ``None`` when not judged)."""

    column: str
    segment: str
    status: SegmentStatus
    n_rows: int
    reference_rows: int
    result: DriftResult | None
    largest: bool = False

    @property
    def drift_share(self) -> float | None:
        return self.result.drift_share if self.status == "ok" and self.result else None


def _present(value: object) -> bool:
    if value is None or value == "":
        return False
    return not (isinstance(value, float) and math.isnan(value))


def kept_values(values: Sequence[object] | np.ndarray, max_segments: int) -> tuple[str, ...]:
    """The ``max_segments`` most frequent present values (as text), most frequent first,
    ties broken by the value so every run cuts the same."""
    counts: Counter[str] = Counter()
    for value, count in Counter(values).items():  # counted in C, converted once per value
        if _present(value):
            counts[str(value)] += count
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return tuple(value for value, _ in ranked[:max_segments])


def segment_keys(values: Sequence[object] | np.ndarray, kept: Sequence[str]) -> np.ndarray:
    """Each row's segment: its value if kept, else ``__other__`` (missing values too)."""
    wanted = set(kept)
    # One decision per distinct value, then a dictionary look-up per row.
    keys = {v: str(v) if _present(v) and str(v) in wanted else OTHER for v in set(values)}
    return np.asarray([keys[v] for v in values], dtype=object)


def _subset(columns: Mapping[str, np.ndarray], rows: np.ndarray) -> dict[str, np.ndarray]:
    return {name: values[rows] for name, values in columns.items()}


def _groups(keys: np.ndarray) -> dict[str, np.ndarray]:
    """Row indices per segment key, from one stable sort rather than a mask per key."""
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    if not len(keys):
        return {}
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    bounds = [*starts.tolist(), len(keys)]
    return {str(sorted_keys[a]): order[a:b] for a, b in itertools.pairwise(bounds)}


def build_segment_profiles(
    reference: Mapping[str, np.ndarray],
    specs: Sequence[ColumnSpec],
    settings: DriftSettings,
    column: str,
    max_segments: int,
    *,
    stored: Mapping[str, ReferenceProfile] | None = None,
) -> list[SegmentProfile]:
    """One profile per kept value of ``column`` in ``reference``, and one for
    ``__other__``; the specs without ``column`` itself. ``stored`` (segment -> profile,
    a cache kept from an earlier build with its calibrated thresholds) is reused instead
    of building those again."""
    if column not in reference:
        raise ValueError(f"segment column {column!r} is not among the reference's columns")
    kept = kept_values(reference[column], max_segments)
    rows = _groups(segment_keys(reference[column], kept))
    inner = [spec for spec in specs if spec.name != column]
    names = {spec.name for spec in inner}
    data = {name: values for name, values in reference.items() if name in names}
    out = []
    for key in (*sorted(kept), OTHER):
        found = rows.get(key, np.array([], dtype=np.intp))
        profile = None
        if inner and len(found) >= settings.min_rows:
            profile = (stored or {}).get(key) or build_profile(
                _subset(data, found), inner, settings
            )
        out.append(SegmentProfile(column, key, len(found), profile))
    return out


def compare_segments(
    profiles: Sequence[SegmentProfile], current: Mapping[str, np.ndarray]
) -> list[SegmentDrift]:
    """The drift of each segment of one column (``profiles`` from
    ``build_segment_profiles``) in the window ``current``."""
    if not profiles:
        return []
    column = profiles[0].column
    kept = [p.segment for p in profiles if p.segment != OTHER]
    rows = _groups(segment_keys(current[column], kept))
    out = []
    for segment in profiles:
        found = rows.get(segment.segment, np.array([], dtype=np.intp))
        n_rows = len(found)
        if segment.profile is None:
            status: SegmentStatus = "insufficient_reference"
            result = None
        else:
            names = {spec.name for spec in segment.profile.columns}
            data = {k: v for k, v in current.items() if k in names}
            result = compare(segment.profile, _subset(data, found))
            status = result.status
        out.append(
            SegmentDrift(column, segment.segment, status, n_rows, segment.reference_rows, result)
        )
    return _mark_largest(out)


def _mark_largest(drifts: list[SegmentDrift]) -> list[SegmentDrift]:
    judged = [d for d in drifts if d.drift_share is not None]
    if not judged:
        return drifts
    # max() keeps the first of equal shares: the first by name
    top = max(sorted(judged, key=lambda d: d.segment), key=lambda d: d.drift_share or 0.0)
    return [replace(d, largest=True) if d is top else d for d in drifts]
