"""Scheduled slots that fell due while the store did not answer.

The scheduler fires in memory, so a slot is seen on time even when its run cannot be
created. It is kept here (at most ``MAX_KEPT`` per suite x model: the oldest beyond that
is skipped) until the store answers, and then each is either created, oldest first, or
skipped because it is later than its suite's ``misfire_grace`` by then.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from datetime import datetime

from monitor.config import AnyModelConfig, SuiteConfig

MAX_KEPT = 100
"""Slots kept per suite x model during an outage."""

Slot = tuple[SuiteConfig, AnyModelConfig, datetime]
Skip = Callable[[SuiteConfig, AnyModelConfig], None]


class MissedSlots:
    """Slots of every suite x model waiting for the store, in the order they fell due."""

    def __init__(self, on_overflow: Skip) -> None:
        self._kept: dict[tuple[str, str], deque[Slot]] = {}
        self._on_overflow = on_overflow

    def __len__(self) -> int:
        return sum(len(kept) for kept in self._kept.values())

    def keep(self, suite: SuiteConfig, model: AnyModelConfig, at: datetime) -> None:
        kept = self._kept.setdefault((suite.name, model.name), deque())
        if len(kept) >= MAX_KEPT:
            kept.popleft()
            self._on_overflow(suite, model)
        kept.append((suite, model, at))

    def take(self, now: datetime) -> tuple[list[Slot], list[Slot]]:
        """Every kept slot, oldest first, split into those still within their suite's
        ``misfire_grace`` at ``now`` and those past it; none is kept any longer."""
        slots = sorted((s for kept in self._kept.values() for s in kept), key=lambda s: s[2])
        self._kept.clear()
        due: list[Slot] = []
        late: list[Slot] = []
        for slot in slots:
            suite, _, at = slot
            grace = suite.schedule.misfire_grace if suite.schedule else None
            (due if grace is not None and now - at <= grace else late).append(slot)
        return due, late
