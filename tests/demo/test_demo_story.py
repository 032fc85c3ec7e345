"""``monitor demo`` tells the whole story, with its durations compressed from minutes to
seconds: the verdict turns regressed, the traffic's dataset drift crosses its threshold,
the stream's realized accuracy (from labels sent two seconds late) is judged worse (in
its reports and in ``/metrics``: below the reference series, the worse series 1), a
regression, a drift and a performance alert reach the demo receiver through the outbox and
the signed webhook sink, and all three resolve once the model recovers. Then a SIGINT
during a run stops the demo cleanly: exit 0, no traceback (a ``CancelledError`` from the
run's last flush was once logged there)."""

from __future__ import annotations

import re
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitor.demo.alerting import RULES
from monitor.records import RunStatus
from monitor.store import Store
from tests.servers import MonitorProcess, deadline, wait_for

pytestmark = pytest.mark.integration

# README's "What you see" in seconds: degrade after 3 s, at its worst 1 s later, healthy
# again 24 s after the start; the suite runs every 2 s. The traffic sends about 50 rows a
# second (fewer on a loaded machine) and a window is 200 rows, so the 21 degraded seconds
# hold the three windows in a row that the performance rule's ``for = 3`` waits for, and
# the two of the drift rule, even at half the rate.
STORY = ("--every", "2s", "--degrade-after", "3s", "--degrade-ramp", "1s")
STORY += ("--recover-after", "24s")
REGRESSION, DRIFT, PERFORMANCE = (rule["name"] for rule in RULES)


def get(url: str, **params: Any) -> Any:
    return httpx.get(url, params=params, timeout=deadline(10)).json()


def delivered(receiver: str) -> dict[str, list[str]]:
    """Each rule's notifications the receiver verified, in order: firing, resolved."""
    seen: dict[str, list[str]] = {}
    for payload in get(receiver)["notifications"]:
        seen.setdefault(payload["alert"]["rule"], []).append(payload["alert"]["status"])
    return seen


def test_demo_tells_the_whole_story_and_stops_cleanly(tmp_path: Path) -> None:
    demo = MonitorProcess("demo", "--port", "0", "--data-dir", str(tmp_path / "data"), *STORY)
    try:
        api = demo.wait_for_line(r"verdicts:\s+(http://\S+)/v1/verdicts", timeout=60).group(1)
        receiver = demo.wait_for_line(r"delivered to (http://\S+/alerts)\)").group(1)

        def verdicts() -> list[str]:
            return [v["outcome"] for v in get(f"{api}/v1/verdicts", limit=200)["verdicts"]]

        wait_for(lambda: "regressed" in verdicts(), timeout=60, what="a regressed verdict")

        def drifted() -> list[dict[str, Any]]:
            reports = get(f"{api}/v1/streams/wine-traffic/reports", limit=100)["reports"]
            return [r for r in reports if r["dataset_drifted"]]

        (report, *_) = wait_for(drifted, timeout=60, what="a window with dataset drift")
        assert report["drift_share"] >= 0.5

        def worse() -> list[dict[str, Any]]:
            reports = get(f"{api}/v1/streams/wine-traffic/reports", limit=100)["reports"]
            return [r for r in reports if (r.get("performance") or {}).get("worse")]

        wait_for(worse, timeout=60, what="a window whose realized accuracy is judged worse")

        def dropped_in_metrics() -> dict[str, float] | None:
            """The stream's accuracy series of one scrape, if judged worse and below the
            reference: what a Prometheus scraping the demo records while it degrades."""
            text = httpx.get(f"{api}/metrics", timeout=deadline(10)).text
            series = {
                sample.name: sample.value
                for family in text_string_to_metric_families(text)
                for sample in family.samples
                if sample.labels == {"stream": "wine-traffic", "metric": "accuracy"}
            }
            accuracy = series.get("monitor_stream_performance")
            reference = series.get("monitor_stream_performance_reference")
            judged = series.get("monitor_stream_performance_worse") == 1
            low = accuracy is not None and reference is not None and accuracy < reference
            return series if judged and low else None

        wait_for(dropped_in_metrics, timeout=30, what="/metrics to show the accuracy drop")
        every_rule = {rule: ["firing", "resolved"] for rule in (REGRESSION, DRIFT, PERFORMANCE)}
        try:
            wait_for(
                lambda: delivered(receiver) == every_rule,
                timeout=90,
                what="every alert fired and resolved at the receiver",
            )
        except AssertionError as timeout:  # say what did arrive (a flap, or one missing)
            raise AssertionError(f"{timeout}: {delivered(receiver)}\n{demo.output()}") from None
        for rule in (REGRESSION, DRIFT, PERFORMANCE):  # what a human reads in the demo's output
            for status in ("FIRING", "RESOLVED"):
                demo.wait_for_line(rf"demo receiver got an alert: {status} {rule} ")
        states = {a["rule"]: a["state"] for a in get(f"{api}/v1/alerts")["alerts"]}
        assert states == dict.fromkeys(every_rule, "resolved")
        assert verdicts()[0] == "pass"  # the newest: the model recovered

        # Ctrl-C in the middle of a run (a run takes about a second; they start every 2 s).
        runs = len(re.findall(r"run \d+ started", demo.output()))
        wait_for(
            lambda: len(re.findall(r"run \d+ started", demo.output())) > runs,
            timeout=30,
            what="the next run to start",
        )
        demo.proc.send_signal(signal.SIGINT)
        assert demo.proc.wait(timeout=deadline(30)) == 0
    finally:
        demo.stop()
    output = demo.output()
    assert "Traceback" not in output and "CancelledError" not in output, output[-4000:]
    assert "refused a notification" not in output
    # The run in flight had its grace (5 s): it finished (it needs about 1 s), or, on a
    # machine too slow for that, was interrupted no sooner than the grace allowed.
    store = Store(f"sqlite:///{tmp_path / 'data' / 'monitor.db'}")
    try:
        (last, *_) = store.runs.list_runs(limit=1)
    finally:
        store.close()
    assert last.status in (RunStatus.SUCCEEDED, RunStatus.INTERRUPTED), last
    if last.status is RunStatus.INTERRUPTED:
        assert last.started_at is not None and last.finished_at is not None
        assert (last.finished_at - last.started_at).total_seconds() >= 5, last
