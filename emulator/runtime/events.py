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


class EventBus:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.remove(subscriber)

    @property
    def active(self) -> bool:
        return bool(self._subscribers)

    def emit(self, source: str, event: str, device: int | None = None, **fields: Any) -> None:
        if not self._subscribers:
            return
        ev = Event(self.clock.now(), source, event, device, fields)
        for subscriber in self._subscribers:
            subscriber(ev)

    def publish(self, source: str, event: str, device: int | None, fields: dict[str, Any], outcome: Any) -> None:
        """An event rendered from the typed ``outcome`` record it carries."""
        if not self._subscribers:
            return
        ev = Event(self.clock.now(), source, event, device, fields, outcome)
        for subscriber in self._subscribers:
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
