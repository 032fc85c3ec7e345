"""Pickle-free serialisation of a ``ReferenceProfile``: an ``.npz`` archive of plain numeric
arrays plus a JSON header (columns, settings, categories, vocabularies, cached thresholds).

Loading never executes code from the bytes (``allow_pickle=False``), so a stored profile is
safe to read back even from a shared database.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import asdict
from typing import Any

import numpy as np

from monitor.drift.profile import (
    FORMAT_VERSION,
    CategoricalProfile,
    NumericalProfile,
    ReferenceProfile,
    encode_header,
    npz_bytes,
)
from monitor.drift.types import ColumnSpec, DriftSettings


def dump(profile: ReferenceProfile) -> bytes:
    """The profile as bytes."""
    arrays: dict[str, np.ndarray] = {}
    numerical = []
    for i, (name, num) in enumerate(profile.numerical.items()):
        numerical.append({"name": name, "missing": num.missing, "std": num.std})
        arrays[f"n{i}_values"] = num.sorted_values
        arrays[f"n{i}_edges"] = num.edges
        arrays[f"n{i}_fine"] = num.fine_edges
    categorical = []
    for i, (name, cat) in enumerate(profile.categorical.items()):
        categorical.append(
            {"name": name, "missing": cat.missing, "categories": list(cat.categories)}
        )
        arrays[f"c{i}_counts"] = cat.counts
    settings = asdict(profile.settings)
    settings["fixed_thresholds"] = dict(profile.settings.fixed_thresholds)
    with profile._lock:
        thresholds = [[c, m, size, value] for (c, m, size), value in profile.thresholds.items()]
    header = {
        "version": FORMAT_VERSION,
        "n_rows": profile.n_rows,
        "columns": [asdict(spec) for spec in profile.columns],
        "settings": settings,
        "numerical": numerical,
        "categorical": categorical,
        "vocabularies": {k: sorted(v) for k, v in profile.vocabularies.items()},
        "thresholds": thresholds,
    }
    arrays["header"] = encode_header(header)
    return npz_bytes(arrays)


def load(data: bytes) -> ReferenceProfile:
    """A profile from ``dump``'s bytes; unknown versions are refused."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
        header: dict[str, Any] = json.loads(arrays["header"].tobytes().decode("utf-8"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise ValueError(f"profile bytes: expected a reference profile archive ({exc})") from exc
    if header.get("version") != FORMAT_VERSION:
        raise ValueError(
            f"profile format version: expected {FORMAT_VERSION}, got: {header.get('version')!r}"
        )
    columns = tuple(
        ColumnSpec(c["name"], c["kind"], tuple(c["methods"])) for c in header["columns"]
    )
    profile = ReferenceProfile(columns, DriftSettings(**header["settings"]), header["n_rows"])
    for i, entry in enumerate(header["numerical"]):
        profile.numerical[entry["name"]] = NumericalProfile(
            sorted_values=arrays[f"n{i}_values"],
            missing=entry["missing"],
            std=entry["std"],
            edges=arrays[f"n{i}_edges"],
            fine_edges=arrays[f"n{i}_fine"],
        )
    for i, entry in enumerate(header["categorical"]):
        profile.categorical[entry["name"]] = CategoricalProfile(
            tuple(entry["categories"]), arrays[f"c{i}_counts"], entry["missing"]
        )
    profile.vocabularies = {k: frozenset(v) for k, v in header["vocabularies"].items()}
    for column, method, size, value in header["thresholds"]:
        profile.thresholds[(column, method, int(size))] = float(value)
    return profile
