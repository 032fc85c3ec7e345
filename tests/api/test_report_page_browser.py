"""The run report page in a real headless browser (Debian's chromium), served by a real
``monitor run`` on loopback: the DOM the browser built has a change chart per comparison
and a trend line per metric, the console reports no Content-Security-Policy violation,
and the screenshot shows the page's colours, which only its own style (admitted by hash)
can give the SVG lines.

A tampered copy of the same page is opened next to it as the control: its style is
refused, the console says so and the coloured lines are gone, so the checks can fail.
The browser reaches nothing but loopback: every other host name resolves to nothing.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from monitor.records import CaseResult, MetricValue, RunStatus
from monitor.store import Store
from tests.servers import MonitorProcess, deadline, find_tool
from tests.streams.test_html_report import parse

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 22, 12, tzinfo=UTC)
# The page's colours (monitor/gate/html.py): the tolerance line and the intervals.
RED, BLUE = (0xCF, 0x22, 0x2E), (0x09, 0x69, 0xDA)
CSP_VIOLATION = "Content Security Policy"


def seed(store: Store) -> int:
    """Five runs of ``qa`` on ``prod``; the fourth is the baseline, the fifth (returned)
    fell from 98 to 60 of 100 cases right."""
    ids = []
    for correct in (96, 99, 97, 98, 60):
        run_id = store.runs.create_run(
            suite="qa",
            model="prod",
            trigger="schedule",
            dataset_sha256="d" * 64,
            config_hash="c",
            at=T0,
        )
        cases = [
            CaseResult(
                f"c{i}",
                {"question": f"q{i}"},
                "a",
                prediction="the answer is a" if i < correct else "I do not know the answer",
                scores={"exact-match": float(i < correct), "f1-score": float(i < correct)},
            )
            for i in range(100)
        ]
        share = correct / 100
        metrics = [
            MetricValue("exact-match", share, share - 0.04, min(share + 0.04, 1.0), 100),
            MetricValue("f1-score", share, share - 0.03, min(share + 0.03, 1.0), 100),
        ]
        store.runs.finish_run(
            run_id, status=RunStatus.SUCCEEDED, at=T0 + timedelta(1), cases=cases, metrics=metrics
        )
        ids.append(run_id)
    store.verdicts.promote_baseline(ids[3], by="test", reason="v1", at=T0 + timedelta(2))
    return ids[4]


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """A ``monitor run`` over a seeded store, with no schedule; yields its URL and the
    run to report."""
    home = tmp_path_factory.mktemp("report-page")
    dataset = home / "qa.jsonl"
    dataset.write_text(
        "".join(
            json.dumps({"id": f"c{i}", "question": f"q{i}", "answer": "a"}) + "\n"
            for i in range(100)
        )
    )
    (home / "config.toml").write_text(
        f"""
[server]
port = 0

[store]
data_dir = "{home / "data"}"

[[models]]
name = "prod"
adapter = "openai"
url = "http://127.0.0.1:9/v1"
model = "good"
prompt = "{{{{question}}}}"

[[suites]]
name = "qa"
dataset = "{dataset}"
task = "text"
expected = "answer"
metrics = ["exact-match", "f1-score"]
models = ["prod"]
"""
    )
    store = Store(f"sqlite:///{home / 'data' / 'monitor.db'}")
    try:
        store.upgrade()
        run_id = seed(store)
    finally:
        store.close()
    process = MonitorProcess("run", "-c", str(home / "config.toml"))
    try:
        port = process.wait_for_line(r"HTTP API on http://127\.0\.0\.1:(\d+)").group(1)
        yield f"http://127.0.0.1:{port}", run_id
    finally:
        process.stop()


@dataclass
class Seen:
    dom: str
    console: str
    screenshot: Image.Image


def chromium() -> str:
    path = find_tool("chromium")
    if path is None:
        pytest.skip("chromium is not installed (Debian package chromium)")
    return path


@contextlib.contextmanager
def browser(binary: str, url: str, where: Path) -> Iterator[Callable[[], Seen]]:
    """Headless chromium dumping the DOM it built and taking a screenshot of ``url`` (the
    console goes to stderr), started at once so that two run side by side; yields a
    function that waits for what it saw. A profile of its own; no host but loopback
    resolves. Killed on the way out if it has not finished."""
    where.mkdir()
    process = subprocess.Popen(
        [
            binary,
            "--headless",
            "--no-sandbox",  # CI runs as root in a container
            "--disable-gpu",
            f"--user-data-dir={where / 'profile'}",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1200,1800",
            f"--screenshot={where / 'page.png'}",
            "--dump-dom",
            url,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=where,
    )

    def seen() -> Seen:
        dom, console = process.communicate(timeout=deadline(60))
        assert process.returncode == 0, console[-2000:]
        return Seen(dom, console, Image.open(where / "page.png").convert("RGB"))

    try:
        yield seen
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def pixels_near(image: Image.Image, colour: tuple[int, int, int]) -> int:
    """How many pixels of ``image`` are within a small distance of ``colour``."""
    pixels = np.asarray(image, dtype=np.int16)
    return int((np.abs(pixels - np.array(colour)).max(axis=2) <= 12).sum())


def test_the_report_page_in_a_headless_browser(daemon: tuple[str, int], tmp_path: Path) -> None:
    binary = chromium()
    url, run_id = daemon
    page_url = f"{url}/v1/runs/{run_id}/report.html"
    served = httpx.get(page_url, timeout=deadline(30))
    assert served.status_code == 200, served.text
    assert "default-src 'none'" in served.headers["content-security-policy"]
    # The control: the same page with a style its policy does not admit.
    tampered = tmp_path / "tampered.html"
    tampered.write_text(served.text.replace("<style>", "<style>b{}", 1))
    with (
        browser(binary, page_url, tmp_path / "page") as page_browser,
        browser(binary, tampered.as_uri(), tmp_path / "control") as control_browser,
    ):
        page, control = page_browser(), control_browser()

    dom = parse(page.dom)
    svgs = [dict(a) for tag, a in dom.tags if tag == "svg"]
    charts = [s for s in svgs if s.get("class") == "change-chart"]
    trends = [s for s in svgs if s.get("class") == "trend"]
    assert [c["data-outcome"] for c in charts] == ["regressed", "regressed"]
    assert [(t["data-metric"], t["data-points"]) for t in trends] == [
        ("exact-match", "5"),
        ("f1-score", "5"),
    ]
    tags = [tag for tag, _ in dom.tags]
    assert tags.count("polyline") == 2 and tags.count("polygon") == 2
    assert "Regressed: qa on prod" in "".join(dom.text)
    assert "<ins>" in page.dom  # the word diff of the changed answers

    assert CSP_VIOLATION not in page.console
    assert CSP_VIOLATION in control.console
    assert page.screenshot.size == control.screenshot.size == (1200, 1800)
    # Red tolerance lines and blue intervals and trend lines, drawn by the page's style.
    assert pixels_near(page.screenshot, RED) > 200
    assert pixels_near(page.screenshot, BLUE) > 2000
    assert pixels_near(control.screenshot, BLUE) < 50
