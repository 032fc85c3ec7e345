"""The Prometheus collector: every value is read from the store at scrape time.

Because nothing is held in process memory, a restart loses no value and every replica
exports the same numbers. ``docs/metrics.md`` is the contract for the names below.

Run counts come in two families, because PromQL treats them differently: finished runs
only ever go up (a counter, ``increase()`` works on it), queued and running runs come and
go (a gauge). Both carry every status of every configured suite x model from the first
scrape, at 0, so ``increase()`` sees the first failure as a step from 0 instead of a new
series that starts at 1.

The series are bounded by the configuration plus what ran recently: a suite x model or
stream that is not configured (an ad-hoc model of the runs API, one removed from the file)
is exported until ``adhoc_ttl`` after its last run or report, then its series end. Every
per-pair number comes from the pair's rollup row (``monitor.store.rollups``), so a scrape
reads a bounded set of rows however long the history is.
"""

from __future__ import annotations

import logging
import platform
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector

from monitor.clock import Clock, utc_now
from monitor.records import DriftReport, RunStatus, RunSummary
from monitor.store.parts import HasAlerts, HasRuns, HasStreams, HasVerdicts, HasWindows

logger = logging.getLogger(__name__)


class ScrapedStores(HasRuns, HasVerdicts, HasStreams, HasWindows, HasAlerts, Protocol):
    """What a scrape reads: the views of runs, verdicts, streams (and their queued
    windows) and alerts."""


PREFIX = "monitor"
PAIR = ["suite", "model"]
DEFAULT_MAX_COLUMNS = 50
TEST_METHODS = ("ks", "chi2")
OUTCOMES = ("regressed", "inconclusive", "improved", "pass")
ACTIVE = (RunStatus.QUEUED, RunStatus.RUNNING)
FINISHED = tuple(status for status in RunStatus if status not in ACTIVE)


