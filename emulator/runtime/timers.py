"""Keyed timers: setting a key again replaces its earlier timer.

Engines ask for timers by ``(device, kind)``; a retry timer re-armed on every request must not
leave stale ones behind, so the runtime keeps one timer per key.
"""

from __future__ import annotations

from typing import Any, Callable, Hashable

from .clock import Clock, Timer


class KeyedTimers:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._timers: dict[Hashable, Timer] = {}

    def set(self, key: Hashable, delay: float, callback: Callable[..., Any], *args: Any) -> None:
        old = self._timers.pop(key, None)
        if old is not None:
            old.cancel()
        self._timers[key] = self._clock.call_later(delay, self._fire, key, callback, args)

    def _fire(self, key: Hashable, callback: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self._timers.pop(key, None)
        callback(*args)

    def cancel(self, key: Hashable) -> None:
        old = self._timers.pop(key, None)
        if old is not None:
            old.cancel()

    def cancel_all(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()

    def __len__(self) -> int:
        return len(self._timers)
