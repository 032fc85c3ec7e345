"""``monitor gate --promote-alias``: a passing verdict promotes the evaluated version.

The version is tagged with the verdict first, then the alias is moved to it, so a version
an alias names always carries the evidence it was promoted on; the promotion is recorded
in the audit log once the registry accepted it. Only a gate that exits 0 (pass, improved,
inconclusive, or approved by review) promotes; anything else leaves the registry alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from monitor.clock import utc_now

if TYPE_CHECKING:
    from monitor.gate import GateReport
    from monitor.registry.mlflow import MlflowRegistry
    from monitor.store.audit_store import AuditLog

__all__ = ["Promotion", "promote", "verdict_tags"]

TAG_PREFIX = "monitor."


@dataclass(frozen=True, slots=True)
class Promotion:
    """What a promotion did: ``alias`` of ``name`` now names ``version``."""

    name: str
    alias: str
    version: str
    tags: dict[str, str]

    def line(self, where: str) -> str:
        return (
            f"monitor: promoted version {self.version} of registered model {self.name!r}"
            f" to alias {self.alias!r} ({where}), tagged with verdict"
            f" {self.tags[TAG_PREFIX + 'verdict_id']}"
        )


def verdict_tags(report: GateReport) -> dict[str, str]:
    """The tags a promoted version gets: the verdict's id and outcome, the suite, the
    dataset's sha256, the runs, and the tier and review when there are any."""
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


def promote(
    registry: MlflowRegistry, report: GateReport, alias: str, *, audit: AuditLog, actor: str
) -> Promotion:
    """Tag the report's run's model version with its verdict and point ``alias`` at it;
    record it in ``audit``. ``RegistryError`` if the registry refuses (the audit log then
    holds nothing: an alias half moved is retried by running the gate again)."""
    version = report.run.model_version
    assert version is not None, "the gate checks that the run has a model version"
    tags = verdict_tags(report)
    registry.set_tags(version, tags)
    registry.set_alias(alias, version)
    name = registry.config.name
    audit.record(
        at=utc_now(),
        actor=actor,
        action="registry.promoted",
        target=f"model version {name}/{version}",
        reason=f"verdict {report.verdict.id}: {report.verdict.outcome}",
        details={
            "registry": registry.where,
            "name": name,
            "alias": alias,
            "version": version,
            "model": report.run.model,
            "verdict_id": report.verdict.id,
            "run_id": report.run.id,
            "tags": tags,
        },
    )
    return Promotion(name=name, alias=alias, version=version, tags=tags)