class StoreCollector(Collector):
    """Reads runs and scores from ``store`` for each scrape. ``pairs`` are the configured
    (suite, model) pairs, whose run counts are exported at 0 before their first run, and
    ``streams`` the configured streams. With ``adhoc_ttl``, other pairs and streams are
    exported only until that long after their last activity (by ``clock``); without it,
    everything stored is."""

    def __init__(
        self,
        store: ScrapedStores,
        *,
        version: str,
        max_columns: Mapping[str, int] | None = None,
        pairs: Iterable[tuple[str, str]] = (),
        streams: Iterable[str] = (),
        adhoc_ttl: timedelta | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self._store = store
        self._version = version
        self._pairs = frozenset(pairs)
        self._streams = frozenset(streams)
        self._adhoc_ttl = adhoc_ttl
        self._clock = clock
        # Per stream, how many columns of its latest report are exported (cardinality cap).
        self._max_columns = dict(max_columns or {})

    def describe(self) -> Iterable[GaugeMetricFamily]:
        # Nothing to describe up front: registering must not query the store.
        return []

    def collect(self) -> Iterable[GaugeMetricFamily | CounterMetricFamily | InfoMetricFamily]:
        yield InfoMetricFamily(
            f"{PREFIX}_build",
            "Version of the monitor daemon and of the Python running it.",
            value={"version": self._version, "python_version": platform.python_version()},
        )
        up = GaugeMetricFamily(f"{PREFIX}_store_up", "1 if the store answered this scrape, else 0.")
        try:
            summaries = self._live_summaries()
            live = self._pairs | {(s.suite, s.model) for s in summaries}
            families = [
                *self._run_families(summaries),
                *self._score_families(live),
                *self._suite_fairness_families(live),
                *self._verdict_families(live),
                *self._stream_families(),
                *self._drift_families(),
                *self._performance_families(),
                *self._alert_families(),
            ]
        except Exception as exc:  # a scrape must answer even when the store does not
            logger.warning("scrape: store unavailable: %s", type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _live_summaries(self) -> list[RunSummary]:
        """Every pair's summary, but of pairs outside the configuration only those with a
        run in flight or created or finished within ``adhoc_ttl``."""
        summaries = self._store.runs.run_summaries()
        if self._adhoc_ttl is None:
            return summaries
        since = self._clock() - self._adhoc_ttl
        return [
            s
            for s in summaries
            if (s.suite, s.model) in self._pairs
            or any(s.counts.get(status) for status in ACTIVE)
            or (s.updated_at is not None and s.updated_at >= since)
        ]

    def _live_stream(self, stream: str, *times: datetime | None) -> bool:
        if self._adhoc_ttl is None or stream in self._streams:
            return True
        since = self._clock() - self._adhoc_ttl
        return any(at is not None and at >= since for at in times)

    def _run_families(
        self, summaries: Sequence[RunSummary]
    ) -> list[GaugeMetricFamily | CounterMetricFamily]:
        last = _gauge("last_run_timestamp_seconds", "Unix time the latest run finished.", PAIR)
        success = _gauge(
            "last_success_timestamp_seconds", "Unix time the latest succeeded run finished.", PAIR
        )
        duration = _gauge("last_run_duration_seconds", "Wall time of the latest run.", PAIR)
        usage = _UsageFamilies()
        for summary in summaries:
            pair = [summary.suite, summary.model]
            _add(last, pair, _timestamp(summary.last_finished_at))
            _add(success, pair, _timestamp(summary.last_success_at))
            _add(duration, pair, summary.last_duration_seconds)
            usage.add(summary)
        return [*self._run_counts(summaries), last, success, duration, *usage.families()]

    def _run_counts(
        self, summaries: Sequence[RunSummary]
    ) -> tuple[CounterMetricFamily, GaugeMetricFamily]:
        """Finished runs by status (a counter) and queued or running runs (a gauge), for
        every configured pair and every pair with a run (ad-hoc models of the API)."""
        labels = [*PAIR, "status"]
        finished = CounterMetricFamily(
            f"{PREFIX}_runs_finished",
            "Runs that finished, by status (succeeded, failed, interrupted).",
            labels=labels,
        )
        active = GaugeMetricFamily(
            f"{PREFIX}_runs", "Runs queued or running now, by status.", labels=labels
        )
        counts = {(s.suite, s.model): s.counts for s in summaries}
        for pair in sorted(self._pairs | counts.keys()):
            known = counts.get(pair, {})
            for status in FINISHED:
                finished.add_metric([*pair, status], known.get(status, 0))
            for status in ACTIVE:
                active.add_metric([*pair, status], known.get(status, 0))
        return finished, active

    def _score_families(self, live: frozenset[tuple[str, str]]) -> list[GaugeMetricFamily]:
        score = _Bounded(
            "eval_score",
            "Latest succeeded run's score per metric.",
            [*PAIR, "metric"],
            interval="its 95% confidence interval",
        )
        for s in self._store.runs.latest_scores():
            if (s.suite, s.model) in live:
                score.add([s.suite, s.model, s.metric], s.value, s.lower, s.upper)
        return score.families()

    def _suite_fairness_families(self, live: frozenset[tuple[str, str]]) -> list[GaugeMetricFamily]:
        """The latest succeeded run's group fairness measures (``fairness`` of a suite);
        ``measure`` is one of three names, so the series stay bounded."""
        fairness = _Bounded(
            "suite_fairness",
            "A group fairness measure of the latest succeeded run (fairlearn's).",
            [*PAIR, "measure"],
        )
        for suite, model, f in self._store.runs.latest_fairness():
            if (suite, model) in live:
                fairness.add([suite, model, f.measure], f.value, f.lower, f.upper)
        return fairness.families()

    def _verdict_families(self, live: frozenset[tuple[str, str]]) -> list[GaugeMetricFamily]:
        labels = [*PAIR, "metric"]
        baseline = _gauge("baseline_score", "The active baseline run's score per metric.", labels)
        for s in self._store.verdicts.baseline_scores():
            if (s.suite, s.model) not in live:
                continue
            baseline.add_metric([s.suite, s.model, s.metric], s.value)
        outcome = _gauge(
            "verdict_outcome",
            "1 for the outcome of the latest verdict (regressed, inconclusive, improved,"
            " pass), 0 for the others.",
            [*PAIR, "outcome"],
        )
        at = _gauge("verdict_timestamp_seconds", "Unix time of the latest verdict.", PAIR)
        delta = _gauge(
            "verdict_delta",
            "Latest verdict: new minus baseline, per metric (paired cases).",
            labels,
        )
        p_value = _gauge(
            "verdict_p_value",
            "Latest verdict: one-sided Holm-adjusted p-value per metric.",
            labels,
        )
        regressed = _gauge(
            "verdict_metric_regressed",
            "Latest verdict: 1 if the metric regressed overall or in any slice, else 0.",
            labels,
        )
        for verdict in self._store.verdicts.latest_verdicts():
            if (verdict.suite, verdict.model) not in live:
                continue
            pair = [verdict.suite, verdict.model]
            for name in OUTCOMES:
                outcome.add_metric([*pair, name], 1.0 if verdict.outcome == name else 0.0)
            at.add_metric(pair, verdict.created_at.timestamp())
            worse = {m.metric for m in verdict.metrics if m.outcome == "regressed"}
            for m in verdict.metrics:
                if not m.slice:
                    delta.add_metric([*pair, m.metric], m.delta)
                    p_value.add_metric([*pair, m.metric], m.p_adjusted)
                    regressed.add_metric([*pair, m.metric], 1.0 if m.metric in worse else 0.0)
        return [baseline, outcome, at, delta, p_value, regressed]

    def _stream_families(self) -> list[CounterMetricFamily | GaugeMetricFamily]:
        rows = CounterMetricFamily(
            f"{PREFIX}_stream_rows_ingested",
            "Rows accepted by the ingest API per stream.",
            labels=["stream"],
        )
        for count in self._store.streams.stream_counts():
            if not self._live_stream(count.stream, count.last_received_at):
                continue
            rows.add_metric([count.stream], count.n_rows)
        return [rows, self._window_family()]

    def _window_family(self) -> GaugeMetricFamily:
        """Windows queued to be judged and leased by a replica, per stream: both states
        of every configured stream, at 0 when there are none (one grouped query)."""
        windows = _gauge(
            "stream_windows",
            "Stream windows queued to be judged (state queued) or being judged (leased).",
            ["stream", "state"],
        )
        counts = dict.fromkeys(self._streams, (0, 0))
        for count in self._store.windows.counts():
            if count.stream in self._streams or self._adhoc_ttl is None:
                counts[count.stream] = (count.queued, count.leased)
        for stream in sorted(counts):
            queued, leased = counts[stream]
            windows.add_metric([stream, "queued"], queued)
            windows.add_metric([stream, "leased"], leased)
        return windows

    def _drift_families(self) -> list[GaugeMetricFamily]:
        """The latest ``ok`` drift report of every stream. p-values and distances are in
        separately named families, so a series never changes meaning."""
        col = ["stream", "column"]
        method = [*col, "method"]
        families = {
            "p_value": GaugeMetricFamily(
                f"{PREFIX}_drift_p_value",
                "p-value of a drift test (ks, chi2) on the latest window, per column.",
                labels=method,
            ),
            "p_value_adjusted": GaugeMetricFamily(
                f"{PREFIX}_drift_p_value_adjusted",
                "p-value after the multiple-testing correction across columns "
                "(p-value mode); compared with the p-value threshold.",
                labels=method,
            ),
            "p_value_threshold": GaugeMetricFamily(
                f"{PREFIX}_drift_p_value_threshold",
                "Drift is flagged when the p-value is below this.",
                labels=method,
            ),
            "test_statistic": GaugeMetricFamily(
                f"{PREFIX}_drift_test_statistic",
                "Statistic of a drift test (KS D, chi-square) on the latest window.",
                labels=method,
            ),
            "distance": GaugeMetricFamily(
                f"{PREFIX}_drift_distance",
                "Distance between the latest window and the reference "
                "(wasserstein, psi, jensenshannon, hellinger, linf).",
                labels=method,
            ),
            "threshold": GaugeMetricFamily(
                f"{PREFIX}_drift_statistic_threshold",
                "Drift is flagged when the statistic (test statistic or distance) exceeds "
                "this (calibrated and fixed modes).",
                labels=method,
            ),
            "drifted": GaugeMetricFamily(
                f"{PREFIX}_drift_column_drifted",
                "1 if the column drifted in the latest window (by its first method).",
                labels=col,
            ),
            "missing": GaugeMetricFamily(
                f"{PREFIX}_drift_missing_share",
                "Share of missing values of the column in the latest window.",
                labels=col,
            ),
        }
        stream_families = self._dataset_families()
        shadow = _ShadowFamilies()
        for report in self._store.streams.latest_drift_reports():
            if not self._live_stream(report.stream, report.created_at):
                continue
            self._add_dataset(stream_families, report)
            shadow.add(report)
            cap = self._max_columns.get(report.stream, DEFAULT_MAX_COLUMNS)
            for column in report.columns[:cap]:
                self._add_column(families, report.stream, column)
        return [*stream_families.values(), *shadow.families(), *families.values()]

    def _performance_families(self) -> list[GaugeMetricFamily]:
        """The newest scored window of every stream with labels: its metrics with their
        intervals, the reference (or target) each is judged against, the judgement, and
        how much of the window is labelled. One series per stream and configured metric."""
        metric = ["stream", "metric"]
        performance = _Bounded(
            "stream_performance",
            "A metric of the latest scored window on its labelled records.",
            metric,
        )
        f = {
            "reference": _gauge(
                "stream_performance_reference",
                "The reference performance (or target) the window is judged against.",
                metric,
            ),
            "worse": _gauge(
                "stream_performance_worse",
                "1 if the window is judged worse than the reference for this metric.",
                metric,
            ),
            "p_value": _gauge(
                "stream_performance_p_value",
                "Holm-adjusted one-sided p-value of 'the window is worse' (tested metrics).",
                metric,
            ),
            "share": _gauge(
                "stream_labelled_share",
                "Share of the latest scored window's records that have a label.",
                ["stream"],
            ),
            "labelled": _gauge(
                "stream_labelled_rows", "Labelled records in the latest scored window.", ["stream"]
            ),
            "final": _gauge(
                "stream_performance_final",
                "1 once the latest scored window's label delay has passed (0: provisional"
                " or reopened).",
                ["stream"],
            ),
            "reopened": _gauge(
                "stream_performance_reopened",
                "How often late labels re-opened the latest scored window after it was final.",
                ["stream"],
            ),
        }
        fairness = _Bounded(
            "stream_fairness",
            "A group fairness measure of the latest scored window (fairlearn's).",
            ["stream", "groups", "measure"],
        )
        gap = _Bounded(
            "stream_segment_gap",
            "Largest gap of a metric between two segments of a column in the latest scored window.",
            ["stream", "column", "metric"],
            interval="its 95% bootstrap interval (the best segment's metric minus the worst's)",
        )
        g = {
            "segment": _gauge(
                "stream_segment_performance",
                "A metric of one segment (at most max_segments per column, the rest"
                " __other__) in the latest scored window.",
                ["stream", "column", "segment", "metric"],
            ),
        }
        for row in self._store.streams.latest_performance():
            self._add_groups(fairness, gap, g, row.stream, row.groups)
            key = [row.stream]
            f["share"].add_metric(key, row.labelled_share)
            f["labelled"].add_metric(key, row.n_labelled)
            f["final"].add_metric(key, 1.0 if row.state == "final" else 0.0)
            f["reopened"].add_metric(key, row.reopened)
            for m in row.metrics:
                labels = [row.stream, str(m["metric"])]
                performance.add(labels, m.get("value"), m.get("lower"), m.get("upper"))
            for c in row.comparison:
                labels = [row.stream, str(c["metric"])]
                _add(f["reference"], labels, c.get("reference"))
                _add(f["worse"], labels, 1.0 if c.get("worse") else 0.0)
                _add(f["p_value"], labels, c.get("p_value"))
        groups = [*fairness.families(), *gap.families(), *g.values()]
        return [*performance.families(), *f.values(), *groups]

    @staticmethod
    def _add_groups(
        fairness: _Bounded,
        gap: _Bounded,
        g: dict[str, GaugeMetricFamily],
        stream: str,
        groups: Mapping[str, Any],
    ) -> None:
        for m in groups.get("fairness", ()):
            labels = [stream, str(m["groups"]), str(m["measure"])]
            fairness.add(labels, m.get("value"), m.get("lower"), m.get("upper"))
        for row in groups.get("gaps", ()):
            labels = [stream, str(row["column"]), str(row["metric"])]
            gap.add(labels, row.get("gap"), row.get("lower"), row.get("upper"))
        for segment in groups.get("segments", ()):
            for m in segment.get("metrics", ()):
                labels = [stream, str(segment["column"]), str(segment["segment"]), str(m["metric"])]
                _add(g["segment"], labels, m.get("value"))

    @staticmethod
    def _dataset_families() -> dict[str, GaugeMetricFamily]:
        return {
            "share": GaugeMetricFamily(
                f"{PREFIX}_drift_share",
                "Share of drifted columns in the latest window of a stream.",
                labels=["stream"],
            ),
            "dataset": GaugeMetricFamily(
                f"{PREFIX}_drift_dataset_drifted",
                "1 if the share of drifted columns reached the stream's drift_share.",
                labels=["stream"],
            ),
            "rows": GaugeMetricFamily(
                f"{PREFIX}_drift_window_rows",
                "Rows in the latest judged window of a stream.",
                labels=["stream"],
            ),
            "at": GaugeMetricFamily(
                f"{PREFIX}_drift_last_report_timestamp_seconds",
                "Unix time the latest drift report of a stream was made.",
                labels=["stream"],
            ),
            "segment_share": _gauge(
                "stream_segment_drift_share",
                "Share of drifted columns in one segment of the latest window (at most"
                " max_segments per segment column, the rest __other__); absent when the"
                " segment was too small to judge.",
                ["stream", "column", "segment"],
            ),
            "segment_drifted": _gauge(
                "stream_segment_dataset_drifted",
                "1 if the segment's share of drifted columns reached the stream's drift_share.",
                ["stream", "column", "segment"],
            ),
            "segment_rows": _gauge(
                "stream_segment_drift_rows",
                "Rows of the segment in the latest window, judged or not.",
                ["stream", "column", "segment"],
            ),
            "segment_max": _gauge(
                "stream_segment_drift_max_share",
                "The largest drift share among the judged segments of a segment column in"
                " the latest window.",
                ["stream", "column"],
            ),
        }

    @staticmethod
    def _add_dataset(families: dict[str, GaugeMetricFamily], report: DriftReport) -> None:
        key = [report.stream]
        if report.drift_share is not None:
            families["share"].add_metric(key, report.drift_share)
        families["dataset"].add_metric(key, 1.0 if report.dataset_drifted else 0.0)
        families["rows"].add_metric(key, report.n_rows)
        families["at"].add_metric(key, report.created_at.timestamp())
        for segment in report.segments:
            labels = [report.stream, str(segment["column"]), str(segment["segment"])]
            families["segment_rows"].add_metric(labels, segment["n_rows"])
            share = segment.get("drift_share")
            if segment.get("status") != "ok" or share is None:
                continue
            families["segment_share"].add_metric(labels, share)
            drifted = 1.0 if segment.get("dataset_drifted") else 0.0
            families["segment_drifted"].add_metric(labels, drifted)
            if segment.get("largest"):
                families["segment_max"].add_metric(labels[:2], share)

    @staticmethod
    def _add_column(
        families: dict[str, GaugeMetricFamily], stream: str, column: Mapping[str, Any]
    ) -> None:
        key = [stream, str(column["column"])]
        families["drifted"].add_metric(key, 1.0 if column.get("drifted") else 0.0)
        missing = (column.get("quality") or {}).get("missing_share")
        if missing is not None:
            families["missing"].add_metric(key, missing)
        for result in column.get("results", ()):
            labels = [*key, str(result["method"])]
            statistic, threshold = result.get("statistic"), result.get("threshold")
            if result.get("p_value") is not None:
                families["p_value"].add_metric(labels, result["p_value"])
            if result.get("p_value_adjusted") is not None:
                families["p_value_adjusted"].add_metric(labels, result["p_value_adjusted"])
            if statistic is not None:
                test = result["method"] in TEST_METHODS
                families["test_statistic" if test else "distance"].add_metric(labels, statistic)
            if threshold is not None:
                kind = "p_value_threshold" if result.get("kind") == "p_value" else "threshold"
                families[kind].add_metric(labels, threshold)

    def _alert_families(self) -> list[GaugeMetricFamily | CounterMetricFamily]:
        alerts = GaugeMetricFamily(
            f"{PREFIX}_alerts",
            "Alerts by rule, severity and state (pending, firing, resolved, inactive).",
            labels=["rule", "severity", "state"],
        )
        counts: dict[tuple[str, str, str], int] = {}
        for state in self._store.alerts.alert_states():
            key = (state.rule, state.severity, state.phase.value)
            counts[key] = counts.get(key, 0) + 1
        for key, count in sorted(counts.items()):
            alerts.add_metric(list(key), count)
        stats = self._store.alerts.outbox_stats()
        backlog = GaugeMetricFamily(
            f"{PREFIX}_alert_outbox_backlog",
            "Notifications waiting in the outbox for delivery.",
        )
        backlog.add_metric([], stats.by_status.get("pending", 0))
        dead = GaugeMetricFamily(
            f"{PREFIX}_alert_dead_letters",
            "Notifications still dead (a sink refused them, or they failed for max_age);"
            " redrive or discard them with monitor alerts dead-letters.",
        )
        dead.add_metric([], stats.by_status.get("dead", 0))
        deliveries = CounterMetricFamily(
            f"{PREFIX}_alert_deliveries",
            "Delivery attempts by outcome: delivered, failed (retried or not), dead.",
            labels=["outcome"],
        )
        deliveries.add_metric(["delivered"], stats.by_status.get("delivered", 0))
        deliveries.add_metric(["failed"], stats.failed_attempts)
        deliveries.add_metric(["dead"], stats.dead_total)
        return [alerts, backlog, dead, deliveries]


class _ShadowFamilies:
    """The shadow comparison of each stream's latest judged window: paired records,
    agreement, and the divergence with its interval."""

    def __init__(self) -> None:
        self.pairs = _gauge(
            "stream_shadow_pairs",
            "Records of the latest judged window carrying both the production and the"
            " shadow prediction.",
            ["stream"],
        )
        self.agreement = _gauge(
            "stream_shadow_agreement",
            "Share of the latest window's paired records on which the shadow model"
            " agrees with production (numerical: within the tolerance).",
            ["stream"],
        )
        self.divergence = _Bounded(
            "stream_shadow_divergence",
            "Divergence of the shadow model from production in the latest window:"
            " disagreement_share (categorical) or mean_difference (numerical, shadow"
            " minus production).",
            ["stream", "measure"],
            interval="its interval (Wilson or paired t, at shadow.confidence)",
        )

    def add(self, report: DriftReport) -> None:
        shadow = report.shadow
        if not shadow:
            return
        self.pairs.add_metric([report.stream], shadow.get("n_pairs", 0))
        _add(self.agreement, [report.stream], shadow.get("agreement"))
        measured = shadow.get("divergence")
        if measured:
            labels = [report.stream, str(measured["measure"])]
            self.divergence.add(
                labels, measured.get("value"), measured.get("lower"), measured.get("upper")
            )

    def families(self) -> list[GaugeMetricFamily]:
        return [self.pairs, self.agreement, *self.divergence.families()]


class _UsageFamilies:
    """Cases, errors, tokens and cost: totals over finished runs as counters, and the
    latest finished run's as gauges. Unknown tokens or cost are absent, never 0."""

    def __init__(self) -> None:
        self.cases = CounterMetricFamily(
            f"{PREFIX}_cases", "Cases of finished runs, answered or failed.", labels=PAIR
        )
        self.errors = CounterMetricFamily(
            f"{PREFIX}_case_errors",
            "Cases of finished runs that failed (timeout, http_status, ...).",
            labels=PAIR,
        )
        self.tokens = CounterMetricFamily(
            f"{PREFIX}_tokens",
            "Tokens of finished runs whose endpoint reported usage, by kind (prompt,"
            " completion) and role (model: the evaluated model; judge: its judges).",
            labels=[*PAIR, "kind", "role"],
        )
        self.cost = CounterMetricFamily(
            f"{PREFIX}_cost",
            "Cost of finished runs whose tokens and price are known, in the price's currency,"
            " by role (model: the evaluated model; judge: its judges).",
            labels=[*PAIR, "currency", "role"],
        )
        self.last_cases = _gauge("last_run_cases", "Cases of the latest finished run.", PAIR)
        self.last_errors = _gauge(
            "last_run_case_errors", "Cases of the latest finished run that failed.", PAIR
        )
        self.last_cost = _gauge(
            "last_run_cost",
            "Cost of the latest finished run, when known, in the price's currency.",
            [*PAIR, "currency"],
        )

    def add(self, summary: RunSummary) -> None:
        pair = [summary.suite, summary.model]
        if summary.last_finished_at is None:
            return  # only running runs so far: nothing finished to count
        self.cases.add_metric(pair, summary.cases)
        self.errors.add_metric(pair, summary.case_errors)
        for role, prompt, completion, costs in (
            ("model", summary.prompt_tokens, summary.completion_tokens, summary.cost),
            (
                "judge",
                summary.judge_prompt_tokens,
                summary.judge_completion_tokens,
                summary.judge_cost,
            ),
        ):
            if prompt is not None:
                self.tokens.add_metric([*pair, "prompt", role], prompt)
            if completion is not None:
                self.tokens.add_metric([*pair, "completion", role], completion)
            for currency, cost in sorted(costs.items()):
                self.cost.add_metric([*pair, currency, role], cost)
        _add(self.last_cases, pair, summary.last_cases)
        _add(self.last_errors, pair, summary.last_case_errors)
        if summary.last_cost is not None and summary.last_currency is not None:
            self.last_cost.add_metric([*pair, summary.last_currency], summary.last_cost)

    def families(self) -> list[GaugeMetricFamily | CounterMetricFamily]:
        return [
            self.cases,
            self.errors,
            self.tokens,
            self.cost,
            self.last_cases,
            self.last_errors,
            self.last_cost,
        ]


class _Bounded:
    """A value and its interval: gauge families ``NAME``, ``NAME_lower`` and
    ``NAME_upper`` with the same labels, a bound absent where it is unknown."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labels: list[str],
        *,
        interval: str = "its 95% interval",
    ) -> None:
        self.value = _gauge(name, documentation, labels)
        self.lower = _gauge(f"{name}_lower", f"Lower end of {interval}.", labels)
        self.upper = _gauge(f"{name}_upper", f"Upper end of {interval}.", labels)

    def add(
        self, labels: list[str], value: float | None, lower: float | None, upper: float | None
    ) -> None:
        _add(self.value, labels, value)
        _add(self.lower, labels, lower)
        _add(self.upper, labels, upper)

    def families(self) -> list[GaugeMetricFamily]:
        return [self.value, self.lower, self.upper]


def _gauge(name: str, documentation: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{PREFIX}_{name}", documentation, labels=labels)


def _add(family: GaugeMetricFamily, labels: list[str], value: float | None) -> None:
    """Add a sample unless the value is unknown: an absent series, never a fake zero."""
    if value is not None:
        family.add_metric(labels, value)


def _timestamp(at: datetime | None) -> float | None:
    return None if at is None else at.timestamp()
