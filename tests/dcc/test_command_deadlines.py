"""Command deadlines (E20 after ``serve --command-deadline``) on one clock timer, not one a request."""

from __future__ import annotations

from pathlib import Path

from emulator.dcc.deadlines import DeadlineQueue
from emulator.dcc.premises import ESME_ID
from emulator.dcc.service_requests import ReadFirmwareVersion
from emulator.runtime.clock import VirtualClock
from test_recovery import Process, header


def test_due_keys_are_called_at_their_time_and_discarded_ones_never() -> None:
    clock = VirtualClock()
    called: list[tuple[float, str]] = []
    queue = DeadlineQueue(clock, lambda key: called.append((clock.now(), key)))
    for n in range(100):
        queue.add(f"r{n}", 10.0 + n)
        if n % 10:
            queue.discard(f"r{n}")
    assert clock.pending == 1  # one timer for all of them
    queue.add("late", 5.0)  # earlier than the last added: a timer of its own
    clock.run(until=200.0)
    assert called == [(5.0, "late")] + [(10.0 + n, f"r{n}") for n in range(0, 100, 10)]
    assert len(queue) == 0 and clock.pending == 0


def test_answered_reads_leave_no_timers_and_an_unanswered_one_still_gets_e20(tmp_path: Path) -> None:
    """2,000 11.2s answered at once keep no timer each for the 2-hour deadline (a timer a
    request was millions of timers under load); the one the ESME never answers is still E20."""
    held: dict = {}
    dsp_life = Process(tmp_path / "dsp.db", held, command_deadline=7200.0)
    clock = dsp_life.clock
    for n in range(1, 2001):
        assert dsp_life.system.submit(ReadFirmwareVersion(header("11.2", n, ESME_ID), ESME_ID)).response_code == "I99"
        clock.run(until=clock.now() + 1.0)
    answered = [m for m in held.values() if m.code == "11.2" and m.details.get("response_code") != "E20"]
    assert len(answered) == 2000
    assert clock.pending < 50
    for site in dsp_life.system.premises.values():
        site.devices[ESME_ID].power_off()
    silent = ReadFirmwareVersion(header("11.2", 5000, ESME_ID), ESME_ID)
    assert dsp_life.system.submit(silent).response_code == "I99"
    clock.run(until=clock.now() + 7300.0)
    e20 = [m for m in held.values() if m.details.get("response_code") == "E20"]
    assert [m.request_id for m in e20] == [silent.header.request_id]
