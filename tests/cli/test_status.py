"""``monitor status``: live replicas and the leader, queued and leased runs and windows."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from monitor.cli import cli
from monitor.store import Store
from monitor.store.leases import Replica
from monitor.store.window_leases import DueWindow


def test_status_lists_live_replicas_the_leader_and_the_queue(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'monitor.db'}"
    config = tmp_path / "config.toml"
    config.write_text(f'[store]\nurl = "{url}"\nstale_after = "1m"\n')
    now = datetime.now(UTC)
    with Store(url) as store:
        store.upgrade()
        queue = store.queue
        queue.announce(Replica("a:1", "a", 1, "9.9", now, now, leader=True))
        queue.announce(Replica("b:2", "b", 2, "9.9", now, now, leader=False))
        old = now - timedelta(hours=1)
        queue.announce(Replica("dead:3", "dead", 3, "9.8", old, old, leader=True))
        for second in (0, 2):
            queue.enqueue_slot(
                suite="qa",
                model="prod",
                slot_at=now + timedelta(seconds=second),
                config_hash="h",
                at=now,
                only_if_idle=False,
            )
        (claimed,) = queue.claim(owner="b:2", at=now, limit=5)
        due = [DueWindow("wine", f"rows:{i * 100}-{i * 100 + 100}", i * 100) for i in range(3)]
        store.windows.enqueue([*due, DueWindow("beer", "rows:0-100", 0)], at=now)
        store.windows.claim(owner="a:1", at=now, limit=1, streams=["wine"])

    shown = CliRunner().invoke(cli, ["status", "-c", str(config)])
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert lines[0] == "leader: a:1"
    assert "replicas (2 seen within stale_after):" in lines
    assert not any("dead:3" in line for line in lines)  # not seen for an hour
    assert "queued runs: 1" in lines
    assert any(f"run {claimed.id}  qa x prod  queued  by b:2" in line for line in lines)
    assert "queued windows: 3 (beer 1, wine 2)" in lines
    assert "leased windows: 1" in lines
    assert any("stream wine  window rows:0-100  by a:1" in line for line in lines)

    as_json = CliRunner().invoke(cli, ["status", "-c", str(config), "--json"])
    document = json.loads(as_json.output)
    assert document["leader"] == "a:1" and document["queued"] == 1
    assert [r["name"] for r in document["replicas"]] == ["a:1", "b:2"]
    assert [(r["run"], r["owner"]) for r in document["leased"]] == [(claimed.id, "b:2")]
    assert document["queued_windows"] == 3
    assert [(w["stream"], w["window"], w["owner"]) for w in document["leased_windows"]] == [
        ("wine", "rows:0-100", "a:1")
    ]
