"""``monitor alerts list|test|silence|dead-letters``: alerts in the store, a sample
notification to one sink, silences for the direct sinks, and what to do with
notifications that could not be delivered."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from monitor.cli.common import (
    EXIT_STARTUP,
    EXIT_USAGE,
    config_option,
    duration_option,
    echo_table,
    fail,
    load,
    ready_store,
)


@click.group()
def alerts() -> None:
    """Inspect alerts, send a test notification, silence direct sinks."""


@alerts.command("list")
@config_option
@click.option("--all", "show_all", is_flag=True, help="Include inactive and resolved alerts.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def list_alerts(config_path: Path, show_all: bool, as_json: bool) -> None:
    """List alerts (pending and firing; with --all, every state), newest first."""
    config = load(config_path)
    store = ready_store(config)
    try:
        states = store.alerts.alert_states()
        dead = store.alerts.outbox_stats().by_status.get("dead", 0)
    finally:
        store.close()
    shown = [s for s in states if show_all or s.phase in ("pending", "firing")]
    if as_json:
        for s in shown:
            click.echo(
                json.dumps(
                    {
                        "fingerprint": s.fingerprint,
                        "rule": s.rule,
                        "state": s.phase.value,
                        "severity": s.severity,
                        "labels": s.labels,
                        "summary": s.summary,
                        "updated_at": s.updated_at.isoformat(),
                    }
                )
            )
    else:
        echo_table(
            ("STATE", "SEVERITY", "UPDATED", "RULE", "SUMMARY"),
            (
                (
                    s.phase.value,
                    s.severity,
                    s.updated_at.strftime("%Y-%m-%d %H:%M:%S"),
                    s.rule,
                    s.summary,
                )
                for s in shown
            ),
        )
    if dead and not as_json:
        click.echo(
            f"{dead} notification(s) in the dead-letter state (monitor alerts dead-letters list)",
            err=True,
        )


@alerts.command("test")
@config_option
@click.option("--sink", "sink_name", required=True, help="Name of the sink to send to.")
def test_alert(config_path: Path, sink_name: str) -> None:
    """Send a sample alert to one sink now, and say whether it was accepted.

    An Alertmanager sink gets the sample resolved right away, so Alertmanager does not
    keep forwarding it to its receivers."""
    config = load(config_path)
    sink_config = config.alerts.sink(sink_name)
    if sink_config is None:
        known = ", ".join(s.name for s in config.alerts.sinks) or "none"
        fail(EXIT_USAGE, f"unknown sink {sink_name!r}; configured: {known}")
    import asyncio

    from monitor.notify.sending import send_test

    result = asyncio.run(send_test(sink_config, public_url=config.server.public_url))
    if not result.ok:
        fail(EXIT_STARTUP, f"test alert not delivered: {result.error}")
    resolved = " and resolved" if sink_config.kind == "alertmanager" else ""
    click.echo(f"test alert delivered to sink {sink_name!r}{resolved}")


@alerts.command("silence")
@config_option
@click.option("--match", "matchers", multiple=True, required=True, help="LABEL=VALUE (repeatable).")
@click.option("--for", "duration", required=True, help="How long, e.g. '2h'.")
@click.option("--comment", default="", help="Why (shown in GET /v1/alerts).")
@click.option("--by", "created_by", default=None, help="Who (default: $USER).")
def silence(
    config_path: Path,
    matchers: tuple[str, ...],
    duration: str,
    comment: str,
    created_by: str | None,
) -> None:
    """Silence webhook and Slack sinks for alerts whose labels match, for a while.

    Alerts still change state and show in the API; Alertmanager sinks are not affected
    (silence those in Alertmanager)."""
    config = load(config_path)
    length = duration_option("--for", duration)
    parsed: dict[str, str] = {}
    for matcher in matchers:
        key, sep, value = matcher.partition("=")
        if not sep or not key:
            raise click.BadParameter(
                f"expected LABEL=VALUE, got: {matcher!r}", param_hint="--match"
            )
        parsed[key.strip()] = value.strip()
    from monitor.clock import utc_now

    now = utc_now()
    store = ready_store(config)
    try:
        silence_id = store.alerts.add_silence(
            matchers=parsed,
            starts_at=now,
            ends_at=now + length,
            created_by=created_by or os.environ.get("USER", "unknown"),
            comment=comment,
        )
    finally:
        store.close()
    until = (now + length).strftime("%Y-%m-%d %H:%M:%S UTC")
    click.echo(
        f"silence {silence_id} until {until}: " + ", ".join(f"{k}={v}" for k, v in parsed.items())
    )


@alerts.group("dead-letters")
def dead_letters() -> None:
    """List, redrive or discard notifications that could not be delivered."""


@dead_letters.command("list")
@config_option
@click.option("--sink", default=None, help="Only this sink's dead letters.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def list_dead(config_path: Path, sink: str | None, as_json: bool) -> None:
    """List dead letters, newest first: a permanent failure, or still failing after
    alerts.delivery.max_age."""
    config = load(config_path)
    store = ready_store(config)
    try:
        dead = store.alerts.dead_letters(sink=sink, limit=1000)
    finally:
        store.close()
    if as_json:
        for m in dead:
            click.echo(json.dumps(_dead_json(m)))
        return
    echo_table(
        ("ID", "CREATED", "SINK", "EVENT", "RULE", "SEQUENCE", "ATTEMPTS", "LAST ERROR"),
        (
            (
                m.id,
                m.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                m.sink,
                m.event,
                m.payload.get("alert", {}).get("rule", "?"),
                m.sequence,
                m.attempts,
                m.last_error,
            )
            for m in dead
        ),
    )


def _dead_json(m: Any) -> dict[str, Any]:
    return {
        "id": m.id,
        "sink": m.sink,
        "fingerprint": m.fingerprint,
        "event": m.event,
        "sequence": m.sequence,
        "attempts": m.attempts,
        "created_at": m.created_at.isoformat(),
        "last_error": m.last_error,
    }


def _which(ids: tuple[str, ...], everything: bool) -> list[str] | None:
    if bool(ids) == everything:
        raise click.UsageError("give one or more --id, or --all")
    return list(ids) if ids else None


def _dead_letter_action(action: str) -> Any:
    verb = "redrive" if action == "redriven" else "discard"
    helps = {
        "redriven": "Queue dead letters again, due now, with a fresh max_age. One whose "
        "alert has a newer notification is superseded instead of sent.",
        "discarded": "Give up on dead letters for good (kept as 'discarded', no longer "
        "counted by monitor_alert_dead_letters).",
    }

    @dead_letters.command(verb, help=helps[action])
    @config_option
    @click.option("--id", "ids", multiple=True, help="A dead letter's id (repeatable).")
    @click.option("--all", "everything", is_flag=True, help="Every dead letter (of --sink).")
    @click.option("--sink", default=None, help="Only this sink's dead letters.")
    @click.option("--comment", default="", help="Why (recorded in the alert history).")
    @click.option("--by", "by", default=None, help="Who (default: $USER).")
    def command(
        config_path: Path,
        ids: tuple[str, ...],
        everything: bool,
        sink: str | None,
        comment: str,
        by: str | None,
    ) -> None:
        which = _which(ids, everything)
        from monitor.clock import utc_now

        config = load(config_path)
        store = ready_store(config)
        act = (
            store.alerts.redrive_dead_letters
            if action == "redriven"
            else store.alerts.discard_dead_letters
        )
        try:
            done = act(
                ids=which,
                sink=sink,
                at=utc_now(),
                by=by or os.environ.get("USER", "unknown"),
                comment=comment,
            )
        except LookupError as exc:
            fail(EXIT_USAGE, f"{exc}; nothing was {action}")
        finally:
            store.close()
        for m in done:
            click.echo(f"{action} {m.id} ({m.sink}, {m.event}, sequence {m.sequence})")
        click.echo(f"{len(done)} dead letter(s) {action}")

    return command


redrive = _dead_letter_action("redriven")
discard = _dead_letter_action("discarded")
