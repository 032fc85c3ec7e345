"""``monitor drift``: compare current data with a stream's reference once, in the foreground."""

from __future__ import annotations

from pathlib import Path

import click

from monitor.cli.common import EXIT_STARTUP, EXIT_USAGE, config_option, fail, load, ready_store
from monitor.errors import MonitorError, StoreError


@click.command()
@config_option
@click.option("--stream", "stream_name", required=True, help="The [[streams]] entry to use.")
@click.option(
    "--reference",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="Reference data (Parquet, CSV, JSONL); default: the stream's reference.",
)
@click.option(
    "--current",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="Current data; default: the stream's latest complete window.",
)
@click.option("--html", type=click.Path(path_type=Path), help="Write the HTML report here.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def drift(
    config_path: Path,
    stream_name: str,
    reference: Path | None,
    current: Path | None,
    html: Path | None,
    as_json: bool,
) -> None:
    """Compare current data with a reference once and print the drift per column."""
    config = load(config_path)
    stream = config.stream(stream_name)
    if stream is None:
        known = ", ".join(s.name for s in config.streams) or "none"
        fail(EXIT_USAGE, f"--stream: unknown stream {stream_name!r}; defined: {known}")
    if html is not None and current is None:
        fail(EXIT_USAGE, "--html needs --current")
    from monitor.streams import oneoff

    ref = stream.reference
    from_store = current is None or (reference is None and ref.file is None and ref.query is None)
    # migrated and answering, or exit 3 saying what to run (not a raw "no such table")
    store = ready_store(config) if from_store else None
    try:
        result = oneoff.compare_files(
            stream, reference=reference, current=current, store=store, html=html
        )
    except (MonitorError, ValueError, KeyError) as exc:
        # bad data is the caller's to fix (2); only the store failing is infrastructure (3)
        fail(EXIT_STARTUP if isinstance(exc, StoreError) else EXIT_USAGE, str(exc))
    finally:
        if store is not None:
            store.close()
    click.echo(oneoff.dumps(stream, result) if as_json else oneoff.format_table(stream, result))
