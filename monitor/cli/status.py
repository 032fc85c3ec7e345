"""``monitor status``: the replicas using the store, which one leads, and the work queue
(queued runs and stream windows, leased ones with their owner and heartbeat age)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import click

from monitor.cli.common import EXIT_STARTUP, config_option, fail, load, ready_store
from monitor.errors import MonitorError


@click.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead.")
def status(config_path: Path, as_json: bool) -> None:
    """Replicas, the leader, queued and leased work of the configured store."""
    config = load(config_path)
    store = ready_store(config)
    now = datetime.now(UTC)
    alive_since = now - config.store.stale_after
    try:
        queue = store.queue
        replicas = queue.replicas(seen_after=alive_since)
        queued = queue.queued_count()
        leases = queue.leases()
        windows = store.windows.counts()
        window_leases = store.windows.leases()
    except MonitorError as exc:
        fail(EXIT_STARTUP, str(exc))
    finally:
        store.close()
    leader = next((r.name for r in replicas if r.leader), None)
    if as_json:
        document = {
            "leader": leader,
            "replicas": [
                {
                    "name": r.name,
                    "version": r.version,
                    "leader": r.leader,
                    "started_at": r.started_at.isoformat(),
                    "seen_at": r.seen_at.isoformat(),
                }
                for r in replicas
            ],
            "queued": queued,
            "leased": [
                {
                    "run": lease.id,
                    "suite": lease.suite,
                    "model": lease.model,
                    "status": lease.status.value,
                    "owner": lease.owner,
                    "heartbeat_at": lease.heartbeat_at.isoformat() if lease.heartbeat_at else None,
                }
                for lease in leases
            ],
            "queued_windows": sum(c.queued for c in windows),
            "leased_windows": [
                {
                    "stream": lease.stream,
                    "window": lease.key,
                    "owner": lease.owner,
                    "heartbeat_at": lease.heartbeat_at.isoformat() if lease.heartbeat_at else None,
                }
                for lease in window_leases
            ],
        }
        click.echo(json.dumps(document, indent=2))
        return
    click.echo(f"leader: {leader or 'none (no replica holds the scheduling lock)'}")
    click.echo(f"replicas ({len(replicas)} seen within stale_after):")
    for replica in replicas:
        role = "leader" if replica.leader else "follower"
        click.echo(
            f"  {replica.name}  {role}  version {replica.version}"
            f"  up since {replica.started_at:%Y-%m-%d %H:%M:%S}Z"
            f"  seen {_ago(now, replica.seen_at)} ago"
        )
    click.echo(f"queued runs: {queued}")
    click.echo(f"leased runs: {len(leases)}")
    for lease in leases:
        beat = _ago(now, lease.heartbeat_at) + " ago" if lease.heartbeat_at else "never"
        click.echo(
            f"  run {lease.id}  {lease.suite} x {lease.model}  {lease.status.value}"
            f"  by {lease.owner}  heartbeat {beat}"
        )
    queued_windows = ", ".join(f"{c.stream} {c.queued}" for c in windows if c.queued)
    click.echo(
        f"queued windows: {sum(c.queued for c in windows)}"
        + (f" ({queued_windows})" if queued_windows else "")
    )
    click.echo(f"leased windows: {len(window_leases)}")
    for held in window_leases:
        beat = _ago(now, held.heartbeat_at) + " ago" if held.heartbeat_at else "never"
        click.echo(f"  stream {held.stream}  window {held.key}  by {held.owner}  heartbeat {beat}")


def _ago(now: datetime, at: datetime) -> str:
    return f"{max(0.0, (now - at).total_seconds()):.1f}s"
