"""A webhook receiver and a real Alertmanager down for far longer than the back-off cap
and than the old 8-attempt budget, while alerts fire and resolve: once back, each gets
every alert's latest state, in order per alert, under the same ids, nothing lost, no
stale ``firing`` after a resolution. Two workers on real PostgreSQL play two replicas.

``bench/outage.py`` runs the same scenario with a 10-minute outage."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.alerts.records import OutboxStatus
from tests.notify.outage import AM_BINARIES, FIRING, RESOLVED, run_outage
from tests.servers import find_tool, wait_for
from tests.store.conftest import _postgres_schema_url

pytestmark = pytest.mark.integration

OUTAGE_S = 30.0
# Back-off 0.2 s doubling to a 2 s cap: the old budget of 8 attempts lasted about 9 s.
OLD_BUDGET_ATTEMPTS = 8


@pytest.fixture
def postgres_url() -> Iterator[str]:
    yield from _postgres_schema_url()


async def test_receivers_down_for_an_outage_get_every_latest_state_in_order(
    postgres_url: str, tmp_path: Path
) -> None:
    binary = next((path for b in AM_BINARIES if (path := find_tool(b))), None)
    if binary is None:
        pytest.skip("Alertmanager is not installed (apt-get install prometheus-alertmanager)")
    outcome = await run_outage(postgres_url, tmp_path, binary, outage=OUTAGE_S, wait=wait_for)
    rows = outcome.outbox
    by_id = {m.id: m for m in rows}
    fp = outcome.fingerprints

    # Nothing dead: a long outage is transient.
    assert [m for m in rows if m.status is OutboxStatus.DEAD] == []
    # The rows queued first were retried well past the old attempt budget, and made it.
    longest = max(m.attempts for m in rows if m.status is OutboxStatus.DELIVERED)
    assert longest > OLD_BUDGET_ATTEMPTS + 1

    # Webhook: each id once (no crash here, so at-least-once means exactly once), each
    # alert's sequence strictly increasing, its last word its current state.
    received = outcome.hook.received
    ids = [p["id"] for p in received]
    assert len(ids) == len(set(ids))
    for model, fingerprint in fp.items():
        seqs = [p["sequence"] for p in received if p["alert"]["fingerprint"] == fingerprint]
        assert seqs == sorted(set(seqs)), (model, seqs)
        last = outcome.hook.latest()[fingerprint]
        assert last["event"] == ("firing" if model in FIRING else "resolved"), model
        newest = max(
            (m for m in rows if m.sink == "hook" and m.fingerprint == fingerprint),
            key=lambda m: m.sequence,
        )
        assert last["id"] == newest.id  # the same id as queued
    delivered_hook = {m.id for m in rows if m.sink == "hook" and m.status is OutboxStatus.DELIVERED}
    assert set(ids) == delivered_hook
    assert all(by_id[i].status is OutboxStatus.DELIVERED for i in ids)
    superseded = [m for m in rows if m.sink == "hook" and m.status is OutboxStatus.SUPERSEDED]
    assert superseded  # m3 fired and resolved while down: its firing was never sent
    assert {m.fingerprint for m in superseded} >= {fp["m3"]}

    # Alertmanager (killed, so it forgot everything): lists exactly the firing alerts,
    # active until after the next re-sends; the resolved ones are gone, no stale firing.
    assert set(outcome.am_alerts) == FIRING
    now = datetime.now(UTC)
    for model, alert in outcome.am_alerts.items():
        assert alert["status"]["state"] == "active"
        assert datetime.fromisoformat(alert["endsAt"].replace("Z", "+00:00")) > now
        assert int(alert["annotations"]["sequence"]) >= 1, model
    for model in RESOLVED:
        am_rows = sorted(
            (m for m in rows if m.sink == "am" and m.fingerprint == fp[model]),
            key=lambda m: m.sequence,
        )
        assert am_rows[-1].event == "resolved" and am_rows[-1].status is OutboxStatus.DELIVERED
    # Per alert, Alertmanager got its notifications in sequence order.
    for fingerprint in fp.values():
        sent = sorted(
            (m for m in rows if m.sink == "am" and m.fingerprint == fingerprint and m.delivered_at),
            key=lambda m: m.delivered_at or now,
        )
        assert [m.sequence for m in sent] == sorted(m.sequence for m in sent)
