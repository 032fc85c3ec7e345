"""The reference profile: everything a window is compared with, computed once.

A profile keeps, per numerical column, the sorted reference values (exact KS and Wasserstein
by ``np.searchsorted``), the reference-quantile bin edges (``n_bins`` bins with open outer
bins, so one outlier can neither stretch the bins nor hide a shift) and a finer quantile grid
nested in them (for simulating null distributions); per categorical column, the category
counts; per text column, the vocabulary and a numerical profile per descriptor. Calibrated
thresholds are cached in the profile per window size and serialised with it, so repeated
windows of the same size cost nothing, even across restarts.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import logging
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from monitor.drift import text
from monitor.drift.parallel import run_all
from monitor.drift.types import BINNED_METHODS, ColumnSpec, DriftSettings

# Fine quantile bins per coarse bin: the grid on which null distributions are simulated.
FINE_PER_BIN = 32
# A reference counts as discrete (KS calibrated by simulation over its distinct values) when
# it has at most this many distinct values and at most this share of values seen only once
# (the Good-Turing estimate of the mass of values the reference has not seen).
DISCRETE_MAX_LEVELS = 2_000
DISCRETE_MAX_SINGLETONS = 0.01
# Category values counted per step (see _raw_counts).
COUNT_CHUNK = 65_536
FORMAT_VERSION = 1

logger = logging.getLogger(__name__)


def is_missing_category(value: object) -> bool:
    """None, NaN and the empty string are missing categories."""
    return text.is_missing_text(value)


def category_counts(values: np.ndarray | Sequence[object]) -> tuple[Counter[str], int]:
    """Counts of present categories (as strings) and the number of missing values."""
    raw = _raw_counts(values)
    counts: Counter[str] = Counter()
    missing = 0
    for key, count in raw.items():
        if is_missing_category(key):
            missing += count
        else:
            counts[str(key)] += count
    return counts, missing


def _raw_counts(values: np.ndarray | Sequence[object]) -> Counter[object]:
    """Counts of distinct values. Numeric arrays are counted by numpy (sorting, no GIL);
    Python objects by ``Counter`` in chunks of ``COUNT_CHUNK``, so that the GIL is handed
    over between chunks and other columns' threads keep running."""
    if not isinstance(values, np.ndarray):
        return Counter(values)
    if values.dtype != object:
        keys, counts = np.unique(values, return_counts=True)
        return Counter(dict(zip(keys.tolist(), counts.tolist(), strict=True)))
    raw: Counter[object] = Counter()
    for start in range(0, values.size, COUNT_CHUNK):
        raw.update(values[start : start + COUNT_CHUNK])
    return raw


def present_sorted(values: np.ndarray | Sequence[float]) -> tuple[np.ndarray, int]:
    """The finite values sorted, and how many were missing (NaN or infinite)."""
    x = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(x)
    missing = int(x.size - np.count_nonzero(finite))
    kept = x[finite] if missing else x.copy()
    kept.sort()
    return kept, missing


