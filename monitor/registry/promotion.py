"""``--promote-alias``: a passing gate or canary promotes the model version it judged.

One :func:`promote` serves both commands: the version is tagged with the evidence first,
then the alias is moved to it, so a version an alias names always carries the evidence
it was promoted on; the promotion is recorded in the audit log once the registry accepted
it. What the evidence is differs: :func:`gate_evidence` (the verdict: id, outcome, suite,
dataset sha256, tags ``monitor.*``) and :func:`canary_evidence` (the canary's outcome,
streams, counts, p-value, start and end, the verdicts it read: tags ``monitor.canary.*``).
Only a command that exits 0 promotes; anything else leaves the registry alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from monitor.clock import utc_now

if TYPE_CHECKING:
    from monitor.gate import GateReport
    from monitor.gate.canary import CanaryReport
    from monitor.registry.mlflow import MlflowRegistry
    from monitor.store.audit_store import AuditLog

__all__ = [
    "CANARY_TAG_PREFIX",
    "TAG_PREFIX",
    "Evidence",
    "Promotion",
    "canary_evidence",
    "gate_evidence",
    "promote",
    "verdict_tags",
]

TAG_PREFIX = "monitor."
CANARY_TAG_PREFIX = TAG_PREFIX + "canary."
# MLflow keeps a tag value of up to 5,000 characters: a long watch's verdict ids are cut.
_MAX_VERDICT_IDS = 200


@dataclass(frozen=True, slots=True)
class Evidence:
    """What a version is promoted on: the ``tags`` it gets, and the audit entry's
    ``reason`` and identifying ``details`` (the registry, alias, version and tags are added
    by :func:`promote`)."""

    tags: dict[str, str]
    reason: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Promotion:
    """What a promotion did: ``alias`` of ``name`` now names ``version``."""

    name: str
    alias: str
    version: str
    tags: dict[str, str]
    reason: str

    def line(self, where: str) -> str:
        return (
            f"monitor: promoted version {self.version} of registered model {self.name!r}"
            f" to alias {self.alias!r} ({where}), tagged with {len(self.tags)} tags"
            f" ({self.reason})"
        )


def verdict_tags(report: GateReport) -> dict[str, str]:
    """The tags a version promoted by the gate gets: the verdict's id and outcome, the
    suite, the dataset's sha256, the runs, and the tier and review when there are any."""
    verdict, run = report.verdict, report.run
    tags = {
        "verdict_id": str(verdict.id),
        "outcome": verdict.outcome,
        "suite": verdict.suite,
        "dataset_sha256": run.dataset_sha256,
        "run_id": str(run.id),
        "baseline_run_id": str(report.baseline.id),
    }
    if run.tier:
        tags["tier"] = run.tier
    if verdict.review is not None:
        tags["review"] = verdict.review
    return {TAG_PREFIX + key: value for key, value in tags.items()}


def gate_evidence(report: GateReport) -> Evidence:
    """A passing gate's verdict as evidence."""
    return Evidence(
        tags=verdict_tags(report),
        reason=f"verdict {report.verdict.id}: {report.verdict.outcome}",
        details={
            "model": report.run.model,
            "verdict_id": report.verdict.id,
            "run_id": report.run.id,
        },
    )


def canary_evidence(report: CanaryReport) -> Evidence:
    """A promoting canary's outcome and figures as evidence (tags ``monitor.canary.*``)."""
    last, ids = report.last, [v.id for v in report.verdicts]
    tags = {
        "outcome": report.outcome,
        "early": str(report.early).lower(),
        "production_stream": report.production,
        "candidate_stream": report.candidate,
        "production_counts": f"{last.correct_production}/{last.n_production}",
        "candidate_counts": f"{last.correct_candidate}/{last.n_candidate}",
        "p_value": f"{last.p_value:.6g}",
        "alpha": f"{report.alpha:g}",
        "started_at": report.started_at.isoformat(),
        "ended_at": report.ended_at.isoformat(),
    }
    if report.suite is not None:
        tags["suite"] = report.suite
        tags["verdicts"] = str(len(ids))
        if ids:
            tags["verdict_ids"] = ",".join(str(i) for i in ids[-_MAX_VERDICT_IDS:])
    return Evidence(
        tags={CANARY_TAG_PREFIX + key: value for key, value in tags.items()},
        reason=(
            f"canary {report.candidate} vs {report.production}: {report.outcome}"
            f" (always-valid p {last.p_value:.4g})"
        ),
        details={
            "model": report.model,
            "streams": {"production": report.production, "candidate": report.candidate},
            "outcome": report.outcome,
            "p_value": last.p_value,
            "verdict_ids": ids,
        },
    )


def promote(
    registry: MlflowRegistry,
    version: str,
    alias: str,
    evidence: Evidence,
    *,
    audit: AuditLog,
    actor: str,
) -> Promotion:
    """Tag ``version`` with ``evidence.tags`` and point ``alias`` at it; record it in
    ``audit``. ``RegistryError`` if the registry refuses (the audit log then holds
    nothing: an alias half moved is retried by running the command again)."""
    registry.set_tags(version, evidence.tags)
    registry.set_alias(alias, version)
    name = registry.config.name
    audit.record(
        at=utc_now(),
        actor=actor,
        action="registry.promoted",
        target=f"model version {name}/{version}",
        reason=evidence.reason,
        details={
            "registry": registry.where,
            "name": name,
            "alias": alias,
            "version": version,
            **evidence.details,
            "tags": evidence.tags,
        },
    )
    return Promotion(
        name=name, alias=alias, version=version, tags=evidence.tags, reason=evidence.reason
    )
