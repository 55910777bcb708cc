"""``ch-emulator serve``: the DUIS front door over HTTP, with the emulated premises behind it.

Runs in real time on asyncio: a POST to ``/api/v1/serviceD`` reaches the DSP, the synchronous
answer goes back at once, and every asynchronous response and alert goes to the durable outbox,
which writes it as a JSON line and delivers it as DUIS XML to ``--user-endpoint``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, TextIO

from aiohttp import web

from emulator.dcc.duis import UserMessageRenderer
from emulator.dcc.duis.keystore import KeystoreError
from emulator.dcc.duis.security import DuisSecurity
from emulator.dcc.http_api import create_app
from emulator.dcc.outbox import DeliveryPolicy, Outbox
from emulator.dcc.outbox_cli import add_delivery_options, delivery_settings
from emulator.dcc.store import Store
from emulator.runtime.clock import AsyncioClock
from emulator.runtime.events import EventBus, JsonLinesPrinter, TimelinePrinter

from .spec import Scenario, ScenarioError, load_scenario, parse_scenario
from .system import DccSystem

_LOGGER = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("serve", help="serve DUIS requests over HTTP (real time)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="TCP port (default 8080; 0 picks a free one)")
    parser.add_argument("--db", default="ch-emulator.db",
                        help="SQLite file for SMI, SAT and outbox (default ch-emulator.db; ':memory:' keeps nothing)")
    parser.add_argument("--user-endpoint", metavar="URL", help="POST every alert and response here (DUIS XML)")
    parser.add_argument("--journal", metavar="FILE", default="-",
                        help="JSON lines of every message for the User (default: standard output; '' for none)")
    parser.add_argument("--scenario", metavar="FILE",
                        help="take premises, devices and CSP/OTA settings from a scenario (its requests are ignored)")
    parser.add_argument("--json", action="store_true", help="timeline on standard error as JSON lines")
    parser.add_argument("--keystore", metavar="PATH",
                        help="sign with the DSP key of this keystore (DCC's dccboxed-keystore keystore.json, or a "
                             "directory of <eui>-<ds|ka|xml-sign>.pem/.key) and trust its certificates; "
                             "default: the emulator's TEST ONLY key")
    parser.add_argument("--require-signatures", action="store_true",
                        help="refuse unsigned requests (E1); by default they are accepted with a warning")
    add_delivery_options(parser)
    parser.set_defaults(func=serve_command)


@dataclass
class Service:
    """Everything ``serve`` runs, built so tests can run it in-process."""

    system: DccSystem
    outbox: Outbox
    app: web.Application

    async def start_outbox(self) -> asyncio.Task[None]:
        return asyncio.create_task(self.outbox.run(), name="outbox")

    def close(self) -> None:
        self.outbox.close()
        self.system.store.close()


def build_service(
    scenario: Scenario,
    *,
    db: str = ":memory:",
    user_endpoint: str | None = None,
    journal: str | TextIO | None = None,
    timeline: TextIO | None = None,
    json_timeline: bool = False,
    security: DuisSecurity | None = None,
    endpoints: dict[str, str] | None = None,
    policy: DeliveryPolicy | None = None,
) -> Service:
    """Build the system on the running loop's real-time clock."""
    clock = AsyncioClock()
    bus = EventBus(clock)
    if timeline is not None:
        bus.subscribe(JsonLinesPrinter(timeline) if json_timeline else TimelinePrinter(timeline))
    epoch = datetime.now(timezone.utc)
    system = DccSystem.from_scenario(scenario, clock, bus, store=Store(db), epoch=epoch)
    security = security or DuisSecurity.from_options()
    outbox = Outbox(db, endpoint=user_endpoint, endpoints=endpoints, policy=policy, journal=journal,
                    renderer=UserMessageRenderer(epoch=epoch, signer=security.signer))
    system.add_sink(outbox.put)
    system.start()
    return Service(system, outbox, create_app(system.submit, **security.app_options(),
                                              on_event=lambda name, **fields: bus.emit("dsp", name, None, **fields)))


def serve_command(args: argparse.Namespace) -> int:
    from emulator.errors import UserError

    try:
        scenario = load_scenario(args.scenario) if args.scenario else parse_scenario({}, source="default premises")
    except ScenarioError as exc:
        raise UserError(str(exc)) from None
    journal: str | TextIO | None = sys.stdout if args.journal == "-" else (args.journal or None)
    try:
        security = DuisSecurity.from_options(args.keystore, require_signatures=args.require_signatures)
    except KeystoreError as exc:
        raise UserError(str(exc)) from None
    try:
        return asyncio.run(_serve(args, scenario, journal, security))
    except OSError as exc:
        raise UserError(f"cannot serve on {args.host}:{args.port}: {exc.strerror or exc}") from None


async def _serve(args: argparse.Namespace, scenario: Scenario, journal: str | TextIO | None,
                 security: DuisSecurity | None = None) -> int:
    endpoints, policy = delivery_settings(args)
    service = build_service(scenario, db=args.db, user_endpoint=args.user_endpoint, journal=journal,
                            timeline=sys.stderr, json_timeline=args.json, security=security,
                            endpoints=endpoints, policy=policy)
    runner = web.AppRunner(service.app)
    await runner.setup()
    outbox_task = await service.start_outbox()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        site = web.TCPSite(runner, args.host, args.port)
        await site.start()
        for address in runner.addresses:
            host, port = address[:2]
            print(f"serving DUIS on http://{host}:{port}/api/v1/serviceD", file=sys.stderr, flush=True)
        await stop.wait()
    finally:
        outbox_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await outbox_task
        await runner.cleanup()
        service.close()
    return 0
