"""The alert service: the one hook producers call, tying the pure engine to the store.

``handle(event)`` loads the stored states, lets the engine compute transitions, routes
each notification to the sinks that take it (dropping it for direct sinks under an active
silence), numbers the notifications, and stores the transitions with their outbox rows;
then it wakes the delivery worker. Producers call it with ``RunFinished`` (after each
run), ``Tick`` (the timer), and ``VerdictReady`` / ``DriftReportReady`` (the verdict and
drift producers).

With several replicas every replica feeds the events of the work it did (runs, verdicts,
drift reports) and the scheduling leader feeds ``Tick``. That is safe because one
evaluation, from loading the states to numbering and storing the notifications, is one
store transaction that replicas take one at a time (``store.alerts.evaluating()``): each
evaluation starts from the states the previous one stored, so a timer's repeat never
overwrites a state another replica has just resolved, and no two notifications of an
alert get the same ``sequence``. The lock here only keeps a process's own threads from
queueing on the database for it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Protocol

from monitor.alerts.engine import AlertState, Phase, Transition, evaluate
from monitor.alerts.events import Event, StreamActivity, SuiteActivity, Tick
from monitor.alerts.payload import build_payload, new_message_id
from monitor.alerts.records import OutboxMessage, OutboxStatus, Silence
from monitor.clock import Clock, utc_now
from monitor.config.alerts import AlertsConfig, SinkConfig
from monitor.sinks import DIRECT_KINDS
from monitor.store.alert_store import AlertEvaluation
from monitor.store.parts import HasAlerts, HasRuns

logger = logging.getLogger(__name__)


class AlertStores(HasAlerts, HasRuns, Protocol):
    """What the alert service uses of the store: alert states and the outbox, and the
    run summaries a ``Tick`` is made of."""


class AlertService:
    """Evaluates alert rules on events and queues their notifications durably."""

    def __init__(
        self,
        config: AlertsConfig,
        store: AlertStores,
        *,
        public_url: str | None = None,
        clock: Clock = utc_now,
        on_enqueue: Callable[[], None] | None = None,
    ) -> None:
        self.config = config
        self._store = store
        self._public_url = public_url
        self._clock = clock
        self._on_enqueue = on_enqueue
        self._lock = threading.Lock()
        self.started_at = clock()

    async def handle(self, event: Event) -> list[Transition]:
        """Evaluate ``event`` (in a worker thread: the store is synchronous)."""
        return await asyncio.to_thread(self.handle_sync, event)

    def handle_sync(self, event: Event) -> list[Transition]:
        """Evaluate ``event``; store transitions and notifications together."""
        with self._lock, self._store.alerts.evaluating() as evaluation:
            states = {s.fingerprint: s for s in evaluation.alert_states()}
            transitions = evaluate(self.config.rules, states, event)
            now = self._clock()
            silences = evaluation.silences(active_at=now) if transitions else []
            messages = [
                m
                for t in transitions
                if t.notify
                for m in self._route(t.state, t.notify, now, silences)
            ]
            if isinstance(event, Tick):
                messages += self._refreshes(evaluation, states, transitions, now)
            messages = self._numbered(evaluation, messages)
            if transitions or messages:
                evaluation.apply(transitions, messages)
        for t in transitions:
            if t.phase_changed:
                logger.info("alert %s %s: %s", t.state.rule, t.state.phase, t.state.summary)
        if messages and self._on_enqueue is not None:
            self._on_enqueue()
        return transitions

    def tick(
        self,
        pairs: Sequence[tuple[str, str]] = (),
        streams: Sequence[StreamActivity] = (),
    ) -> Tick:
        """A ``Tick`` for now: the last success of every stored suite x model, plus the
        configured ``pairs`` that have no run yet (stale since the service started), and
        ``streams`` as the drift producer reports them."""
        summaries = self._store.runs.run_summaries()
        activity = [SuiteActivity(s.suite, s.model, s.last_success_at) for s in summaries]
        known = {(a.suite, a.model) for a in activity}
        activity += [SuiteActivity(s, m, None) for s, m in pairs if (s, m) not in known]
        return Tick(
            now=self._clock(), since=self.started_at, suites=tuple(activity), streams=tuple(streams)
        )

    def _route(
        self, state: AlertState, event: str, now: datetime, silences: Sequence[Silence]
    ) -> list[OutboxMessage]:
        messages = []
        for sink in self.config.sinks:
            if not sink.takes(state.severity, state.labels):
                continue
            if sink.kind in DIRECT_KINDS and any(s.matches(state.labels, now) for s in silences):
                logger.info("alert %s silenced for sink %s", state.rule, sink.name)
                continue
            messages.append(self._message(sink, state, event, now))
        return messages

    def _refreshes(
        self,
        evaluation: AlertEvaluation,
        states: dict[str, AlertState],
        transitions: Sequence[Transition],
        now: datetime,
    ) -> list[OutboxMessage]:
        """Re-send firing alerts to Alertmanager sinks before Alertmanager expires them."""
        sinks = [s for s in self.config.sinks if s.kind == "alertmanager"]
        if not sinks:
            return []
        current = {**states, **{t.state.fingerprint: t.state for t in transitions}}
        notified = {t.state.fingerprint for t in transitions if t.notify}
        last = evaluation.last_notified([s.name for s in sinks])
        # A notification still waiting will carry the state; queueing more would only
        # supersede it (and pile up rows during an outage).
        waiting = evaluation.pending_notifications([s.name for s in sinks])
        messages = []
        for fp, state in current.items():
            if state.phase is not Phase.FIRING or fp in notified:
                continue
            for sink in sinks:
                sent = last.get((fp, sink.name))
                if (
                    sink.takes(state.severity, state.labels)
                    and (fp, sink.name) not in waiting
                    and (sent is None or now - sent >= sink.resend_interval)
                ):
                    messages.append(self._message(sink, state, "firing", now))
        return messages

    def _numbered(
        self, evaluation: AlertEvaluation, messages: list[OutboxMessage]
    ) -> list[OutboxMessage]:
        """Give each alert's new notifications the next ``sequence`` (one number per
        alert and evaluation, shared by its sinks), in the payload too."""
        if not messages:
            return messages
        last = evaluation.notification_sequences(sorted({m.fingerprint for m in messages}))
        numbered = []
        for m in messages:
            sequence = last.get(m.fingerprint, 0) + 1
            payload = {**m.payload, "sequence": sequence}
            numbered.append(replace(m, sequence=sequence, payload=payload))
        return numbered

    def _message(
        self, sink: SinkConfig, state: AlertState, event: str, now: datetime
    ) -> OutboxMessage:
        message_id = new_message_id()
        payload = build_payload(message_id, state, event=event, at=now, public_url=self._public_url)
        return OutboxMessage(
            id=message_id,
            sink=sink.name,
            fingerprint=state.fingerprint,
            event=event,
            payload=payload,
            status=OutboxStatus.PENDING,
            attempts=0,
            created_at=now,
            next_attempt_at=now,
        )
