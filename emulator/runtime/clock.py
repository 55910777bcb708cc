"""Clocks: the only way any layer waits.

Protocol engines never sleep; they ask the clock for a timer. A :class:`VirtualClock` is a
discrete-event scheduler, so a 30-minute silent phase costs no wall time and two runs with the
same inputs give the same timeline. An :class:`AsyncioClock` maps the same calls onto a running
event loop for real radios and the HTTP front door.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import math
from typing import Any, Callable, Final, Protocol

_LOGGER = logging.getLogger(__name__)

# Module constants, not heapq.<name> at each call: the compiled build (docs/fleet.md) reads a Final
# from a C static instead of looking the function up on the module, twice per frame.
_heappush: Final = heapq.heappush
_heappop: Final = heapq.heappop


class Timer(Protocol):
    """A scheduled callback that can be cancelled before it fires."""

    def cancel(self) -> None: ...


class Clock(Protocol):
    """What every layer may ask of time."""

    def now(self) -> float:
        """Seconds since the clock's epoch (0 for a virtual clock)."""
        ...

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> Timer:
        """Run ``callback(*args)`` after ``delay`` seconds."""
        ...


class _VirtualTimer:
    __slots__ = ("when", "seq", "callback", "args", "cancelled", "fired")

    def __init__(self, when: float, seq: int, callback: Callable[..., Any], args: tuple[Any, ...]):
        self.when = when
        self.seq = seq
        self.callback = callback
        self.args = args
        self.cancelled = False
        self.fired = False

    def cancel(self) -> None:
        self.cancelled = True

    def __lt__(self, other: "_VirtualTimer") -> bool:
        return (self.when, self.seq) < (other.when, other.seq)


# The heap holds ``(when, seq, timer)`` tuples: tuple comparison runs in C, which matters when a
# fleet pushes millions of timers (a Python ``__lt__`` was the top entry of the fleet profile).
_Entry = tuple[float, int, _VirtualTimer]


class VirtualClock:
    """Deterministic discrete-event scheduler.

    Callbacks due at the same instant run in the order they were scheduled. Nothing runs until
    :meth:`run` (or :meth:`advance`) is called, so a test controls time completely.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._queue: list[_Entry] = []
        self._seq = itertools.count()
        self._stopped = False
        self.callbacks_run = 0

    def now(self) -> float:
        return self._now

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> _VirtualTimer:
        if delay < 0:
            delay = 0.0
        when = self._now + delay
        seq = next(self._seq)
        timer = _VirtualTimer(when, seq, callback, args)
        _heappush(self._queue, (when, seq, timer))
        return timer

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any) -> _VirtualTimer:
        """Run ``callback(*args)`` at clock time ``when`` exactly (no ``now + delay`` rounding):
        the fast path schedules what the per-frame path would have scheduled at that instant."""
        if when < self._now:
            when = self._now
        seq = next(self._seq)
        timer = _VirtualTimer(when, seq, callback, args)
        _heappush(self._queue, (when, seq, timer))
        return timer

    def call_soon(self, callback: Callable[..., Any], *args: Any) -> _VirtualTimer:
        return self.call_later(0.0, callback, *args)

    @property
    def pending(self) -> int:
        """Timers still scheduled (cancelled ones included until they are popped)."""
        return sum(1 for entry in self._queue if not entry[2].cancelled)

    def next_deadline(self) -> float | None:
        while self._queue and self._queue[0][2].cancelled:
            _heappop(self._queue)
        return self._queue[0][0] if self._queue else None

    def run(self, until: float | None = None, max_callbacks: int | None = None) -> int:
        """Run callbacks in time order until none is left (or ``until`` is reached).

        Returns how many callbacks ran. With ``until`` the clock ends exactly at ``until``.
        """
        ran = 0
        queue = self._queue
        pop = _heappop
        self._stopped = False
        while queue and not self._stopped:
            when = queue[0][0]
            if until is not None and when > until:
                break
            timer = pop(queue)[2]
            if timer.cancelled:
                continue
            if when > self._now:
                self._now = when
            timer.fired = True
            timer.callback(*timer.args)
            ran += 1
            if max_callbacks is not None and ran >= max_callbacks:
                break
        if (until is not None and until > self._now and not self._stopped
                and (max_callbacks is None or ran < max_callbacks)):
            self._now = until
        self.callbacks_run += ran
        return ran

    def stop(self) -> None:
        """Make the current :meth:`run` return after the callback that is running."""
        self._stopped = True

    def advance(self, seconds: float) -> int:
        """Move time forward by ``seconds``, running everything that falls due."""
        return self.run(until=self._now + seconds)


class PremisesClock:
    """One premises' view of a shared :class:`VirtualClock`: the same time and the same queue,
    but it also knows the earliest of the timers scheduled through it (:meth:`horizon`).

    Premises never interact, so nothing that happens in one premises before its horizon can be
    changed by anything else: the HAN fast path (docs/fleet.md) may advance a transfer up to
    there in one go and still give the per-frame timeline."""

    __slots__ = ("_clock", "_mine")

    def __init__(self, clock: VirtualClock) -> None:
        self._clock = clock
        self._mine: list[_Entry] = []

    def now(self) -> float:
        return self._clock._now

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> _VirtualTimer:
        timer = self._clock.call_later(delay, callback, *args)
        _heappush(self._mine, (timer.when, timer.seq, timer))
        return timer

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any) -> _VirtualTimer:
        timer = self._clock.call_at(when, callback, *args)
        _heappush(self._mine, (timer.when, timer.seq, timer))
        return timer

    def call_soon(self, callback: Callable[..., Any], *args: Any) -> _VirtualTimer:
        return self.call_later(0.0, callback, *args)

    def horizon(self, ignore: object = None) -> float:
        """The time of this premises' next pending timer (infinity if none), leaving out the
        timer ``ignore`` (the fast path: a client's response timer that the segment re-arms)."""
        mine = self._mine
        while mine and (mine[0][2].fired or mine[0][2].cancelled):
            _heappop(mine)
        if not mine:
            return math.inf
        if mine[0][2] is not ignore or ignore is None:
            return mine[0][0]
        top = _heappop(mine)
        while mine and (mine[0][2].fired or mine[0][2].cancelled):
            _heappop(mine)
        horizon = mine[0][0] if mine else math.inf
        _heappush(mine, top)
        return horizon


class AsyncioClock:
    """Real time on the running asyncio loop; :meth:`now` counts from construction."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop or asyncio.get_running_loop()
        self._epoch = self._loop.time()

    def now(self) -> float:
        return self._loop.time() - self._epoch

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> asyncio.TimerHandle:
        return self._loop.call_later(max(delay, 0.0), callback, *args)

    def call_soon(self, callback: Callable[..., Any], *args: Any) -> asyncio.Handle:
        return self._loop.call_soon(callback, *args)
