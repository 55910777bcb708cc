"""Outcome subscribers (a fleet's shard) get the typed records without the timeline rendering them;
event subscribers still see every event, rendered once, in subscription order."""

from __future__ import annotations

from typing import Any

from emulator.ota.actions import QuerySent
from emulator.ota.timeline import render
from emulator.runtime.clock import VirtualClock
from emulator.runtime.events import Event, EventBus, EventCollector

DEVICE = 0x00DB1234567890A4


def test_outcome_subscriber_alone_costs_no_rendering() -> None:
    clock = VirtualClock(12.5)
    bus = EventBus(clock)
    seen: list[tuple[float, int | None, Any]] = []
    bus.subscribe_outcomes(lambda time, device, outcome: seen.append((time, device, outcome)))
    rendered: list[Any] = []

    def counting_render(outcome: Any) -> tuple[str, dict[str, Any]]:
        rendered.append(outcome)
        return render(outcome)

    record = QuerySent(DEVICE, 0xACDC0001)
    bus.report("ppmid", DEVICE, record, counting_render)
    bus.emit("ppmid", "device_started", DEVICE)  # a plain event: not for outcome subscribers
    assert seen == [(12.5, DEVICE, record)]
    assert rendered == []
    assert bus.active


def test_both_kinds_in_subscription_order_and_rendered_once() -> None:
    bus = EventBus(VirtualClock())
    order: list[str] = []
    collector = EventCollector()
    bus.subscribe(lambda event: order.append(f"first:{event.event}"))
    bus.subscribe_outcomes(lambda _time, _device, outcome: order.append(f"outcome:{type(outcome).__name__}"))
    bus.subscribe(collector)
    calls: list[Any] = []

    def counting_render(outcome: Any) -> tuple[str, dict[str, Any]]:
        calls.append(outcome)
        return render(outcome)

    record = QuerySent(DEVICE, 0xACDC0001)
    bus.report("ppmid", DEVICE, record, counting_render)
    assert order == ["first:query_sent", "outcome:QuerySent"]
    assert len(calls) == 1
    [event] = collector.events
    assert isinstance(event, Event) and event.outcome is record
    assert event.fields == {"current_file_version": "ACDC0001"}


def test_unsubscribing_an_event_subscriber_stops_both_paths() -> None:
    bus = EventBus(VirtualClock())
    collector = EventCollector()
    bus.subscribe(collector)
    bus.unsubscribe(collector)
    bus.report("ppmid", DEVICE, QuerySent(DEVICE, 1), render)
    bus.emit("ppmid", "device_started", DEVICE)
    assert collector.events == [] and not bus.active
