"""``ch-emulator demo``: one premises on the virtual HAN, played end to end in virtual time.

The PPMID downloads the sample image and activates it at once; the ESME downloads its image and
keeps it pending until told to upgrade. Exit code 0 when both outcomes happened.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from typing import Any

from emulator.dcc.premises import ESME_ID, PPMID_ID, default_premises
from emulator.han.pcap import PcapWriter
from emulator.runtime.clock import VirtualClock
from emulator.runtime.events import Event, EventBus, JsonLinesPrinter, TimelinePrinter

from .premises import Premises
from .samples import load_sample, trusted_key

MAX_SIMULATED_S = 6 * 3600.0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("demo", help="play a firmware distribution end to end on the virtual HAN")
    parser.add_argument("--json", action="store_true", help="one JSON object per event and line")
    parser.add_argument("--pcap", metavar="FILE", help="write every HAN frame to a pcap file (Wireshark)")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the virtual HAN (default 1)")
    parser.set_defaults(func=run)


class _Outcome:
    """Watches the timeline and stops the clock once every device reached its end state."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.ppmid_activated: str | None = None
        self.esme_pending = False
        self.failures: list[str] = []

    def __call__(self, event: Event) -> None:
        if event.device == PPMID_ID and event.event == "firmware_activated":
            self.ppmid_activated = event.fields.get("firmware_version")
        elif event.device == ESME_ID and event.event == "waiting_for_upgrade_command":
            self.esme_pending = True
        elif event.event in ("transfer_failed", "timed_out", "firmware_activation_failed"):
            self.failures.append(f"{event.event} for {event.to_dict()['device']}")
        if (self.ppmid_activated and self.esme_pending) or self.failures:
            self.clock.stop()


def run(args: argparse.Namespace) -> int:
    from emulator.cli import UserError

    started = time.perf_counter()
    clock = VirtualClock()
    bus = EventBus(clock)
    bus.subscribe(JsonLinesPrinter(sys.stdout) if args.json else TimelinePrinter(sys.stdout))
    outcome = _Outcome(clock)
    bus.subscribe(outcome)
    try:
        ppmid_image = load_sample("PPMID", 0x0084)
        esme_image = load_sample("ESME", 0x0000)
    except FileNotFoundError as exc:
        raise UserError(str(exc)) from None
    premises = Premises(default_premises(), clock, bus, trusted_key=trusted_key(), seed=args.seed)
    with contextlib.ExitStack() as stack:
        if args.pcap:
            try:
                writer = stack.enter_context(PcapWriter(args.pcap, clock=clock.now))
            except OSError as exc:
                raise UserError(f"cannot write capture {args.pcap}: {exc.strerror}") from None
            premises.han.add_trace_hook(writer.hook)
        premises.start()
        premises.hub.distribute_image(ppmid_image, [PPMID_ID], activate_now=True, request_id="demo:11.4:1")
        premises.hub.distribute_image(esme_image, [ESME_ID], activate_now=False, request_id="demo:11.1:1")
        clock.run(until=MAX_SIMULATED_S)
    wall = time.perf_counter() - started
    ok = bool(outcome.ppmid_activated and outcome.esme_pending and not outcome.failures)
    summary = {
        "event": "demo_summary",
        "time": round(clock.now(), 3),
        "source": "demo",
        "device": None,
        "ok": ok,
        "ppmid_firmware_version": outcome.ppmid_activated,
        "esme_image_pending": outcome.esme_pending,
        "failures": outcome.failures,
        "frames": premises.han.frames_sent,
        "wall_s": round(wall, 3),
    }
    if args.json:
        import json

        print(json.dumps(summary))
    else:
        state = "OK" if ok else "FAILED"
        print(f"\ndemo {state}: PPMID runs {outcome.ppmid_activated or '-'}, ESME image pending: "
              f"{'yes' if outcome.esme_pending else 'no'}; {premises.han.frames_sent} HAN frames, "
              f"{clock.now():.1f} s simulated in {wall:.2f} s wall time")
        for failure in outcome.failures:
            print(f"  failure: {failure}")
    return 0 if ok else 1
