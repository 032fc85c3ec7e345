"""The ``store.verdicts`` part of the store: baselines, verdicts and their reviews
(``monitor.store.verdicts`` has the SQL; promotions and reviews write the audit log).

:class:`VerdictStore` shares its :class:`~monitor.store.Store`'s engine and transactions; each
method is one transaction (see ``monitor.store.store``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.exc import IntegrityError

from monitor.errors import StoreError
from monitor.records import Baseline, CaseChange, LatestScore, MetricComparison, Review, Verdict
from monitor.store import audit, verdicts
from monitor.store.types import ensure_utc

if TYPE_CHECKING:
    from monitor.store.store import Store

__all__ = ["VerdictStore"]


class VerdictStore:
    """Baselines, verdicts and their reviews."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def promote_baseline(
        self,
        run_id: int,
        *,
        by: str,
        reason: str,
        at: datetime,
        model: str | None = None,
        only_if_none: bool = False,
    ) -> Baseline | None:
        """Make a succeeded run the active baseline of its suite x model (or of ``model``),
        keeping the earlier promotions as history. ``LookupError`` for an unknown run,
        ``ValueError`` for a run that did not succeed. With ``only_if_none`` (``baseline =
        "auto"``) an existing baseline is kept and None returned. Every promotion goes into
        the audit log in the same transaction."""
        at = ensure_utc(at, name="at")
        try:
            with self._store._writing(f"promoting run {run_id} to baseline") as connection:
                promoted = verdicts.promote(
                    connection,
                    run_id,
                    model=model,
                    by=by,
                    reason=reason,
                    at=at,
                    only_if_none=only_if_none,
                )
                if promoted is not None:
                    audit.append(
                        connection,
                        at=at,
                        actor=by,
                        action="baseline.promoted",
                        target=f"run {run_id}",
                        reason=reason,
                        details={
                            "baseline_id": promoted.id,
                            "run_id": run_id,
                            "suite": promoted.suite,
                            "model": promoted.model,
                            "dataset_sha256": promoted.dataset_sha256,
                            "tier": promoted.tier,
                        },
                    )
                return promoted
        except StoreError as exc:
            if only_if_none and isinstance(exc.__cause__, IntegrityError):
                # Another replica promoted at the same moment: the unique index kept one.
                return None
            raise

    def active_baseline(self, suite: str, model: str, tier: str = "") -> Baseline | None:
        """The active baseline of ``suite`` x ``model`` for runs of ``tier``, if any."""
        with self._store._reading(f"reading the baseline of {suite} x {model}") as connection:
            return verdicts.active_baseline(connection, suite, model, tier)

    def get_baseline(self, baseline_id: int) -> Baseline | None:
        with self._store._reading(f"reading baseline {baseline_id}") as connection:
            return verdicts.get_baseline(connection, baseline_id)

    def list_baselines(
        self, *, suite: str | None = None, model: str | None = None, limit: int = 100
    ) -> list[Baseline]:
        """Every promotion (active or not), newest first."""
        with self._store._reading("listing baselines") as connection:
            return verdicts.list_baselines(connection, suite=suite, model=model, limit=limit)

    def add_verdict(
        self,
        *,
        run_id: int,
        baseline_run_id: int,
        suite: str,
        model: str,
        outcome: str,
        reason: str,
        at: datetime,
        dataset_changed: bool,
        metrics: Sequence[MetricComparison],
        changes: Sequence[CaseChange],
        review: Review | None = None,
    ) -> int:
        """Store a verdict with its metrics in one transaction; returns its id. ``review``
        is ``NEEDS_REVIEW`` for a verdict a person must approve, None when none is asked."""
        at = ensure_utc(at, name="at")
        with self._store._writing(f"storing the verdict of run {run_id}") as connection:
            return verdicts.add_verdict(
                connection,
                run_id=run_id,
                baseline_run_id=baseline_run_id,
                suite=suite,
                model=model,
                outcome=outcome,
                reason=reason,
                at=at,
                dataset_changed=dataset_changed,
                metrics=metrics,
                changes=changes,
                review=review,
            )

    def review_verdict(
        self, verdict_id: int, *, approve: bool, by: str, reason: str, at: datetime
    ) -> Verdict:
        """Approve or reject a verdict waiting for review, recording it in the audit log
        in the same transaction. ``LookupError`` for an unknown verdict, ``ValueError`` for
        one that needs no review or was decided already (the message says by whom)."""
        at = ensure_utc(at, name="at")
        if not by:
            raise ValueError("a review needs the reviewer's name")
        word = "approving" if approve else "rejecting"
        with self._store._writing(f"{word} verdict {verdict_id}") as connection:
            return verdicts.review(
                connection, verdict_id, approve=approve, by=by, reason=reason, at=at
            )

    def get_verdict(self, verdict_id: int) -> Verdict | None:
        with self._store._reading(f"reading verdict {verdict_id}") as connection:
            return verdicts.get_verdict(connection, verdict_id)

    def list_verdicts(
        self,
        *,
        suite: str | None = None,
        model: str | None = None,
        run_id: int | None = None,
        baseline_run_id: int | None = None,
        limit: int = 50,
        before_id: int | None = None,
    ) -> list[Verdict]:
        """Verdicts with their metrics, newest first."""
        with self._store._reading("listing verdicts") as connection:
            return verdicts.list_verdicts(
                connection,
                suite=suite,
                model=model,
                run_id=run_id,
                baseline_run_id=baseline_run_id,
                limit=limit,
                before_id=before_id,
            )

    def baseline_scores(self) -> list[LatestScore]:
        """Every metric of each active baseline run (for the metrics exporter)."""
        with self._store._reading("reading baseline scores") as connection:
            return verdicts.baseline_scores(connection)

    def latest_verdicts(self) -> list[Verdict]:
        """The newest verdict of every suite x model."""
        with self._store._reading("reading latest verdicts") as connection:
            return verdicts.latest_verdicts(connection)
