"""``ch-emulator submit REQUEST.xml …``: send DUIS requests from files.

With ``--url`` the files are POSTed to a running ``ch-emulator serve``; without it they are played
in-process, in virtual time, against the default premises (or ``--scenario``), one after the other
once the previous one has settled, and the whole timeline is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emulator.runtime.clock import VirtualClock
from emulator.runtime.events import EventBus, JsonLinesPrinter, TimelinePrinter

from .timing_option import add_timing_option, apply_timing_option

if TYPE_CHECKING:
    from .spec import Scenario
    from .system import DccSystem

SETTLE_S = 600.0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("submit", help="send DUIS request files (to a server, or played in-process)")
    parser.add_argument("requests", nargs="+", metavar="REQUEST.xml", help="DUIS request files, sent in order")
    parser.add_argument("--url", help="POST to this running server (e.g. http://127.0.0.1:8080/api/v1/serviceD)")
    parser.add_argument("--scenario", metavar="FILE", help="premises for an in-process run (default: RTDS premises)")
    parser.add_argument("--json", action="store_true", help="timeline as JSON lines")
    add_timing_option(parser)
    parser.set_defaults(func=submit_command)


def submit_command(args: argparse.Namespace) -> int:
    from emulator.errors import UserError
    from emulator.dcc.duis import DuisError, parse_request

    bodies: list[tuple[str, bytes]] = []
    for name in args.requests:
        try:
            bodies.append((name, Path(name).read_bytes()))
        except OSError as exc:
            raise UserError(f"{name}: cannot read: {exc.strerror}") from None
    if args.url:
        return asyncio.run(_post_all(args.url, bodies))
    requests = []
    for name, body in bodies:
        try:
            requests.append(parse_request(body))
        except DuisError as exc:
            raise UserError(f"{name}: invalid DUIS request: {exc}") from None
    return _play(args, requests)


async def _post_all(url: str, bodies: list[tuple[str, bytes]]) -> int:
    import aiohttp

    from emulator.errors import UserError

    worst = 0
    async with aiohttp.ClientSession() as session:
        for name, body in bodies:
            try:
                async with session.post(url, data=body, headers={"Content-Type": "application/xml"}) as reply:
                    text = await reply.text()
            except aiohttp.ClientError as exc:
                raise UserError(f"cannot reach {url}: {exc}") from None
            print(f"== {name}: HTTP {reply.status}")
            print(text.rstrip())
            worst = max(worst, 0 if reply.status == 200 else 1)
    return worst


def _play(args: argparse.Namespace, requests: list[Any]) -> int:
    from emulator.errors import UserError
    from emulator.dcc.duis import render_dsp_response

    from .spec import ScenarioError, load_scenario, parse_scenario

    try:
        scenario = load_scenario(args.scenario) if args.scenario else parse_scenario({}, source="default premises")
    except ScenarioError as exc:
        raise UserError(str(exc)) from None
    apply_timing_option(scenario, args)
    clock = VirtualClock()
    bus = EventBus(clock)
    bus.subscribe(JsonLinesPrinter(sys.stdout) if args.json else TimelinePrinter(sys.stdout))
    system = build_system(scenario, clock, bus)
    system.start()
    ok = True
    for request in requests:
        response = system.submit(request)
        ok = ok and response.response_code.startswith(("I", "W"))
        if not args.json:
            print(render_dsp_response(response, at=system.datetime_at(clock.now())).decode().rstrip())
        _settle(clock, system, scenario.timing.settle_after(SETTLE_S))
    return 0 if ok else 1


def build_system(scenario: "Scenario", clock: VirtualClock, bus: EventBus) -> "DccSystem":
    """The in-process system ``submit`` plays requests against: the scenario's, in virtual time."""
    from .system import DccSystem

    return DccSystem.from_scenario(scenario, clock, bus)


def _settle(clock: VirtualClock, system: Any, quiet_s: float = SETTLE_S) -> None:
    """Run until nothing has reached the User for ``quiet_s`` simulated seconds."""
    while True:
        seen = len(system.messages)
        clock.run(until=clock.now() + quiet_s)
        if len(system.messages) == seen:
            return
