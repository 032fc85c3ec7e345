"""``monitor demo``: the demo model and the daemon in one event loop, nothing else needed.

The demo's configuration goes through the same validation as a user's file, so what the
demo shows is exactly what ``monitor run`` does.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from importlib.resources import as_file
from pathlib import Path

from pydantic import SecretStr

from monitor.config import Config, parse_config
from monitor.demo import traffic
from monitor.demo.alerting import alerts_table
from monitor.demo.dataset import bundled_test_set
from monitor.demo.model import DEFAULT_DEGRADE_RAMP, DemoModel
from monitor.demo.receiver import DemoReceiver, serve_receiver
from monitor.demo.server import serve_demo_model
from monitor.durations import format_duration

MODEL = "wine-classifier"
SUITE = "wine-holdout"
# Per 1000 tokens: about a cent per run of the 60-case suite.
DEMO_PRICE = {"prompt": 0.01, "completion": 0.03, "per_tokens": 1000, "currency": "USD"}


@dataclass(frozen=True, slots=True)
class DemoUrls:
    """Where the running demo listens: the daemon's API, the model, the alert receiver."""

    api: str
    model: str
    receiver: str


def demo_config(
    model_url: str,
    *,
    dataset: Path,
    host: str,
    port: int,
    data_dir: Path,
    every: timedelta,
    token: str,
    receiver_url: str,
    receiver_secret: str,
) -> Config:
    """The demo's configuration: one model, one suite on a short schedule, one drift
    stream fed by the demo's own traffic, SQLite, and alert rules whose notifications go
    to the demo receiver at ``receiver_url`` (signed with ``receiver_secret``). ``token``
    lets that traffic in."""
    raw = {
        "server": {
            "host": host,
            "port": port,
            "shutdown_grace": "5s",
            "tokens": [{"name": "demo-traffic", "token": token, "scopes": ["write"]}],
            # The token only lets the demo's own traffic in; the URLs it prints stay open.
            "open_reads": True,
        },
        "store": {"data_dir": str(data_dir)},
        "models": [
            {
                "name": MODEL,
                "adapter": "http",
                "url": f"{model_url}/predict",
                "body": {"features": "{{features}}"},
                "prediction": "prediction",
                "timeout": "5s",
                "concurrency": 8,
                # The demo model reports a metered API's usage; a made-up price turns it
                # into a cost, so the token and cost metrics have something to show.
                "prompt_tokens": "usage.prompt_tokens",
                "completion_tokens": "usage.completion_tokens",
                "price": DEMO_PRICE,
            }
        ],
        "suites": [
            {
                "name": SUITE,
                "dataset": str(dataset),
                "task": "classification",
                "id": "id",
                "expected": "label",
                "inputs": ["features"],
                "metrics": ["accuracy"],
                # Each case's region: the run's fairness over it, as the stream's.
                "metadata": ["region"],
                "fairness": {"groups": "region", "positive": "class_0"},
                "models": [MODEL],
                "baseline": "auto",
                "schedule": {"every": format_duration(every), "run_at_start": True},
            }
        ],
        # Judged as often as the suite runs, at most every 5 s: a compressed demo
        # (--every 2s) sees its drift as soon as a window fills.
        "streams": [
            traffic.stream_table(
                data_dir / "demo-reference.csv",
                every=format_duration(min(every, timedelta(seconds=5))),
            )
        ],
        "alerts": alerts_table(receiver_url, receiver_secret),
    }
    return parse_config(raw, base_dir=Path.cwd(), environ={}, source="demo")


async def run_demo(
    *,
    host: str,
    port: int,
    data_dir: Path,
    every: timedelta,
    degrade_after: timedelta | None,
    degrade_ramp: timedelta = DEFAULT_DEGRADE_RAMP,
    recover_after: timedelta | None = None,
    on_ready: Callable[[DemoUrls], None] | None = None,
) -> None:
    """Serve the demo model and the alert receiver on free loopback ports and run the
    daemon against them until SIGINT/SIGTERM. ``on_ready(urls)`` is called once all
    listen; the degradation schedule counts from then."""
    from monitor.daemon.lifecycle import Daemon

    model = DemoModel(
        degrade_after=degrade_after, degrade_ramp=degrade_ramp, recover_after=recover_after
    )
    token = secrets.token_urlsafe(24)
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    receiver = DemoReceiver(SecretStr(secret))
    await asyncio.to_thread(traffic.write_reference, data_dir / "demo-reference.csv", model)
    async with (
        await serve_demo_model(model, port=0) as model_server,
        await serve_receiver(receiver) as receiver_server,
    ):
        with as_file(bundled_test_set()) as dataset:
            config = demo_config(
                model_server.url,
                dataset=dataset,
                host=host,
                port=port,
                data_dir=data_dir,
                every=every,
                token=token,
                receiver_url=f"{receiver_server.url}/alerts",
                receiver_secret=secret,
            )
            daemon = Daemon(config)
            started = asyncio.Event()
            serving = asyncio.create_task(daemon.serve(started=started))
            waiting = asyncio.create_task(started.wait())
            await asyncio.wait([serving, waiting], return_when=asyncio.FIRST_COMPLETED)
            waiting.cancel()
            shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
            api = f"http://{shown}:{daemon.port}" if started.is_set() else ""
            if api:
                model.restart_clock()
                if on_ready is not None:
                    on_ready(DemoUrls(api, model_server.url, f"{receiver_server.url}/alerts"))
            sending = asyncio.create_task(traffic.send_traffic(api, token, model)) if api else None
            try:
                await serving
            finally:
                if sending is not None:
                    sending.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await sending
