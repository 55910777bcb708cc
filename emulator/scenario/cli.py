"""``ch-emulator run SCENARIO`` and ``ch-emulator demo`` (the built-in demo scenario)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from emulator.runtime.events import JsonLinesPrinter, TimelinePrinter

from .backends import HAN_BACKENDS, HanOptions, han_backend
from .timing_option import add_timing_option, apply_timing_option

DEMO_SCENARIO = Path(__file__).resolve().parent / "scenarios" / "demo.toml"


def register(subparsers: Any) -> None:
    run = subparsers.add_parser("run", help="play a scenario file (TOML) in virtual time")
    run.add_argument("scenario", metavar="SCENARIO", help="scenario file (see docs/scenarios.md)")
    _common(run)
    run.add_argument("--junit", metavar="FILE", help="also write one test case per expectation as JUnit XML "
                     "(exit code 1 when one is unmet, or the scenario states none)")
    run.set_defaults(func=run_command)
    demo = subparsers.add_parser("demo", help="play the seed flow end to end on the virtual HAN")
    _common(demo)
    demo.set_defaults(func=demo_command, scenario=str(DEMO_SCENARIO))


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="one JSON object per event and line")
    parser.add_argument("--pcap", metavar="FILE", help="write every HAN frame to a pcap file (Wireshark)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: the scenario's)")
    add_timing_option(parser)
    parser.add_argument("--han", choices=tuple(HAN_BACKENDS), default="virtual",
                        help="virtual: virtual time on a virtual HAN (default); ezsp-sim: real time, each hub "
                             "on bellows through its own emulated EZSP dongle (docs/ezsp.md)")
    parser.add_argument("--ezsp-version", type=int, choices=(8, 13), default=8,
                        help="EZSP version of the emulated dongles with --han ezsp-sim (default 8)")


def demo_command(args: argparse.Namespace) -> int:
    return run_command(args)


def run_command(args: argparse.Namespace) -> int:
    from emulator.errors import UserError

    from .spec import ScenarioError, load_scenario

    try:
        scenario = load_scenario(args.scenario)
    except ScenarioError as exc:
        raise UserError(str(exc)) from None
    if args.seed is not None:
        scenario.seed = args.seed
    apply_timing_option(scenario, args)
    printer = JsonLinesPrinter(sys.stdout) if args.json else TimelinePrinter(sys.stdout)
    play = han_backend(getattr(args, "han", "virtual"))
    options = HanOptions(observers=[printer], pcap=args.pcap, ezsp_version=getattr(args, "ezsp_version", 8))
    try:
        result = play(scenario, options)
    except ScenarioError as exc:
        raise UserError(str(exc)) from None
    except OSError as exc:
        if args.pcap and exc.filename == args.pcap:
            raise UserError(f"cannot write capture {args.pcap}: {exc.strerror}") from None
        raise
    if args.json:
        print(json.dumps(result.summary()))
    else:
        _print_summary(result)
    junit = getattr(args, "junit", None)
    if junit:
        from .junit import write_junit

        try:
            write_junit(junit, result)
        except OSError as exc:
            raise UserError(f"--junit {junit}: cannot write: {exc.strerror}") from None
    return 0 if result.ok else 1


def _print_summary(result: Any) -> None:
    state = "OK" if result.ok else "FAILED"
    if result.han == "virtual":
        took = f"{result.simulated_s:.1f} s simulated in {result.wall_s:.2f} s wall time"
    else:
        took = f"{result.simulated_s:.1f} s in real time on {result.han} ({result.wall_s:.2f} s with radio start-up)"
    print(f"\n{result.scenario}: {state} — {result.requests_sent}/{result.requests_total} requests, "
          f"{result.frames} HAN frames, {took}")
    if result.alerts:
        print("alerts: " + ", ".join(f"{code}×{n}" for code, n in result.alerts.items()))
    for text in result.met:
        print(f"  met:      {text}")
    for text in result.unmet:
        print(f"  UNMET:    {text}")
    for text in result.violated:
        print(f"  VIOLATED: {text}")
