"""Keyed timers: setting a key again replaces its earlier timer.

Engines ask for timers by ``(device, kind)``; a retry timer re-armed on every request must not
leave stale ones behind, so the runtime keeps one timer per key. Re-arming is lazy: moving a
deadline later only records it, and the timer already in the clock re-arms itself for the rest
when it fires early. A response timer pushed back on every block thus costs the scheduler one
entry per timeout period instead of one per block.
"""

from __future__ import annotations

from typing import Any, Callable, Final, Hashable

from .clock import Clock, Timer

_EPSILON: Final = 1e-9


class _Entry:
    __slots__ = ("deadline", "due", "callback", "args", "timer")

    def __init__(self, deadline: float, callback: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.deadline = deadline
        self.due = deadline
        self.callback = callback
        self.args = args
        self.timer: Timer | None = None


class KeyedTimers:
    __slots__ = ("_clock", "_entries")  # two per premises of a fleet

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._entries: dict[Hashable, _Entry] = {}

    def set(self, key: Hashable, delay: float, callback: Callable[..., Any], *args: Any) -> None:
        """Run ``callback(*args)`` after ``delay`` seconds, replacing the key's earlier timer."""
        if delay < 0:
            delay = 0.0
        deadline = self._clock.now() + delay
        entry = self._entries.get(key)
        if entry is not None:
            entry.deadline = deadline
            entry.callback = callback
            entry.args = args
            if entry.due <= deadline + _EPSILON:
                return  # the armed timer fires first and re-arms for the rest
            assert entry.timer is not None
            entry.timer.cancel()
        else:
            entry = _Entry(deadline, callback, args)
            self._entries[key] = entry
        entry.due = deadline
        entry.timer = self._clock.call_later(delay, self._fire, key, entry)

    def set_at(self, key: Hashable, deadline: float, callback: Callable[..., Any], *args: Any) -> None:
        """As :meth:`set`, with the deadline given as a clock time (the fast path sets what a
        request sent earlier in virtual time would have set); needs a clock with ``call_at``."""
        entry = self._entries.get(key)
        if entry is not None:
            entry.deadline = deadline
            entry.callback = callback
            entry.args = args
            if entry.due <= deadline + _EPSILON:
                return
            assert entry.timer is not None
            entry.timer.cancel()
        else:
            entry = _Entry(deadline, callback, args)
            self._entries[key] = entry
        entry.due = deadline
        entry.timer = self._clock.call_at(deadline, self._fire, key, entry)  # type: ignore[attr-defined]

    def _fire(self, key: Hashable, entry: _Entry) -> None:
        if self._entries.get(key) is not entry:
            return
        now = self._clock.now()
        if now + _EPSILON < entry.deadline:
            entry.due = entry.deadline
            entry.timer = self._clock.call_later(entry.deadline - now, self._fire, key, entry)
            return
        del self._entries[key]
        entry.callback(*entry.args)

    def armed(self, key: Hashable) -> Timer | None:
        """The clock timer armed for ``key`` now (with lazy re-arming it may fire before the
        key's deadline, and then re-arms itself), or ``None``."""
        entry = self._entries.get(key)
        return None if entry is None else entry.timer

    def cancel(self, key: Hashable) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None and entry.timer is not None:
            entry.timer.cancel()

    def cancel_all(self) -> None:
        for entry in self._entries.values():
            if entry.timer is not None:
                entry.timer.cancel()
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
