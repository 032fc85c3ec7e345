"""``monitor audit export --since ... --format jsonl|csv``: the audit log (every review,
baseline promotion and silence: who, when, what, why), oldest first, for auditors and
spreadsheets (docs/verdicts.md)."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import click

from monitor.cli.common import config_option, load, ready_store
from monitor.clock import utc_now
from monitor.durations import parse_duration
from monitor.records import AUDIT_ACTIONS as ACTIONS
from monitor.records import AuditEntry

_PAGE = 1000
_COLUMNS = ("id", "at", "actor", "action", "target", "reason", "details")


@click.group()
def audit() -> None:
    """Read the append-only audit log."""


@audit.command("export")
@config_option
@click.option(
    "--since",
    default=None,
    help="From this time: ISO 8601 (UTC when no offset) or a duration ago, e.g. '7d'.",
)
@click.option("--until", default=None, help="Before this time (same forms as --since).")
@click.option(
    "--action",
    type=click.Choice(list(ACTIONS)),
    default=None,
    help="Only this action.",
)
@click.option(
    "--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True
)
@click.option(
    "--output", "-o", type=click.Path(path_type=Path), default=None, help="File (default: stdout)."
)
def export(
    config_path: Path,
    since: str | None,
    until: str | None,
    action: str | None,
    fmt: str,
    output: Path | None,
) -> None:
    """Write audit entries, oldest first, as JSON lines or CSV."""
    now = utc_now()
    start, end = _when("--since", since, now), _when("--until", until, now)
    if start is not None and end is not None and end <= start:
        raise click.BadParameter("must be after --since", param_hint="--until")
    store = ready_store(load(config_path))
    try:
        entries = _entries(store, start, end, action)
        if output is None:
            _write(sys.stdout, fmt, entries)
        else:
            with output.open("w", encoding="utf-8", newline="") as stream:
                _write(stream, fmt, entries)
    finally:
        store.close()


def _when(name: str, value: str | None, now: datetime) -> datetime | None:
    """``value`` as an aware UTC time: an ISO 8601 time, or a duration before ``now``."""
    if value is None:
        return None
    try:
        return now - parse_duration(value)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"expected an ISO 8601 time (2026-12-01T00:00:00Z) or a duration ('7d'), got {value!r}",
            param_hint=name,
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _entries(
    store: Any, since: datetime | None, until: datetime | None, action: str | None
) -> Iterator[AuditEntry]:
    """Every matching entry, oldest first, a page at a time (the log may be long)."""
    after = 0
    while True:
        page: list[AuditEntry] = store.audit.audit_entries(
            since=since, until=until, action=action, after_id=after, limit=_PAGE
        )
        yield from page
        if len(page) < _PAGE:
            return
        after = page[-1].id


def _row(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": entry.at.isoformat(),
        "actor": entry.actor,
        "action": entry.action,
        "target": entry.target,
        "reason": entry.reason,
        "details": entry.details,
    }


def _write(stream: IO[str], fmt: str, entries: Iterator[AuditEntry]) -> None:
    if fmt == "jsonl":
        for entry in entries:
            stream.write(json.dumps(_row(entry), sort_keys=False) + "\n")
        return
    writer = csv.DictWriter(stream, fieldnames=_COLUMNS)
    writer.writeheader()
    for entry in entries:
        row = _row(entry)
        row["details"] = json.dumps(row["details"], sort_keys=True)
        writer.writerow(row)
