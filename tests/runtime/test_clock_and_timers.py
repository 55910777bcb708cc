"""Virtual time and keyed timers: what every layer waits on."""

from __future__ import annotations

from emulator.runtime.clock import VirtualClock
from emulator.runtime.timers import KeyedTimers


def test_callbacks_run_in_time_order_and_same_instant_in_scheduling_order():
    clock = VirtualClock()
    seen: list[tuple[float, str]] = []
    for name, delay in (("c", 2.0), ("a", 1.0), ("b", 1.0)):
        clock.call_later(delay, lambda n=name: seen.append((clock.now(), n)))
    clock.run()
    assert seen == [(1.0, "a"), (1.0, "b"), (2.0, "c")]


def test_run_until_stops_at_the_limit_and_stop_ends_early():
    clock = VirtualClock()
    fired: list[float] = []
    clock.call_later(10.0, lambda: fired.append(clock.now()))
    clock.run(until=5.0)
    assert fired == [] and clock.now() == 5.0
    clock.call_later(1.0, clock.stop)
    clock.call_later(2.0, lambda: fired.append(clock.now()))
    clock.run()
    assert clock.now() == 6.0 and fired == []  # stopped before the 7.0 s callback
    clock.run()
    assert fired == [7.0, 10.0]


def test_an_hour_of_silence_costs_no_wall_time():
    clock = VirtualClock()
    clock.call_later(3600.0, clock.stop)
    assert clock.run() == 1 and clock.now() == 3600.0


def test_setting_a_key_again_moves_its_deadline_and_it_fires_once():
    clock = VirtualClock()
    timers = KeyedTimers(clock)
    fired: list[float] = []
    timers.set("response", 5.0, lambda: fired.append(clock.now()))
    for t in range(1, 20):  # pushed back every second, as a client re-arms per block
        clock.run(until=float(t))
        timers.set("response", 5.0, lambda: fired.append(clock.now()))
    clock.run()
    assert fired == [24.0]


def test_pushing_a_deadline_back_does_not_grow_the_schedule():
    clock = VirtualClock()
    timers = KeyedTimers(clock)
    for i in range(1000):
        clock.run(until=i * 0.01)
        timers.set("response", 5.0, lambda: None)
    assert clock.pending == 1


def test_an_earlier_deadline_replaces_a_later_one():
    clock = VirtualClock()
    timers = KeyedTimers(clock)
    fired: list[tuple[float, str]] = []
    timers.set("k", 10.0, lambda: fired.append((clock.now(), "late")))
    timers.set("k", 2.0, lambda: fired.append((clock.now(), "early")))
    clock.run()
    assert fired == [(2.0, "early")]


def test_cancel_and_cancel_all():
    clock = VirtualClock()
    timers = KeyedTimers(clock)
    fired: list[str] = []
    timers.set("a", 1.0, fired.append, "a")
    timers.set("b", 1.0, fired.append, "b")
    timers.cancel("a")
    clock.run()
    assert fired == ["b"]
    timers.set("c", 1.0, fired.append, "c")
    timers.cancel_all()
    clock.run()
    assert fired == ["b"] and len(timers) == 0
