"""Deadlines for many pieces of open work on one clock timer: the DSP's command deadlines.

Every 11.2/11.3 the DSP forwards must be answered within the command deadline (2 h by
default). A clock timer per command would keep one timer per request for those 2 hours whether
or not its device answered at once: under a steady 500 SR/s that is millions of timers, all in
the event loop's heap (memory, and a slower push for every other timer). Here the deadlines
wait in a dict in the order they were added, the one timer is armed for the first of them, and
a command answered in time is simply discarded. Deadlines added in time order (accepted + a
fixed span) are the rule; one earlier than the last added (the span was shortened, or recovery
re-arms old commands) gets a timer of its own.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from emulator.runtime.clock import Clock, Timer


class DeadlineQueue:
    """``on_due(key)`` for each key added and not discarded, once the clock reaches its time."""

    def __init__(self, clock: Clock, on_due: Callable[[str], object]) -> None:
        self._clock = clock
        self._on_due = on_due
        self._due: dict[str, float] = {}  # key -> clock time, in the order added (nondecreasing)
        self._last = -math.inf
        self._timer: Timer | None = None

    def __len__(self) -> int:
        return len(self._due)

    def add(self, key: str, at: float) -> None:
        """Call ``on_due(key)`` at clock time ``at`` (at once if it has passed)."""
        if at < self._last:  # out of order: its own timer (on_due of a settled key does nothing)
            self._clock.call_later(max(0.0, at - self._clock.now()), self._on_due, key)
            return
        self._due.pop(key, None)
        self._due[key] = at
        self._last = at
        if self._timer is None:
            self._arm(at)

    def discard(self, key: str) -> None:
        """``key`` was settled: no call for it (its place in the timer is simply skipped)."""
        self._due.pop(key, None)

    def _arm(self, at: float) -> None:
        self._timer = self._clock.call_later(max(0.0, at - self._clock.now()), self._fire)

    def _fire(self) -> None:
        self._timer = None
        now = self._clock.now()
        due = self._due
        while due:
            key = next(iter(due))
            at = due[key]
            if at > now:
                self._arm(at)
                return
            del due[key]
            self._on_due(key)
