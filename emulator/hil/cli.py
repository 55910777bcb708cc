"""``ch-emulator hil check BENCH`` and ``ch-emulator hil run BENCH SCENARIO``.

Results go to stdout as JSON lines (one per finding, or one per timeline event and a summary);
``--junit FILE`` also writes JUnit XML for CI. Exit code 0 when everything passed, 1 when
something did not, 2 for a mistake in the bench or scenario file.
"""

from __future__ import annotations

import argparse
import dataclasses
import asyncio
import json
import sys
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("hil", help="hardware-in-the-loop bench: a real EZSP dongle and devices (docs/hil.md)")
    sub = parser.add_subparsers(dest="hil_command", metavar="ACTION", required=True)
    check = sub.add_parser("check", help="open the dongle, compare its network with the bench, probe each device")
    check.add_argument("bench", metavar="BENCH", help="bench file (TOML, docs/hil.md)")
    check.add_argument("--junit", metavar="FILE", help="also write the findings as JUnit XML")
    check.set_defaults(func=check_command)
    run = sub.add_parser("run", help="play a scenario with its hub on the bench dongle and the bench devices real")
    run.add_argument("bench", metavar="BENCH", help="bench file (TOML, docs/hil.md)")
    run.add_argument("scenario", metavar="SCENARIO", help="scenario file (TOML, docs/scenarios.md)")
    run.add_argument("--junit", metavar="FILE", help="also write one test case per expectation as JUnit XML")
    run.add_argument("--pcap", metavar="FILE", help="write the frames the hub sends and receives to a pcap file")
    run.set_defaults(func=run_command)


def _bench(path: str) -> Any:
    from emulator.errors import UserError

    from .bench import BenchError, load_bench

    try:
        return load_bench(path)
    except BenchError as exc:
        raise UserError(str(exc)) from None


def _write_junit(path: str | None, suite: str, cases: list[Any], classname: str) -> None:
    if not path:
        return
    from emulator.errors import UserError

    from .report import write_junit

    try:
        write_junit(path, suite, cases, classname=classname)
    except OSError as exc:
        raise UserError(f"cannot write JUnit report {path}: {exc.strerror}") from None


def check_command(args: argparse.Namespace) -> int:
    from .check import check_bench
    from .report import Case

    bench = _bench(args.bench)
    findings = asyncio.run(check_bench(bench))
    for finding in findings:
        print(json.dumps(finding.to_dict()), flush=True)
    ok = all(f.ok for f in findings)
    print(json.dumps({"event": "hil_check_summary", "bench": bench.name, "ok": ok,
                      "passed": sum(f.ok for f in findings), "failed": sum(not f.ok for f in findings)}))
    _write_junit(args.junit, f"hil check {bench.name}",
                 [Case(f.item, f.ok, f.message, f.duration_s) for f in findings], "hil.check")
    return 0 if ok else 1


def run_command(args: argparse.Namespace) -> int:
    from emulator.errors import UserError
    from emulator.han.transport import TransportError
    from emulator.runtime.events import JsonLinesPrinter
    from emulator.scenario.runner import RadioScenarioRun
    from emulator.scenario.spec import ScenarioError, load_scenario

    from .bench import BenchError
    from .radios import BenchRadios, bench_premises
    from .report import Case

    bench = _bench(args.bench)
    try:
        scenario = load_scenario(args.scenario)
        bench_premises(bench, scenario)
    except (ScenarioError, BenchError) as exc:
        raise UserError(str(exc)) from None
    if scenario.han_security.enabled:  # the bench's install codes and hub identity for CBKE
        codes = {d.eui64: d.install_code for d in bench.devices if d.install_code is not None}
        scenario.han_security = dataclasses.replace(
            scenario.han_security, install_codes={**codes, **scenario.han_security.install_codes},
            hub_identity=bench.hub_identity or scenario.han_security.hub_identity)
    run = RadioScenarioRun(scenario, BenchRadios(bench, scenario), observers=[JsonLinesPrinter(sys.stdout)],
                           pcap=args.pcap)
    try:
        result = asyncio.run(run.run())
    except (TransportError, asyncio.TimeoutError) as exc:
        raise UserError(f"bench dongle {bench.dongle.path}: {exc or 'no answer within the timeout'}") from None
    except OSError as exc:
        if args.pcap and exc.filename == args.pcap:
            raise UserError(f"cannot write capture {args.pcap}: {exc.strerror}") from None
        raise
    summary = result.summary()
    summary["bench"] = bench.name
    print(json.dumps(summary))
    cases = [Case(f"expect {text}", True) for text in result.met]
    cases += [Case(f"expect {text}", False, "not seen before the run ended") for text in result.unmet]
    cases += [Case(f"expect {text}", False, "seen, but the scenario says it must not happen") for text in result.violated]
    cases.append(Case("requests sent", result.requests_sent == result.requests_total,
                      f"{result.requests_sent}/{result.requests_total} requests sent", result.wall_s))
    _write_junit(args.junit, f"hil run {bench.name} {scenario.name}", cases, "hil.run")
    return 0 if result.ok else 1
