"""Timing presets: how long the DCC side takes, so ``serve`` can stand in for DCC in timeout tests.

``instant`` (the default, for CI) keeps the fixed delays of :class:`~emulator.dcc.csp.CspPolicy`
and answers at once. ``realistic`` draws every delay from a range of :class:`TimingProfile`
(the ranges and their sources are in docs/dcc.md, "Timing"): the synchronous answer, the CSP's
checks, WAN delivery of an image with the CSP's retries, commands to a Comms Hub, messages back
from it, and the HAN per-frame latency. Draws come from seeded streams, one per kind of delay,
so the same seed gives the same delays whatever else the run does; they are applied on the
project's clock (virtual time in tests and ``run``, wall time in ``serve``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import math
import random
from dataclasses import dataclass
from typing import Any

from emulator.config import StrictTable
from emulator.runtime.clock import Clock


class TimingPreset(str, enum.Enum):
    INSTANT = "instant"
    REALISTIC = "realistic"


class DelayKind(enum.Enum):
    """One stream of draws; each has its own seeded generator."""

    SYNC_ANSWER = "sync_answer"
    CSP_CHECK = "csp_check"
    WAN_DELIVERY = "wan_delivery"
    WAN_RETRY = "wan_retry"
    WAN_COMMAND = "wan_command"
    WAN_UPSTREAM = "wan_upstream"
    HAN_FRAME = "han_frame"


@dataclass(frozen=True, slots=True)
class DelayRange:
    """Seconds, drawn uniformly from ``[low, high]``."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.low) and math.isfinite(self.high)) or not 0 <= self.low <= self.high:
            raise ValueError(f"expected [low, high] seconds with 0 <= low <= high, got [{self.low}, {self.high}]")

    def draw(self, rng: random.Random) -> float:
        return self.low if self.low == self.high else rng.uniform(self.low, self.high)

    def contains(self, seconds: float, slack: float = 1e-9) -> bool:
        return self.low - slack <= seconds <= self.high + slack


@dataclass(frozen=True, slots=True)
class TimingProfile:
    """The ranges of the ``realistic`` preset (defaults: docs/dcc.md, "Timing"); every field can
    be overridden in a scenario's ``[timing]`` table."""

    sync_answer_s: DelayRange = DelayRange(0.2, 2.5)
    csp_check_s: DelayRange = DelayRange(1.0, 10.0)
    wan_delivery_s: DelayRange = DelayRange(60.0, 900.0)
    wan_retry_probability: float = 0.1
    wan_retry_interval_s: DelayRange = DelayRange(60.0, 300.0)
    wan_max_retries: int = 3
    wan_command_s: DelayRange = DelayRange(2.0, 12.0)
    wan_upstream_s: DelayRange = DelayRange(2.0, 12.0)
    han_frame_latency_s: DelayRange = DelayRange(0.005, 0.030)

    def __post_init__(self) -> None:
        if not 0.0 <= self.wan_retry_probability < 1.0:
            raise ValueError(f"wan_retry_probability: expected a probability in [0, 1), got {self.wan_retry_probability}")
        if self.wan_max_retries < 0:
            raise ValueError(f"wan_max_retries: expected a whole number >= 0, got {self.wan_max_retries}")

    def wan_delivery_bounds(self) -> DelayRange:
        """From the CSP's checks passing to the image at the hub (or N60): every attempt may
        fail and be retried after an interval."""
        attempts = 1 + self.wan_max_retries
        return DelayRange(self.wan_delivery_s.low,
                          attempts * self.wan_delivery_s.high + self.wan_max_retries * self.wan_retry_interval_s.high)


    def longest_silence(self) -> float:
        """The longest the DCC side may stay silent between two steps of a flow (a run waits at
        least this long before it calls a scenario settled)."""
        return (self.csp_check_s.high + self.wan_delivery_bounds().high + self.wan_command_s.high
                + self.wan_upstream_s.high)


@dataclass(frozen=True, slots=True)
class TimingConfig:
    """A scenario's ``[timing]``: the preset and the ranges ``realistic`` uses."""

    preset: TimingPreset = TimingPreset.INSTANT
    profile: TimingProfile = TimingProfile()

    @property
    def realistic(self) -> bool:
        return self.preset is TimingPreset.REALISTIC

    def settle_after(self, settle_s: float) -> float:
        """``settle_s``, or with the realistic preset at least the longest silence it allows."""
        return max(settle_s, self.profile.longest_silence()) if self.realistic else settle_s

    def with_preset(self, preset: TimingPreset | str | None) -> "TimingConfig":
        """The same ranges with ``preset`` (``None``: unchanged), as ``--timing`` sets it."""
        if preset is None:
            return self
        return dataclasses.replace(self, preset=TimingPreset(preset))


_RANGES = tuple(f.name for f in dataclasses.fields(TimingProfile) if f.type in ("DelayRange", DelayRange))