def bin_counts(sorted_values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts per bin, bin ``i`` holding the values with exactly ``i`` edges ``<=`` them."""
    positions = np.searchsorted(sorted_values, edges, side="left")
    return np.diff(positions, prepend=0, append=sorted_values.size).astype(np.int64)


def _quantiles(sorted_values: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Linear-interpolated quantiles of already sorted values (numpy's default method)."""
    h = (sorted_values.size - 1) * levels
    lo = np.floor(h).astype(np.int64)
    hi = np.minimum(lo + 1, sorted_values.size - 1)
    return np.asarray(sorted_values[lo] + (h - lo) * (sorted_values[hi] - sorted_values[lo]))


def _tail_levels(fine: int, n: int) -> np.ndarray:
    """Extra grid levels halving the outer fine bins down to single values: a heavy tail
    carries much of the Wasserstein distance, and one grid point per outer bin would lose it."""
    halvings = np.arange(1, max(1, int(np.log2(max(n / fine, 1.0)))) + 1)
    low = 2.0**-halvings / fine
    return np.concatenate([low, 1.0 - low])


@dataclass
class NumericalProfile:
    """The reference of one numerical column (or text descriptor)."""

    sorted_values: np.ndarray
    missing: int
    std: float
    edges: np.ndarray
    fine_edges: np.ndarray

    @classmethod
    def build(
        cls, values: np.ndarray | Sequence[float], n_bins: int, name: str
    ) -> NumericalProfile:
        sorted_values, missing = present_sorted(values)
        if sorted_values.size == 0:
            raise ValueError(f"reference column {name!r}: expected some finite values, got none")
        fine = n_bins * FINE_PER_BIN
        levels = np.arange(1, fine) / fine
        coarse = _quantiles(sorted_values, levels[FINE_PER_BIN - 1 :: FINE_PER_BIN])
        grid = _quantiles(
            sorted_values, np.concatenate([levels, _tail_levels(fine, sorted_values.size)])
        )
        return cls(
            sorted_values=sorted_values,
            missing=missing,
            std=float(np.std(sorted_values)),
            edges=np.unique(coarse),
            fine_edges=np.unique(np.concatenate([grid, coarse])),
        )

    @property
    def n(self) -> int:
        return int(self.sorted_values.size)

    def bins(self) -> np.ndarray:
        """Reference counts per coarse bin."""
        return bin_counts(self.sorted_values, self.edges)

    def fine_bins(self) -> np.ndarray:
        """Reference counts per fine bin."""
        return bin_counts(self.sorted_values, self.fine_edges)

    def coarse_starts(self) -> np.ndarray:
        """Index of the first fine bin of each coarse bin (coarse edges are fine edges)."""
        inner = np.searchsorted(self.fine_edges, self.edges, side="left") + 1
        return np.concatenate([[0], inner]).astype(np.int64)

    def fine_points(self) -> np.ndarray:
        """The mean reference value of each fine bin (the edge for an empty bin)."""
        positions = np.searchsorted(self.sorted_values, self.fine_edges, side="left")
        counts = np.diff(positions, prepend=0, append=self.n)
        # reduceat sums each run of sorted values in one pass, without an n-sized cumsum
        # (edges lie within [min, max], so every start is a valid index); an empty bin's
        # bogus sum (one value) is replaced by its edge below
        sums = np.add.reduceat(self.sorted_values, np.concatenate([[0], positions]))
        fallback = np.concatenate([self.fine_edges, self.fine_edges[-1:]])
        means = np.divide(sums, counts, out=fallback.copy(), where=counts > 0)
        return np.asarray(means)

    @functools.cached_property
    def null_shape(self) -> NullShape:
        """What the calibrated null distributions need from this reference (computed on first
        use, not stored: it is cheap to derive again after loading)."""
        fine = self.fine_bins()
        starts = self.coarse_starts()
        discrete = self._discrete_counts()
        digest = hashlib.blake2b(digest_size=16)
        parts = [np.array([self.n]), fine, starts] + ([] if discrete is None else [discrete])
        for part in parts:
            digest.update(np.ascontiguousarray(part, dtype=np.int64).tobytes())
        return NullShape(
            key=digest.digest(),
            fine_shares=fine / self.n,
            coarse_starts=starts,
            steps=np.diff(self.fine_points()),
            discrete_counts=discrete,
        )

    def _discrete_counts(self) -> np.ndarray | None:
        """Counts of the distinct reference values when the reference is discrete (see
        ``DISCRETE_MAX_LEVELS``); None for continuous (or mostly continuous) data."""
        values = self.sorted_values
        changes = values[1:] != values[:-1]
        # a constant reference keeps the continuous value: any other value would be drift
        if not 1 <= np.count_nonzero(changes) < DISCRETE_MAX_LEVELS:
            return None
        counts = np.diff(np.flatnonzero(changes), prepend=-1, append=self.n - 1)
        if np.count_nonzero(counts == 1) > DISCRETE_MAX_SINGLETONS * self.n:
            return None
        return counts


@dataclass(frozen=True)
class NullShape:
    """A numerical reference as calibration sees it. ``key`` identifies the null distribution
    of every statistic but Wasserstein: references with the same size, the same counts per
    fine quantile bin and the same distinct-value counts (if discrete) have the same null for
    KS, PSI, Jensen-Shannon and Hellinger; every tie-free reference of a given size does.
    Wasserstein also depends on ``steps``, the distances between fine bins' mean values."""

    key: bytes
    fine_shares: np.ndarray
    coarse_starts: np.ndarray
    steps: np.ndarray
    discrete_counts: np.ndarray | None


@dataclass
class CategoricalProfile:
    """The reference of one categorical column: category counts in a fixed order."""

    categories: tuple[str, ...]
    counts: np.ndarray
    missing: int

    @classmethod
    def build(cls, values: np.ndarray | Sequence[object], name: str = "") -> CategoricalProfile:
        counts, missing = category_counts(values)
        if not counts:
            # every window value would be a new category, yet the shares of nothing cannot
            # drift: refuse, as an all-missing numerical reference is refused
            raise ValueError(
                f"reference column {name!r}: expected some present categories, "
                f"got none ({missing} missing)"
            )
        ordered = tuple(sorted(counts))
        return cls(ordered, np.array([counts[c] for c in ordered], dtype=np.int64), missing)

    @property
    def n(self) -> int:
        return int(self.counts.sum())


@dataclass
class ReferenceProfile:
    """Everything ``compare`` needs from the reference, computed once by ``build_profile``.

    ``numerical`` also holds one entry per text descriptor, named ``"<column>:<descriptor>"``.
    """

    columns: tuple[ColumnSpec, ...]
    settings: DriftSettings
    n_rows: int
    numerical: dict[str, NumericalProfile] = field(default_factory=dict)
    categorical: dict[str, CategoricalProfile] = field(default_factory=dict)
    vocabularies: dict[str, frozenset[str]] = field(default_factory=dict)
    # (column, method, current size) -> calibrated threshold
    thresholds: dict[tuple[str, str, int], float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def bin_edges(self, column: str) -> np.ndarray:
        """Inner bin edges of a numerical column (or ``"<text>:<descriptor>"``), ascending:
        bin ``i`` holds values with exactly ``i`` edges ``<=`` them, for SQL push-down."""
        return self._numerical(column).edges.copy()

    def categories(self, column: str) -> tuple[str, ...]:
        """The reference categories of a categorical column, sorted."""
        if column not in self.categorical:
            raise KeyError(f"{column!r} is not a categorical column of this profile")
        return self.categorical[column].categories

    def cached_threshold(self, key: tuple[str, str, int]) -> float | None:
        with self._lock:
            return self.thresholds.get(key)

    def store_threshold(self, key: tuple[str, str, int], value: float) -> None:
        with self._lock:
            self.thresholds[key] = value

    def _numerical(self, column: str) -> NumericalProfile:
        if column not in self.numerical:
            raise KeyError(f"{column!r} is not a numerical column of this profile")
        return self.numerical[column]

    def to_bytes(self) -> bytes:
        """A compact, pickle-free serialisation (an ``.npz`` archive with a JSON header)."""
        from monitor.drift import serialise

        return serialise.dump(self)

    @classmethod
    def from_bytes(cls, data: bytes) -> ReferenceProfile:
        """The inverse of ``to_bytes``."""
        from monitor.drift import serialise

        return serialise.load(data)


def build_profile(
    reference: Mapping[str, np.ndarray],
    columns: Sequence[ColumnSpec],
    settings: DriftSettings | None = None,
) -> ReferenceProfile:
    """Profile the reference data of ``columns`` once; the result is reused for every window."""
    settings = settings or DriftSettings()
    n_rows = _row_count(reference, columns)
    if n_rows < settings.min_rows:
        logger.warning(
            "the reference has %d rows, fewer than min_rows (%d), the fewest a window is "
            "judged on: its bins and null distributions rest on too few values, so drift "
            "verdicts against it are unreliable",
            n_rows,
            settings.min_rows,
        )
    profile = ReferenceProfile(tuple(columns), settings, n_rows)
    for spec in columns:
        _check_methods(spec)
    # GIL-bound columns (categories, texts) first, as in compare
    specs = sorted(columns, key=lambda spec: spec.kind == "numerical")
    jobs = [functools.partial(_build_column, s, reference[s.name], settings) for s in specs]
    built = dict(zip([s.name for s in specs], run_all(jobs, settings.workers), strict=True))
    for spec in columns:
        part = built[spec.name]
        if isinstance(part, CategoricalProfile):
            profile.categorical[spec.name] = part
        else:
            profile.numerical.update(part[1])
            if part[0] is not None:
                profile.vocabularies[spec.name] = part[0]
    return profile


def _build_column(
    spec: ColumnSpec, values: np.ndarray, settings: DriftSettings
) -> CategoricalProfile | tuple[frozenset[str] | None, dict[str, NumericalProfile]]:
    """One column's part of the profile: a categorical profile, or (vocabulary for a text
    column, numerical profiles by name)."""
    if spec.kind == "numerical":
        return None, {spec.name: NumericalProfile.build(values, settings.n_bins, spec.name)}
    if spec.kind == "categorical":
        return CategoricalProfile.build(values, spec.name)
    vocab, described = text.profile_descriptors(np.asarray(values, dtype=object))
    numerical = {}
    for name, array in described.items():
        full = text.descriptor_name(spec.name, name)
        numerical[full] = NumericalProfile.build(array, settings.n_bins, full)
    return vocab, numerical


def _check_methods(spec: ColumnSpec) -> None:
    """Raw-value methods (KS, Wasserstein) do not apply to categories."""
    if spec.kind == "categorical":
        wrong = [m for m in spec.methods if m not in BINNED_METHODS]
        if wrong:
            raise ValueError(
                f"columns[{spec.name!r}].methods: {wrong} do not apply to a categorical "
                f"column; expected some of {sorted(BINNED_METHODS)}"
            )


def _row_count(data: Mapping[str, np.ndarray], columns: Sequence[ColumnSpec]) -> int:
    """The common length of the columns; a missing or ragged column is an error."""
    lengths = {}
    for spec in columns:
        if spec.name not in data:
            raise ValueError(f"data lacks column {spec.name!r}; got: {sorted(data)}")
        lengths[spec.name] = len(data[spec.name])
    if len(set(lengths.values())) > 1:
        raise ValueError(f"columns have different lengths: {lengths}")
    return next(iter(lengths.values()), 0)


def encode_header(header: Mapping[str, object]) -> np.ndarray:
    return np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)


def npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=False, **arrays)
    return buffer.getvalue()
