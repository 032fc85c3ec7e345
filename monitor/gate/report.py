"""The gate's report: a verdict with both runs, its exit code, and three renderings.

``GateReport`` is what a local gate computes and what a daemon answers for ``--remote``,
so both paths render the same Markdown (a pull-request comment), JUnit XML (a CI test
tab) and JSON. Rendering is deterministic: no clock is read; every time shown is a stored
timestamp, so the output can be snapshot-tested.

Exit codes: 0 when the verdict is ``pass``, ``improved`` or ``inconclusive``, 1 when it is
``regressed``. A verdict its suite holds for review decides by the review instead: 0 when
approved (a person may accept a regression), 1 when rejected, 4 while it waits. Usage
errors (2) and infrastructure errors (3: the run failed, the endpoint was unreachable,
the error budget was exceeded) are decided by the command before there is
a verdict; :func:`render_failure_markdown` writes the comment for those, which says the
run could not be judged and never that the model regressed.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from monitor.gate.junit import render_junit
from monitor.gate.markdown import render_failure_markdown, render_markdown
from monitor.gate.summary import WORDS, detail, headline, review_note
from monitor.records import Run, Verdict
from monitor.wire.runs import RunOut
from monitor.wire.verdicts import VerdictOut

__all__ = [
    "EXIT_AWAITING_REVIEW",
    "EXIT_INFRASTRUCTURE",
    "EXIT_PASS",
    "EXIT_REGRESSED",
    "EXIT_USAGE",
    "OUTCOME_EXIT",
    "REVIEW_EXIT",
    "GateReport",
    "exit_code",
    "render_failure_markdown",
    "render_json",
    "render_junit",
    "render_markdown",
]

EXIT_PASS, EXIT_REGRESSED, EXIT_USAGE, EXIT_INFRASTRUCTURE = 0, 1, 2, 3
EXIT_AWAITING_REVIEW = 4
REVIEW_EXIT = {
    "needs_review": EXIT_AWAITING_REVIEW,
    "approved": EXIT_PASS,
    "rejected": EXIT_REGRESSED,
}
OUTCOME_EXIT = {
    "pass": EXIT_PASS,
    "improved": EXIT_PASS,
    "inconclusive": EXIT_PASS,
    "regressed": EXIT_REGRESSED,
}


class GateReport(BaseModel):
    """A run judged against its baseline run, ready to render. ``summary`` is one plain
    line (the verdict and why) for a terminal or a log."""

    model_config = ConfigDict(frozen=True)

    verdict: VerdictOut
    run: RunOut
    baseline: RunOut
    exit_code: int
    summary: str

    @classmethod
    def build(cls, verdict: Verdict, run: Run, baseline: Run) -> GateReport:
        """The report of ``verdict``, which must judge ``run`` against ``baseline``."""
        _check_matches(verdict, run, baseline)
        return cls.assemble(VerdictOut.of(verdict), RunOut.of(run), RunOut.of(baseline))

    @classmethod
    def assemble(cls, verdict: VerdictOut, run: RunOut, baseline: RunOut) -> GateReport:
        """The report of parts already checked to belong together (``build`` checks)."""
        summary = f"{WORDS[verdict.outcome]}: {headline(verdict, baseline)}."
        why = " ".join(part for part in (detail(verdict), review_note(verdict)) if part)
        return cls(
            verdict=verdict,
            run=run,
            baseline=baseline,
            exit_code=exit_code(verdict),
            summary=f"{summary} {why}" if why else summary,
        )

    def reviewed(self, verdict: VerdictOut) -> GateReport:
        """This report with its verdict as it stands now (after a review), which must be
        the same verdict."""
        if verdict.id != self.verdict.id:
            raise ValueError(f"verdict {verdict.id} is not verdict {self.verdict.id}")
        return self.assemble(verdict, self.run, self.baseline)

    @property
    def awaiting_review(self) -> bool:
        """Whether the verdict waits for a person's decision."""
        return self.verdict.review == "needs_review"


def exit_code(verdict: VerdictOut) -> int:
    """The gate's exit code for ``verdict``: its review's when it has one, else its
    outcome's."""
    if verdict.review is not None:
        return REVIEW_EXIT[verdict.review]
    return OUTCOME_EXIT[verdict.outcome]


def render_json(report: GateReport) -> str:
    """The report as JSON; ``GateReport.model_validate_json`` reads it back unchanged."""
    return report.model_dump_json(indent=2)


def _check_matches(verdict: Verdict, run: Run, baseline: Run) -> None:
    """Refuse a report whose parts do not belong together, naming every mismatch."""
    problems = []
    if verdict.outcome not in OUTCOME_EXIT:
        known = ", ".join(sorted(OUTCOME_EXIT))
        problems.append(f"unknown outcome {verdict.outcome!r}, expected one of {known}")
    if verdict.run_id != run.id:
        problems.append(f"it judges run {verdict.run_id}, not run {run.id}")
    if verdict.baseline_run_id != baseline.id:
        problems.append(f"its baseline is run {verdict.baseline_run_id}, not run {baseline.id}")
    if (run.suite, run.model) != (verdict.suite, verdict.model):
        problems.append(
            f"it is about {verdict.suite} on {verdict.model},"
            f" run {run.id} about {run.suite} on {run.model}"
        )
    if baseline.suite != verdict.suite:
        problems.append(f"baseline run {baseline.id} is of suite {baseline.suite}")
    if problems:
        raise ValueError(f"verdict {verdict.id}: " + "; ".join(problems))
