"""The queued runs this replica claimed: each executed, judged, and its lease given up.

The ``Worker`` (``monitor.daemon.cluster``) claims a queued run and hands it to
``Work.execute``: the run's suite and model are resolved from this replica's
configuration (an API run is planned again from its stored request, as the replica that
took the request planned it; one that cannot be is finished ``failed``), the run is
executed by the ``Runner``, then its alert rules see it and it is judged against its
baseline (promoted first when the suite's baseline is ``auto`` and it has none), and
only then is its lease released: the next run of its suite x model waits for the verdict.
``adopt`` judges finished runs whose replica died before judging them (the sweep's,
``monitor.daemon.recovery``).

At shutdown a run cancelled before it started goes back to the queue for another
replica; one cancelled while running is stored ``interrupted`` by the runner. The daemon
(``monitor.daemon.lifecycle``) owns it and drains its tasks like every run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Protocol

from monitor.alerts.events import RunFinished, verdict_event
from monitor.api.endpoints import EndpointGuard
from monitor.api.plans import ModelEntry, plan_models
from monitor.clock import Clock
from monitor.config import AnyModelConfig, Config, SuiteConfig
from monitor.daemon.cluster import Worker
from monitor.daemon.inflight import tracked
from monitor.daemon.recovery import Spawn, StoreRecovery
from monitor.errors import StoreError, StoreUnavailable
from monitor.notify.service import AlertService
from monitor.records import Run, RunStatus, Verdict
from monitor.runs.runner import Runner
from monitor.store.parts import HasQueue, RunsAndVerdicts
from monitor.store.queue import Claimed
from monitor.verdicts.service import VerdictError, auto_promote, judge_run

logger = logging.getLogger(__name__)

UNKNOWN_WORK = "this replica's configuration has no suite {suite!r} with model {model!r}"


class WorkStores(HasQueue, RunsAndVerdicts, Protocol):
    """What the work uses of the store: the queue (leases), the runs and the verdicts."""


class Work:
    """Executes and judges the runs this replica claimed (or adopted)."""

    def __init__(
        self,
        config: Config,
        store: WorkStores,
        *,
        runner: Runner,
        alerts: AlertService,
        recovery: StoreRecovery,
        worker: Worker,
        owner: str,
        clock: Clock,
        spawn: Spawn,
        stopping: Callable[[], bool],
        inflight: set[asyncio.Task[object]],
    ) -> None:
        self._config = config
        self._store = store
        self._runner = runner
        self._alerts = alerts
        self._recovery = recovery
        self._worker = worker
        self._owner = owner
        self._clock = clock
        self._spawn = spawn
        self._stopping = stopping
        self._inflight = inflight

    async def execute(self, work: Claimed) -> None:
        """Execute a run claimed from the queue, then give up its lease (judged)."""
        with tracked(self._inflight):
            try:
                resolved = await asyncio.to_thread(self._resolve, work)
                if isinstance(resolved, str):
                    await asyncio.to_thread(self._refuse, work, resolved)
                else:
                    await self._run(*resolved, trigger=work.trigger, run_id=work.id)
            except asyncio.CancelledError:
                # Shut down: the run is stored interrupted, or went back to the queue. The
                # lease goes synchronously (the task must not await); if the store does not
                # answer, it expires.
                self._worker.let_go(work.id)
                with contextlib.suppress(StoreError):
                    self._store.queue.release(work.id, owner=self._owner)
                if not self._stopping():
                    raise
                return
            except Exception:
                logger.exception("queued run %d of %s x %s failed", work.id, work.suite, work.model)
        await self._release(work.id)

    def _resolve(self, work: Claimed) -> tuple[SuiteConfig, AnyModelConfig] | str:
        """The suite and model configuration of a claimed run, or why there is none: a
        scheduled run names a configured pair; an API run is planned again from its
        stored request, as the replica that took the request planned it."""
        suites = {s.name: s for s in self._config.suites}
        models = {m.name: m for m in self._config.models}
        suite = suites.get(work.suite)
        unknown = UNKNOWN_WORK.format(suite=work.suite, model=work.model)
        if suite is None:
            return unknown
        if work.trigger != "api" or work.request_id is None:
            model = models.get(work.model)
            return unknown if model is None or model.name not in suite.models else (suite, model)
        request = self._store.runs.get_run_request(work.request_id)
        entries = request.models if request is not None else ()
        entry = next((m for m in entries if m["model"] == work.model), None)
        if request is None or entry is None:
            return f"run request {work.request_id!r} has no model {work.model!r}"
        if request.sample is not None:
            suite = suite.model_copy(update={"sample": request.sample})
        run = self._store.runs.get_run(work.id)
        if run is not None and run.tier:  # the request asked for a tier of the suite
            try:
                suite = suite.for_tier(run.tier)
            except KeyError as exc:
                return f"{unknown}: {exc.args[0]}"
        guard = EndpointGuard(self._config.server.allowed_endpoint_prefixes)
        try:
            [plan] = plan_models([ModelEntry(entry["id"], entry["endpoint"])], suite, models, guard)
        except Exception as exc:
            return f"{unknown}: {getattr(exc, 'detail', exc)}"
        return suite, plan.config

    def _refuse(self, work: Claimed, reason: str) -> None:
        """Finish a claimed run this replica cannot execute as ``failed`` with ``reason``."""
        at = self._clock()
        self._store.runs.start_run(work.id, dataset_sha256="", config_hash="", at=at)
        self._store.runs.finish_run(work.id, status=RunStatus.FAILED, at=at, error=reason)
        logger.warning("run %d failed: %s", work.id, reason)

    async def _release(self, run_id: int) -> None:
        """Give up the lease of a judged run (if the store does not answer for
        ``retry_for``, the lease is no longer renewed and expires instead)."""
        try:
            await self._recovery.when_store_answers(
                lambda: asyncio.to_thread(self._store.queue.release, run_id, owner=self._owner)
            )
        except StoreError as exc:
            logger.warning("run %d: lease not released (it expires): %s", run_id, exc)
        finally:
            self._worker.let_go(run_id)

    def adopt(self, run_ids: list[int]) -> None:
        """Judge finished runs whose replica died before judging them."""
        for run_id in run_ids:
            self._worker.hold(run_id)
            self._spawn(self._judge_adopted(run_id), f"judge run {run_id}")

    async def _judge_adopted(self, run_id: int) -> None:
        try:
            run = await asyncio.to_thread(self._store.runs.get_run, run_id)
            judged = await asyncio.to_thread(
                self._store.verdicts.list_verdicts, run_id=run_id, limit=1
            )
            if run is not None and not judged:
                await self._after(run)
        except StoreError as exc:
            logger.warning("run %d: not judged: %s", run_id, exc)
        await self._release(run_id)

    async def _run(
        self,
        suite: SuiteConfig,
        model: AnyModelConfig,
        *,
        trigger: str,
        run_id: int | None = None,
    ) -> Run:
        """Every run goes through here: run (the queued run ``run_id``, or a new one),
        then let the alert rules see it and judge it."""
        try:
            run = await self._runner.run(suite, model, trigger=trigger, run_id=run_id)
        except asyncio.CancelledError:
            if run_id is not None:
                # Cancelled before it started (reading the dataset): back to the queue for
                # another replica. Synchronous: the task must not await. If the store does
                # not answer, the lease expires and the sweep puts it back.
                with contextlib.suppress(StoreError):
                    self._store.queue.release(run_id, owner=self._owner)
            raise
        await self._after(run)
        return run

    async def _after(self, run: Run) -> None:
        """A finished run's alert rules, then its verdict (and the verdict's rules)."""
        try:
            await self._recovery.when_store_answers(lambda: self._alerts.handle(RunFinished(run)))
        except StoreUnavailable as exc:
            logger.warning("run %d: alert rules not evaluated: %s", run.id, exc)
        except Exception:
            logger.exception("alert evaluation after run %d failed", run.id)
        await self._judge_run(run)

    async def _judge_run(self, run: Run) -> Verdict | None:
        """Judge a succeeded run against its baseline (promoting it first when the suite's
        baseline is ``auto`` and it has none), store the verdict and hand it to alerting."""
        if run.status != RunStatus.SUCCEEDED:
            return None
        at = self._clock()
        try:
            promoted = await self._recovery.when_store_answers(
                lambda: asyncio.to_thread(auto_promote, self._store, self._config, run, at=at)
            )
            if promoted:
                logger.info("run %d is now the baseline of %s on %s", run.id, run.suite, run.model)
                return None
            verdict = await self._recovery.when_store_answers(
                lambda: asyncio.to_thread(judge_run, self._store, self._config, run, at=at)
            )
        except VerdictError as exc:
            logger.warning("run %d: no verdict: %s", run.id, exc)
            return None
        except StoreUnavailable as exc:
            logger.warning("run %d: not judged: %s", run.id, exc)
            return None
        except Exception:
            logger.exception("judging run %d failed", run.id)
            return None
        logger.info(
            "run %d %s against run %d: %s",
            run.id,
            verdict.outcome,
            verdict.baseline_run_id,
            verdict.reason,
        )
        if run.trigger != "schedule":
            return verdict  # an API run's verdict is for whoever asked, not for alerting
        try:
            await self._recovery.when_store_answers(
                lambda: self._alerts.handle(verdict_event(verdict))
            )
        except StoreUnavailable as exc:
            logger.warning("verdict %d: alert rules not evaluated: %s", verdict.id, exc)
        except Exception:
            logger.exception("alert evaluation after verdict %d failed", verdict.id)
        return verdict
