"""A hostile value ingested over the API reaches the daemon's HTML drift report as text."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

from monitor.daemon.lifecycle import Daemon
from tests.servers import deadline, until
from tests.streams.conftest import WRITE_TOKEN, MakeConfig, stream_table
from tests.streams.test_html_report import PAGE_TAGS, PAYLOADS, parse

AUTH = {"Authorization": f"Bearer {WRITE_TOKEN}"}


async def test_ingested_markup_is_served_inert(
    make_stream_config: MakeConfig, tmp_path: Path
) -> None:
    rng = np.random.default_rng(1)
    reference = {
        "ts": ["2024-04-01T00:00:00Z"] * 1000,
        "alcohol": rng.normal(10, 1, 1000),
        "acidity": rng.lognormal(0, 0.5, 1000),
        "region": rng.choice(["north", "south", "east"], 1000),
    }
    pa_csv.write_csv(pa.table(reference), tmp_path / "reference.csv")
    config = make_stream_config(
        stream_table(
            window={"rows": 200, "min_rows": 100},
            schedule={"every": "1s", "run_at_start": True},
            report={"html": True},
        )
    )
    config = config.model_copy(update={"server": config.server.model_copy(update={"port": 0})})
    records: list[dict[str, Any]] = [
        {
            "ts": "2024-05-01T12:00:00Z",
            "id": f"r{i}",
            "alcohol": float(rng.normal(10, 1)),
            "acidity": float(rng.lognormal(0, 0.5)),
            "region": PAYLOADS[i % len(PAYLOADS)],
        }
        for i in range(200)
    ]
    daemon = Daemon(config)
    started = asyncio.Event()
    serving = asyncio.create_task(daemon.serve(started=started))
    await asyncio.wait_for(started.wait(), timeout=deadline(30))
    try:
        base = f"http://127.0.0.1:{daemon.port}"
        async with httpx.AsyncClient(base_url=base, headers=AUTH) as http:
            stored = await http.post("/v1/streams/wine/records", json=records)
            assert stored.status_code == 201, stored.text

            async def report() -> list[dict[str, Any]]:
                found: list[dict[str, Any]] = (await http.get("/v1/streams/wine/reports")).json()[
                    "reports"
                ]
                return [r for r in found if r["html_url"]]

            (latest,) = await until(report, timeout=30, what="a drift report with a page")
            page = await http.get(latest["html_url"])
        assert page.status_code == 200
        assert page.headers["x-content-type-options"] == "nosniff"
        assert "default-src 'none'" in page.headers["content-security-policy"]
        parsed = parse(page.text)
        assert {tag for tag, _ in parsed.tags} <= PAGE_TAGS
        assert not any(name.startswith("on") for _, attrs in parsed.tags for name, _ in attrs)
        text = "".join(parsed.text)
        assert "region" in latest["drifted_columns"]  # every value is new: it drifted
        assert sum(p[:31] in text for p in PAYLOADS) >= 12
    finally:
        daemon.request_stop()
        await asyncio.wait_for(serving, timeout=deadline(30))