def read_timing(table: StrictTable) -> TimingConfig:
    """A ``[timing]`` table: ``preset`` and any :class:`TimingProfile` field, ranges as
    ``[low, high]`` seconds. Every bad value is the table's error naming the key."""
    name = table.get("preset", str, TimingPreset.INSTANT.value)
    try:
        preset = TimingPreset(name)
    except ValueError:
        known = ", ".join(p.value for p in TimingPreset)
        raise table.fail("preset", f"unknown timing preset {name!r} (known: {known})") from None
    changes: dict[str, Any] = {}
    known_keys = ("preset",) + tuple(f.name for f in dataclasses.fields(TimingProfile))
    for key in table.data:
        if key not in known_keys:
            raise table.fail(key, f"unknown setting (known: {', '.join(known_keys)})")
    for key in _RANGES:
        if key in table.data:
            changes[key] = _range(table, key)
    probability = table.get("wan_retry_probability", float, None)
    if probability is not None:
        if not 0.0 <= probability < 1.0:
            raise table.fail("wan_retry_probability", f"expected a probability in [0, 1), got {probability!r}")
        changes["wan_retry_probability"] = probability
    retries = table.get("wan_max_retries", int, None)
    if retries is not None:
        if retries < 0:
            raise table.fail("wan_max_retries", f"expected a whole number >= 0, got {retries!r}")
        changes["wan_max_retries"] = retries
    table.done()
    return TimingConfig(preset, TimingProfile(**changes))


def _range(table: StrictTable, key: str) -> DelayRange:
    value = table.get(key, list)
    numbers = [v for v in value if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if len(value) != 2 or len(numbers) != 2:
        raise table.fail(key, f"expected [low, high] in seconds, got {value!r}")
    try:
        return DelayRange(float(numbers[0]), float(numbers[1]))
    except ValueError as exc:
        raise table.fail(key, str(exc)) from None


@dataclass(frozen=True, slots=True)
class WanOutcome:
    """One WAN delivery as the CSP plays it: when it ends, after how many attempts, and whether
    the image got there (all attempts failed: N60)."""

    delay: float
    attempts: int
    delivered: bool


class TimingDraws:
    """The delays of one run: ``profile``'s ranges drawn from streams seeded by ``seed``."""

    def __init__(self, profile: TimingProfile, seed: int) -> None:
        self.profile = profile
        self.seed = seed
        self._streams: dict[str, random.Random] = {}

    def _rng(self, stream: str) -> random.Random:
        rng = self._streams.get(stream)
        if rng is None:
            # A string seed is hashed with SHA-512 by random.seed: stable across processes.
            rng = self._streams[stream] = random.Random(f"ch-emulator timing {self.seed} {stream}")
        return rng

    def draw(self, kind: DelayKind) -> float:
        ranges = {
            DelayKind.SYNC_ANSWER: self.profile.sync_answer_s,
            DelayKind.CSP_CHECK: self.profile.csp_check_s,
            DelayKind.WAN_DELIVERY: self.profile.wan_delivery_s,
            DelayKind.WAN_RETRY: self.profile.wan_retry_interval_s,
            DelayKind.WAN_COMMAND: self.profile.wan_command_s,
            DelayKind.WAN_UPSTREAM: self.profile.wan_upstream_s,
            DelayKind.HAN_FRAME: self.profile.han_frame_latency_s,
        }
        return ranges[kind].draw(self._rng(kind.value))

    def wan_delivery(self) -> WanOutcome:
        """Attempts until one succeeds or ``wan_max_retries`` retries have failed."""
        rng = self._rng("wan_attempt")
        total = 0.0
        for attempt in range(1, self.profile.wan_max_retries + 2):
            total += self.draw(DelayKind.WAN_DELIVERY)
            if rng.random() >= self.profile.wan_retry_probability:
                return WanOutcome(total, attempt, True)
            if attempt <= self.profile.wan_max_retries:
                total += self.draw(DelayKind.WAN_RETRY)
        return WanOutcome(total, self.profile.wan_max_retries + 1, False)

    def han_frame_latency(self, premises_index: int) -> float:
        """The fixed-model HAN latency of premises ``premises_index`` (one draw per premises)."""
        return self.profile.han_frame_latency_s.draw(self._rng(f"han_frame {premises_index}"))


async def clock_sleep(clock: Clock, delay: float) -> None:
    """Wait ``delay`` seconds of ``clock`` (wall time on an AsyncioClock; on a VirtualClock the
    wait ends when the test runs the clock past it)."""
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def wake() -> None:
        if not future.done():
            future.set_result(None)

    clock.call_later(delay, wake)
    await future


class SyncAnswerHold:
    """Holds each synchronous DUIS answer for a drawn ``sync_answer_s`` before it is sent
    (``create_app(hold=...)``); the request has already been executed."""

    def __init__(self, clock: Clock, draws: TimingDraws) -> None:
        self._clock = clock
        self._draws = draws

    async def __call__(self, response: object) -> None:
        await clock_sleep(self._clock, self._draws.draw(DelayKind.SYNC_ANSWER))
