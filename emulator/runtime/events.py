"""The timeline: every layer reports what a user would want in a log as an :class:`Event`.

Printers (human text, JSON lines), collectors in tests and progress displays subscribe; the
engines themselves never print. An event with no subscriber costs one attribute check.

The timeline is for people: an event rendered from a typed outcome record (the OTA engines',
see :mod:`emulator.ota.actions`) carries that record as ``outcome``, and whoever decides
something matches on the record, never on ``event`` or ``fields``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, TextIO

from emulator.eui64 import format_eui64
from emulator.runtime.clock import Clock

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Event:
    time: float
    source: str
    event: str
    device: int | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    outcome: Any = field(default=None, compare=False, repr=False)  # the typed record, if any

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "time": round(self.time, 6),
            "source": self.source,
            "event": self.event,
            "device": format_eui64(self.device) if self.device is not None else None,
        }
        out.update(self.fields)
        return out


Subscriber = Callable[[Event], None]
OutcomeSubscriber = Callable[[float, "int | None", Any], None]
"""Called with the time, the device and the typed outcome record: for deciders (a fleet's
shard) that never read the rendered name and fields, so nothing is rendered for them."""

Render = Callable[[Any], tuple[str, dict[str, Any]]]


class EventBus:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        # Subscribers in the order they came, each with whether it takes rendered events; an
        # outcome record reaches them all in that order, rendered only if one of them reads it.
        self._entries: list[tuple[Callable[..., None], bool]] = []
        self._subscribers: list[Subscriber] = []  # those that take events

    def subscribe(self, subscriber: Subscriber) -> None:
        self._entries.append((subscriber, True))
        self._subscribers.append(subscriber)

    def subscribe_outcomes(self, subscriber: OutcomeSubscriber) -> None:
        """``subscriber(time, device, outcome)`` for every event that carries a typed outcome
        record (:meth:`report`), never for plain events (:meth:`emit`)."""
        self._entries.append((subscriber, False))

    def unsubscribe(self, subscriber: Subscriber) -> None:
        for i, (fn, _takes_events) in enumerate(self._entries):
            if fn == subscriber:
                del self._entries[i]
                break
        else:
            raise ValueError(f"{subscriber!r} is not subscribed")
        if subscriber in self._subscribers:
            self._subscribers.remove(subscriber)

    @property
    def active(self) -> bool:
        """Someone listens to outcome records (rendered or not)."""
        return bool(self._entries)

    def emit(self, source: str, event: str, device: int | None = None, **fields: Any) -> None:
        if not self._subscribers:
            return
        ev = Event(self.clock.now(), source, event, device, fields)
        for subscriber in self._subscribers:
            subscriber(ev)

    def publish(self, source: str, event: str, device: int | None, fields: dict[str, Any], outcome: Any) -> None:
        """An event rendered from the typed ``outcome`` record it carries."""
        if self._entries:
            self.report(source, device, outcome, lambda _outcome: (event, fields))

    def report(self, source: str, device: int | None, outcome: Any, render: Render) -> None:
        """The typed ``outcome`` record; ``render(outcome)`` gives its event name and fields,
        called only if a subscriber takes rendered events."""
        entries = self._entries
        if not entries:
            return
        now = self.clock.now()
        ev: Event | None = None
        for subscriber, takes_events in entries:
            if not takes_events:
                subscriber(now, device, outcome)
                continue
            if ev is None:
                name, fields = render(outcome)
                ev = Event(now, source, name, device, fields, outcome)
            subscriber(ev)


class EventCollector:
    """Keeps every event; handy for tests and summaries."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def named(self, name: str, device: int | None = None) -> list[Event]:
        return [e for e in self.events if e.event == name and (device is None or e.device == device)]


class JsonLinesPrinter:
    """One JSON object per line."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def __call__(self, event: Event) -> None:
        self.stream.write(json.dumps(event.to_dict(), sort_keys=False) + "\n")


class TimelinePrinter:
    """Human-readable timeline: ``  12.345 s  comms_hub  transfer_started  00-DB-…  key=value``."""

    def __init__(self, stream: TextIO, *, skip: frozenset[str] = frozenset({"transfer_progress"})) -> None:
        self.stream = stream
        self.skip = skip

    def __call__(self, event: Event) -> None:
        if event.event in self.skip:
            return
        device = format_eui64(event.device) if event.device is not None else "-"
        extras = "  ".join(f"{k}={_fmt(v)}" for k, v in event.fields.items())
        self.stream.write(
            f"{event.time:10.3f} s  {event.source:<10} {event.event:<24} {device:<23} {extras}".rstrip() + "\n"
        )


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)
