"""Production traffic for the demo: what the wine model "sees", sent to a drift stream.

Wines are drawn from the dataset scikit-learn ships, with a little noise, classified by
the demo model and posted to the daemon's ingest API. While the model degrades, the
incoming wines shift too (more alcohol, malic acid and proline, deeper colour, fewer
flavanoids: five of the stream's eight drift columns, more than the default
``drift_share`` of 0.5 needs to call the dataset drifted), so the drift dashboard shows the
same story as the accuracy falling in the scheduled evaluations. Each wine's true class is
posted a little later (``POST .../labels``, a few batches behind), as production labels
are, so the stream's windows get a realized accuracy: provisional, then final, and judged
worse than the reference's once the model degrades (the ``performance`` rule fires). Each wine also
carries the answer of a shadow model that never degrades (``shadow_prediction``), so the
windows' shadow comparison shows the two models drifting apart. Each wine comes from a
``region`` drawn at random (the same share everywhere, in the reference too): the
stream's segment and fairness column, so the windows get accuracy per region, its largest
gap between regions, and the demographic parity and equalized odds of predicting
``class_0`` across them.
"""

from __future__ import annotations

import asyncio
import csv
import itertools
import logging
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt

from monitor.demo.dataset import REGIONS, load_wine_data
from monitor.demo.model import DemoModel

logger = logging.getLogger(__name__)

STREAM = "wine-traffic"
# Column index in load_wine's feature order -> the stream's column name.
FEATURES = {0: "alcohol", 1: "malic_acid", 6: "flavanoids", 9: "color_intensity", 12: "proline"}
# What degradation shifts, in standard deviations at level 1.0 (the demo's worst is 0.6):
# every feature, five of the eight drift columns (five features, the region, the
# prediction and the label), so that the dataset drifts with room to spare (the default
# drift_share of 0.5 is four of eight: one column judged undrifted by chance in a window
# does not cost the story its drift). The region never shifts: its segments stay
# comparable with the reference's. Steep enough that the windows pass the drift threshold
# within a few windows of each other, instead of flapping around it for a minute of a
# slow ramp.
SHIFT = {0: 2.5, 1: 2.5, 6: -2.5, 9: 2.5, 12: 2.5}


def stream_table(reference: Path, *, every: str = "5s") -> dict[str, Any]:
    """The demo stream's ``[[streams]]`` table: windows of 200 rows, judged ``every``."""
    return {
        "name": STREAM,
        "timestamp": "ts",
        "numerical": list(FEATURES.values()),
        "categorical": ["region"],
        "prediction": "prediction",
        "prediction_kind": "categorical",
        "shadow_prediction": "shadow_prediction",
        "record_id": "id",
        "label": "label",
        "label_kind": "categorical",
        "performance": {"label_delay": "10s", "metrics": ["accuracy"]},
        "segments": ["region"],
        "fairness": {"groups": "region", "positive": "class_0"},
        "reference": {"file": str(reference)},
        "window": {"rows": 200, "min_rows": 100},
        "schedule": {"every": every},
    }


REFERENCE_ROWS = 20_000
"""Enough that the reference's accuracy is the healthy model's to about 0.1 point: with
2,000 rows, the fixed seed's reference came out at 0.995 where the healthy model's
traffic averages 0.989, and windows of healthy traffic were judged worse than it in
about one of five windows instead of at most one in twenty."""


def write_reference(path: Path, model: DemoModel, *, seed: int = 0) -> None:
    """Healthy traffic as the reference: noisy wines and the model's answers."""
    rows = sample_rows(model, np.random.default_rng(seed), REFERENCE_ROWS, level=0.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def sample_rows(
    model: DemoModel, rng: np.random.Generator, n: int, *, level: float
) -> list[dict[str, Any]]:
    """``n`` wines with 5% noise, shifted by ``level``, classified by ``model``, each with
    a record id, a region and its true class."""
    data = load_wine_data()
    drawn = rng.integers(0, len(data.x), n)
    regions = rng.integers(0, len(REGIONS), n)
    x: npt.NDArray[np.float64] = data.x[drawn].copy()
    std = data.x.std(axis=0)
    x += rng.normal(0.0, 0.05, x.shape) * std
    for column, sds in SHIFT.items():
        x[:, column] += level * sds * std[column]
    now = datetime.now(UTC).isoformat()
    healthy = model.predict_healthy_many(x)
    rows = []
    for features, index, region, shadow in zip(x, drawn, regions, healthy, strict=True):
        label = shadow if level == 0.0 else model.predict(features.tolist())[0]
        row: dict[str, Any] = {"ts": now, "id": f"{_RUN}-{next(_IDS)}"}
        row.update({name: round(float(features[i]), 4) for i, name in FEATURES.items()})
        row["region"] = REGIONS[int(region)]
        row["prediction"] = label
        row["shadow_prediction"] = shadow
        row["label"] = data.target_names[int(data.y[index])]
        rows.append(row)
    return rows


_RUN = secrets.token_hex(4)  # record ids stay unique across demo restarts on one store
_IDS = itertools.count()


async def send_traffic(
    api: str,
    token: str,
    model: DemoModel,
    *,
    every: float = 0.5,
    batch: int = 25,
    label_lag: int = 4,
) -> None:
    """Post a batch of traffic every ``every`` seconds until cancelled, and the true
    classes of the batch sent ``label_lag`` batches earlier. A refused batch is logged and
    the next one tried: the demo keeps going whatever the API says."""
    rng = np.random.default_rng()
    headers = {"Authorization": f"Bearer {token}"}
    base = f"{api}/v1/streams/{STREAM}"
    waiting: list[list[dict[str, Any]]] = []
    clock = asyncio.get_running_loop().time
    due = clock()
    async with httpx.AsyncClient(headers=headers, timeout=10) as http:
        while True:
            rows = sample_rows(model, rng, batch, level=model.level())
            waiting.append([{"id": row["id"], "label": row.pop("label")} for row in rows])
            await _post(http, f"{base}/records", rows)
            if len(waiting) > label_lag:
                await _post(http, f"{base}/labels", waiting.pop(0))
            # A steady rate, whatever posting took: a busy machine must not thin out the
            # traffic (and the windows of the story with it); a long stall is not made up.
            due = max(due + every, clock() - 2 * every)
            await asyncio.sleep(max(0.0, due - clock()))


async def _post(http: httpx.AsyncClient, url: str, body: list[dict[str, Any]]) -> None:
    try:
        answer = await http.post(url, json=body)
        if answer.status_code >= 400:
            logger.warning("demo traffic refused: HTTP %d", answer.status_code)
    except httpx.TransportError as exc:
        logger.warning("demo traffic not sent: %s", type(exc).__name__)
