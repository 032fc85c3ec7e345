"""The wine data the demo model learns from and is evaluated on.

The demo needs a real, offline dataset: scikit-learn ships the UCI wine recognition data
(178 rows, 13 numerical features, 3 classes) inside the package, so ``load_wine`` needs no
download. A fixed, stratified split holds out :data:`TEST_SIZE` rows as the evaluation
suite. Those rows are committed as ``monitor/demo/data/wine-test.jsonl`` so the suite is a
plain file the daemon can hash and read like any user's suite; :func:`write_test_set`
regenerates it byte for byte and a test guards that the two never diverge.

One line per case::

    {"id": "wine-17", "features": [13 floats], "label": "class_0", "region": "south"}

The ``region`` (row index modulo the three :data:`REGIONS`, so it says nothing about the
wine) is the suite's fairness group, as it is the demo stream's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

import numpy as np
import numpy.typing as npt
from sklearn.datasets import load_wine
from sklearn.model_selection import train_test_split

N_FEATURES = 13
"""How many numbers one wine row has; every prediction request must send exactly these."""

TEST_SIZE = 60
"""How many rows are held out for evaluation (about a third of the 178)."""

SPLIT_SEED = 20240607
"""Seed of the held-out split. Changing it changes the committed suite file."""

REGIONS = ("north", "centre", "south")
"""Where a wine "comes from": the demo's segment and fairness groups."""

TEST_SET_RESOURCE = "wine-test.jsonl"
"""File name of the held-out suite inside the package's ``data`` directory."""


@dataclass(frozen=True, slots=True)
class WineData:
    """The whole wine dataset: features ``x`` (rows x 13), class indices ``y`` and the
    class names that index into."""

    x: npt.NDArray[np.float64]
    y: npt.NDArray[np.int64]
    target_names: tuple[str, ...]

    def row_id(self, index: int) -> str:
        """The stable case id of row ``index``, as used in the suite file."""
        return f"wine-{index}"


@dataclass(frozen=True, slots=True)
class WineCase:
    """One held-out evaluation case, as read from the suite file."""

    id: str
    features: tuple[float, ...]
    label: str


def load_wine_data() -> WineData:
    """Load the wine dataset bundled with scikit-learn (no network)."""
    bunch = load_wine()
    return WineData(
        x=np.asarray(bunch.data, dtype=np.float64),
        y=np.asarray(bunch.target, dtype=np.int64),
        target_names=tuple(str(name) for name in bunch.target_names),
    )


def held_out_indices(data: WineData) -> list[int]:
    """Row indices of the evaluation split: stratified by class, fixed seed, sorted."""
    indices = np.arange(len(data.y))
    _, test = train_test_split(
        indices, test_size=TEST_SIZE, stratify=data.y, random_state=SPLIT_SEED
    )
    return sorted(int(i) for i in test)


def render_test_set(data: WineData | None = None) -> str:
    """The exact text of the suite file: one JSON object per held-out row, ``\\n``-ended.

    Floats are written with ``repr`` precision (``json`` does this), so reading the file
    back gives the very values the model would see from ``load_wine``.
    """
    data = data if data is not None else load_wine_data()
    lines = [
        json.dumps(
            {
                "id": data.row_id(i),
                "features": [float(v) for v in data.x[i]],
                "label": data.target_names[int(data.y[i])],
                "region": REGIONS[i % len(REGIONS)],
            }
        )
        for i in held_out_indices(data)
    ]
    return "\n".join(lines) + "\n"


def write_test_set(path: Path | str) -> None:
    """Regenerate the held-out suite file at ``path`` (deterministic, byte for byte)."""
    Path(path).write_text(render_test_set(), encoding="utf-8", newline="\n")


def bundled_test_set() -> Traversable:
    """The suite file shipped inside the package. Use ``importlib.resources.as_file`` when
    a real filesystem path is needed (for example to put it in a suite config)."""
    return files("monitor.demo") / "data" / TEST_SET_RESOURCE


def parse_test_set(text: str) -> list[WineCase]:
    """Parse suite-file text into cases; raises ``ValueError`` naming the bad line."""
    cases: list[WineCase] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            cases.append(
                WineCase(
                    id=str(row["id"]),
                    features=tuple(float(v) for v in row["features"]),
                    label=str(row["label"]),
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{TEST_SET_RESOURCE}:{number}: malformed case: {exc}") from exc
    return cases


def read_test_set() -> list[WineCase]:
    """The held-out cases of the bundled suite file."""
    return parse_test_set(bundled_test_set().read_text(encoding="utf-8"))


def held_out_ids() -> frozenset[str]:
    """Ids of the bundled held-out cases: the rows the demo model must never train on."""
    return frozenset(case.id for case in read_test_set())
