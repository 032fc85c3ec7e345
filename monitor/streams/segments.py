"""Keep a stream's per-segment reference profiles and judge each window per segment.

For every column in ``segments`` the reference is cut into its ``max_segments`` most
frequent values plus ``__other__`` (``monitor.drift.segments``), and each part gets a
reference profile of its own. The profiles are stored like the stream's whole profile
(``drift_profiles``, keyed by the reference hash, the segment column, the segment and
``max_segments``), so the null distributions calibrated for a segment's window sizes
survive a restart and are shared by replicas; the reference itself is read once per
process to know which rows each segment holds.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from monitor.clock import Clock, utc_now
from monitor.config.streams import StreamConfig
from monitor.drift import ReferenceProfile
from monitor.drift.segments import (
    OTHER,
    SegmentDrift,
    SegmentProfile,
    build_segment_profiles,
    compare_segments,
    kept_values,
)
from monitor.store.parts import HasStreams
from monitor.streams import sources
from monitor.streams.specs import column_specs, drift_settings

logger = logging.getLogger(__name__)

__all__ = ["SegmentDriftTracker", "segment_hash"]


def segment_hash(reference_key: str, column: str, segment: str, max_segments: int) -> str:
    """The stored profile key of one segment of the reference ``reference_key``."""
    text = f"{reference_key}\0segment\0{column}\0{segment}\0{max_segments}"
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(slots=True)
class _Column:
    profiles: list[SegmentProfile]
    ids: dict[str, int]  # segment -> stored profile id


class SegmentDriftTracker:
    """One stream's segments: profiles built (or restored) once, each window judged."""

    def __init__(
        self,
        stream: StreamConfig,
        store: HasStreams,
        *,
        reference_key: Callable[[], str],
        reference: Callable[[], pa.Table],
        clock: Clock = utc_now,
    ) -> None:
        self.stream = stream
        self._store = store
        self._reference_key = reference_key
        self._load_reference = reference
        self._clock = clock
        self._columns: list[_Column] | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.stream.segments)

    def measure(self, table: pa.Table) -> list[SegmentDrift]:
        """The drift of every segment of every segment column in the window ``table``."""
        current = sources.to_columns(table, self.stream)
        out: list[SegmentDrift] = []
        for column in self._profiles():
            sizes = {p.segment: _cached(p.profile) for p in column.profiles}
            out.extend(compare_segments(column.profiles, current))
            for p in column.profiles:  # new window sizes calibrated: keep them for restarts
                if p.profile is not None and _cached(p.profile) > sizes[p.segment]:
                    self._store.streams.update_profile(
                        self.stream.name, column.ids[p.segment], p.profile.to_bytes()
                    )
        return out

    def _profiles(self) -> list[_Column]:
        if self._columns is not None:
            return self._columns
        stream, key = self.stream, self._reference_key()
        reference = sources.to_columns(self._load_reference(), stream)
        specs, settings = column_specs(stream), drift_settings(stream)
        columns = []
        for name in stream.segments:
            stored = self._stored(key, name, reference[name])
            built = build_segment_profiles(
                reference,
                specs,
                settings,
                name,
                stream.max_segments,
                stored={segment: profile for segment, (profile, _) in stored.items()},
            )
            ids = {
                p.segment: stored[p.segment][1] if p.segment in stored else self._save(key, p)
                for p in built
                if p.profile is not None
            }
            columns.append(_Column(built, ids))
        logger.info(
            "stream %s: profiled %d segments of %s",
            stream.name,
            sum(len(c.profiles) for c in columns),
            ", ".join(stream.segments),
        )
        self._columns = columns
        return columns

    def _stored(
        self, key: str, column: str, values: np.ndarray
    ) -> dict[str, tuple[ReferenceProfile, int]]:
        """The segment profiles of ``column`` already in the store, with their ids."""
        out = {}
        for segment in (*kept_values(values, self.stream.max_segments), OTHER):
            hashed = segment_hash(key, column, segment, self.stream.max_segments)
            row = self._store.streams.get_profile(self.stream.name, hashed)
            if row is not None:
                out[segment] = (ReferenceProfile.from_bytes(row.profile), row.id)
        return out

    def _save(self, key: str, segment: SegmentProfile) -> int:
        assert segment.profile is not None
        return self._store.streams.save_profile(
            self.stream.name,
            reference_hash=segment_hash(
                key, segment.column, segment.segment, self.stream.max_segments
            ),
            at=self._clock(),
            n_rows=segment.profile.n_rows,
            profile=segment.profile.to_bytes(),
        )


def _cached(profile: ReferenceProfile | None) -> int:
    return 0 if profile is None else len(profile.thresholds)
