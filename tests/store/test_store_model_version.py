"""The model version a run evaluated (its registry alias's), on SQLite and PostgreSQL: a
new run and a queued run started later both keep it, a run of a model without a registry
has none, and a registry promotion is one audit entry."""

from __future__ import annotations

from monitor.records import RunStatus
from monitor.store import Store
from tests.store.conftest import T0

DIGESTS = {"dataset_sha256": "d" * 64, "config_hash": "c" * 64}


def test_runs_keep_the_model_version(store: Store) -> None:
    new = store.runs.create_run(
        suite="qa", model="prod", trigger="gate", at=T0, model_version="3", **DIGESTS
    )
    plain = store.runs.create_run(suite="qa", model="prod", trigger="gate", at=T0, **DIGESTS)
    queued = store.runs.create_run(
        suite="qa", model="prod", trigger="api", at=T0, status=RunStatus.QUEUED, **DIGESTS
    )
    store.runs.start_run(queued, at=T0, model_version="12", **DIGESTS)
    versions = {i: store.runs.get_run(i).model_version for i in (new, plain, queued)}  # type: ignore[union-attr]
    assert versions == {new: "3", plain: None, queued: "12"}
    assert [r.model_version for r in store.runs.list_runs(limit=10)] == ["12", None, "3"]


def test_a_registry_promotion_is_recorded_in_the_audit_log(store: Store) -> None:
    details = {"alias": "champion", "version": "3", "verdict_id": 7}
    entry_id = store.audit.record(
        at=T0,
        actor="ci",
        action="registry.promoted",
        target="model version churn/3",
        reason="verdict 7: pass",
        details=details,
    )
    (entry,) = store.audit.audit_entries(action="registry.promoted")
    assert (entry.id, entry.actor, entry.target, entry.details) == (
        entry_id,
        "ci",
        "model version churn/3",
        details,
    )
