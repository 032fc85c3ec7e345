"""The alert state machine: ``inactive -> pending -> firing -> resolved``, per fingerprint.

Pure and deterministic: ``evaluate(rules, states, event)`` takes the stored states and
one event and returns the transitions to store, each saying whether to notify. The
caller writes the new states and their notifications in one transaction, so a crash
either keeps both or neither, and a restart resumes from the stored states: a firing
alert is neither re-fired nor forgotten.

    pending:  the condition holds, but not yet for ``for`` (evaluations or a duration;
              a stream window seen again counts once)
    firing:   it has held long enough; notified once, again every ``repeat_interval``
    resolved: it stopped holding after firing; notified if ``send_resolved``
    inactive: it stopped holding before it ever fired (nothing was sent)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from monitor.alerts.events import Event, Tick, event_time
from monitor.alerts.rules import Observation, observe
from monitor.config.alerts import RuleConfig

Notify = Literal["firing", "resolved"]


class Phase(StrEnum):
    """Where one alert is in its life."""

    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class AlertState:
    """The stored state of one alert (one fingerprint)."""

    fingerprint: str
    rule: str
    labels: dict[str, str]
    phase: Phase
    count: int
    active_since: datetime | None
    fired_at: datetime | None
    resolved_at: datetime | None
    notified_at: datetime | None
    updated_at: datetime
    summary: str = ""
    value: float | None = None
    threshold: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)

    @property
    def severity(self) -> str:
        return self.labels.get("severity", "warning")


@dataclass(frozen=True, slots=True)
class Transition:
    """A new state to store, and what (if anything) to notify about it."""

    state: AlertState
    previous: Phase
    notify: Notify | None = None

    @property
    def phase_changed(self) -> bool:
        return self.state.phase is not self.previous


def fingerprint(labels: Mapping[str, str]) -> str:
    """A stable identity from an alert's labels (their order does not matter)."""
    text = json.dumps(dict(sorted(labels.items())), separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def evaluate(
    rules: Sequence[RuleConfig], states: Mapping[str, AlertState], event: Event
) -> list[Transition]:
    """Every transition ``event`` causes. States not mentioned stay as they are."""
    now = event_time(event)
    transitions: list[Transition] = []
    seen: set[str] = set()
    for rule in rules:
        for obs in observe(rule, event):
            fp = fingerprint(obs.labels)
            seen.add(fp)
            t = step(rule, states.get(fp), obs, now, fp)
            if t is not None:
                transitions.append(t)
    if isinstance(event, Tick):
        by_name = {r.name: r for r in rules}
        for fp, state in states.items():
            owner = by_name.get(state.rule)
            if fp in seen:
                continue
            t = repeat_due(owner, state, now) if owner is not None else orphaned(state, now)
            if t is not None:
                transitions.append(t)
    return transitions


def orphaned(state: AlertState, now: datetime) -> Transition | None:
    """An alert whose rule left the configuration: resolve it (notifying, so receivers do
    not keep it open forever) or, if it never fired, let it go quietly."""
    facts: dict[str, Any] = {"count": 0, "active_since": None, "updated_at": now}
    summary = f"{state.summary} (resolved: rule {state.rule!r} is no longer configured)"
    if state.phase is Phase.FIRING:
        resolved = replace(
            state, phase=Phase.RESOLVED, resolved_at=now, notified_at=now, summary=summary, **facts
        )
        return Transition(resolved, state.phase, "resolved")
    if state.phase is Phase.PENDING:
        return Transition(replace(state, phase=Phase.INACTIVE, **facts), state.phase)
    return None


def step(
    rule: RuleConfig, prev: AlertState | None, obs: Observation, now: datetime, fp: str
) -> Transition | None:
    """The transition of one alert on one observation, or ``None`` if nothing changes."""
    phase = prev.phase if prev is not None else Phase.INACTIVE
    facts: dict[str, Any] = {
        "summary": obs.summary,
        "value": obs.value,
        "threshold": obs.threshold,
        "details": obs.details,
        "links": obs.links,
        "labels": obs.labels,
        "updated_at": now,
    }
    if not obs.active:
        if phase is Phase.PENDING:
            assert prev is not None
            state = replace(prev, phase=Phase.INACTIVE, count=0, active_since=None, **facts)
            return Transition(state, phase)
        if phase is Phase.FIRING:
            assert prev is not None
            state = replace(
                prev, phase=Phase.RESOLVED, count=0, active_since=None, resolved_at=now, **facts
            )
            if rule.send_resolved:
                state = replace(state, notified_at=now)
            return Transition(state, phase, "resolved" if rule.send_resolved else None)
        return None
    if phase is Phase.FIRING:
        assert prev is not None
        state = replace(prev, count=prev.count + 1, **facts)
        if _repeat_is_due(rule, prev, now):
            return Transition(replace(state, notified_at=now), phase, "firing")
        return Transition(state, phase)
    if phase is Phase.PENDING and prev is not None:
        # A window seen again (re-scored as its labels arrive) is one window, not another
        # evaluation in a row: ``for = 3`` waits for three windows.
        window = obs.details.get("window")
        again = window is not None and window == prev.details.get("window")
        count, since = prev.count + (0 if again else 1), prev.active_since or now
    else:
        count, since = 1, now
    base = AlertState(
        fingerprint=fp,
        rule=rule.name,
        labels=obs.labels,
        phase=Phase.PENDING,
        count=count,
        active_since=since,
        fired_at=None,
        resolved_at=prev.resolved_at if prev is not None else None,
        notified_at=prev.notified_at if prev is not None else None,
        updated_at=now,
    )
    state = replace(base, **{k: v for k, v in facts.items() if k != "labels"})
    if count >= rule.for_count and now - since >= rule.for_duration:
        fired = replace(state, phase=Phase.FIRING, fired_at=now, resolved_at=None, notified_at=now)
        return Transition(fired, phase, "firing")
    return Transition(state, phase)


def repeat_due(rule: RuleConfig, state: AlertState, now: datetime) -> Transition | None:
    """On a timer tick: re-notify a firing alert whose ``repeat_interval`` has passed."""
    if state.phase is not Phase.FIRING or not _repeat_is_due(rule, state, now):
        return None
    return Transition(replace(state, notified_at=now, updated_at=now), state.phase, "firing")


def _repeat_is_due(rule: RuleConfig, state: AlertState, now: datetime) -> bool:
    if rule.repeat_interval is None or state.notified_at is None:
        return False
    return now - state.notified_at >= rule.repeat_interval
