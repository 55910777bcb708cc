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
import os
import signal
import socket
import sqlite3
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, TextIO

from aiohttp import web

from emulator.dcc.duis import UserMessageRenderer
from emulator.dcc.duis.keystore import KeystoreError
from emulator.dcc.duis.security import DuisSecurity
from emulator.dcc.http_api import create_app
from emulator.dcc.dsp import DEFAULT_PRECOMMAND_LIFETIME
from emulator.dcc.device_keys import store_device_keys
from emulator.dcc.gbcs_counters import PersistedOriginatorCounters
from emulator.dcc.outbox import DeliveryPolicy, Outbox
from emulator.dcc.outbox_cli import add_delivery_options, delivery_settings
from emulator.dcc.store import Store
from emulator.dcc.timing import SyncAnswerHold
from emulator.ota.sessions import connect as connect_han_db
from emulator.runtime.clock import AsyncioClock
from emulator.runtime.events import EventBus, JsonLinesPrinter, TimelinePrinter

from .serve_edge import Edge, build_edge
from .serve_link import EdgeConfig, FrameWriter, LinkError, read_frame
from .serve_split import CoreLink, EdgeFailedToStart, EdgeSupervisor
from .spec import Scenario, ScenarioError, load_scenario, parse_scenario
from .timing_option import add_timing_option, apply_timing_option
from .system import DccSystem

_LOGGER = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("serve", help="serve DUIS requests over HTTP (real time)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=_port, default=8080, help="TCP port (default 8080; 0 picks a free one)")
    parser.add_argument("--db", default="ch-emulator.db",
                        help="SQLite file for SMI, SAT and outbox (default ch-emulator.db; ':memory:' keeps nothing)")
    parser.add_argument("--user-endpoint", metavar="URL", help="POST every alert and response here (DUIS XML)")
    parser.add_argument("--journal", metavar="FILE", default="-",
                        help="JSON lines of every message for the User (default: standard output; '' for none)")
    parser.add_argument("--scenario", metavar="FILE",
                        help="take premises, devices and CSP/OTA settings from a scenario (its requests are ignored)")
    parser.add_argument("--json", action="store_true", help="timeline on standard error as JSON lines")
    add_timing_option(parser)
    parser.add_argument("--keystore", metavar="PATH",
                        help="sign with the DSP key of this keystore (DCC's dccboxed-keystore keystore.json, or a "
                             "directory of <eui>-<ds|ka|xml-sign>.pem/.key) and trust its certificates; "
                             "default: the emulator's TEST ONLY key")
    parser.add_argument("--require-signatures", action="store_true",
                        help="refuse unsigned requests (E1); by default they are accepted with a warning")
    add_delivery_options(parser)
    parser.add_argument("--max-in-flight", type=_positive_int, default=DEFAULT_MAX_IN_FLIGHT, metavar="N",
                        help="requests read, parsed or checked at once; past it 503 with Retry-After "
                             f"(default {DEFAULT_MAX_IN_FLIGHT})")
    parser.add_argument("--request-deadline", type=_positive_float, default=DEFAULT_REQUEST_DEADLINE,
                        metavar="SECONDS", help="a request not handed to the DSP within this is answered 503 and "
                                                f"never executed (default {DEFAULT_REQUEST_DEADLINE:g})")
    parser.add_argument("--distribution-deadline", type=_positive_float, default=DEFAULT_DISTRIBUTION_DEADLINE,
                        metavar="SECONDS", help="an 11.1/11.4 still in progress this long after it was accepted "
                                                "ends with N60 or N62 (result 3) and frees the device "
                                                f"(default {DEFAULT_DISTRIBUTION_DEADLINE:g})")
    parser.add_argument("--command-deadline", type=_positive_float, default=DEFAULT_COMMAND_DEADLINE,
                        metavar="SECONDS", help="an 11.2/11.3 its device has not answered this long after it was "
                                                "accepted gets an E20 response and is no longer awaited "
                                                f"(default {DEFAULT_COMMAND_DEADLINE:g})")
    parser.add_argument("--precommand-lifetime", type=_positive_float, default=DEFAULT_PRECOMMAND_LIFETIME,
                        metavar="SECONDS", help="an 11.3 pre-command (CV 4) signed and returned (CV 5/6/7) later "
                                                "than this after it was issued is refused with E100 "
                                                f"(default {DEFAULT_PRECOMMAND_LIFETIME:g})")
    parser.add_argument("--workers", type=int, choices=(1, 2), default=1,
                        help="1: one process (default); 2: a core process (DSP, CSP, hubs, devices, SQLite) and "
                             "an edge process (HTTP, DUIS parsing, signatures, the outbox), supervised "
                             "(docs/recovery.md, 'Two processes')")
    parser.set_defaults(func=serve_command)


DEFAULT_MAX_IN_FLIGHT = 64
DEFAULT_REQUEST_DEADLINE = 10.0
DEFAULT_DISTRIBUTION_DEADLINE = 24 * 3600.0
DEFAULT_COMMAND_DEADLINE = 2 * 3600.0  # a sleepy gas meter answers on its next poll (up to 30 min)
PRUNE_INTERVAL = 30.0  # seconds between forgetting the ledger's copies of messages the outbox holds


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a TCP port (0-65535)")
    return port


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} must be a number of seconds above 0")
    return value


@dataclass
class Service:
    """Everything ``serve`` runs, built so tests can run it in-process."""

    system: DccSystem
    outbox: Outbox
    app: web.Application
    han_db: sqlite3.Connection | None = None

    async def start_outbox(self) -> asyncio.Task[None]:
        return asyncio.create_task(self.outbox.run(), name="outbox")

    async def prune_ledger(self, interval: float = PRUNE_INTERVAL) -> None:
        """For ever: forget the DSP's copies of the messages the outbox now holds."""
        while True:
            await asyncio.sleep(interval)
            self.system.dsp.ledger.prune_held("outbox")

    def close(self) -> None:
        self.outbox.close()
        self.system.store.close()
        if self.han_db is not None:
            self.han_db.close()


@dataclass
class SplitService(Service):
    """``--workers 2`` in one process, for tests: the core and the edge on the same loop, joined
    by the link over a socket pair (the frames, the order, the hand-over of messages as in two
    processes; what it leaves out is the supervisor, which ``benchmarks/crash.py --workers 2``
    and the crash-loop test play)."""

    link: CoreLink | None = None
    edge: Edge | None = None
    tasks: tuple[asyncio.Task[None], ...] = ()
    sockets: tuple[asyncio.StreamWriter, ...] = ()

    def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        for writer in self.sockets:
            writer.close()
        super().close()


async def build_split_service(
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
    max_in_flight: int | None = DEFAULT_MAX_IN_FLIGHT,
    request_deadline: float | None = DEFAULT_REQUEST_DEADLINE,
    distribution_deadline: float | None = DEFAULT_DISTRIBUTION_DEADLINE,
    command_deadline: float | None = DEFAULT_COMMAND_DEADLINE,
    precommand_lifetime: float | None = DEFAULT_PRECOMMAND_LIFETIME,
) -> SplitService:
    """:func:`build_service`'s arguments, the same service split over the link (in one process)."""
    core = build_core(scenario, db=db, timeline=timeline, json_timeline=json_timeline,
                      distribution_deadline=distribution_deadline, command_deadline=command_deadline,
                      precommand_lifetime=precommand_lifetime)
    security = security or DuisSecurity.from_options()
    config = edge_config(core, db=db, user_endpoint=user_endpoint, endpoints=endpoints, policy=policy,
                         journal=None, require_signatures=security.require_signatures,
                         max_in_flight=max_in_flight, request_deadline=request_deadline)
    link = CoreLink(core.system, config, core.hold)
    core.system.start()
    core.system.recover()
    core_end, edge_end = socket.socketpair()
    core_reader, core_writer = await asyncio.open_unix_connection(sock=core_end)
    edge_reader, edge_writer = await asyncio.open_unix_connection(sock=edge_end)
    edge = build_edge(config, FrameWriter(edge_writer), journal=journal, security=security)
    core_task = asyncio.create_task(link.serve(core_reader, FrameWriter(core_writer)), name="core-link")
    if not isinstance(await read_frame(edge_reader), EdgeConfig):
        raise LinkError("the core's first frame is not its EdgeConfig")
    edge_task = asyncio.create_task(edge.link.run(edge_reader, edge.outbox), name="edge-link")
    return SplitService(core.system, edge.outbox, edge.app, core.han_db, link=link, edge=edge,
                        tasks=(core_task, edge_task), sockets=(core_writer, edge_writer))


def edge_config(core: "Core", *, db: str, user_endpoint: str | None, endpoints: dict[str, str] | None,
                policy: DeliveryPolicy | None, journal: str | None, require_signatures: bool,
                max_in_flight: int | None, request_deadline: float | None, keystore: str | None = None) -> EdgeConfig:
    return EdgeConfig(db=db, user_endpoint=user_endpoint, endpoints=dict(endpoints or {}),
                      policy=policy or DeliveryPolicy(), journal=journal, keystore=keystore,
                      require_signatures=require_signatures, max_in_flight=max_in_flight,
                      request_deadline=request_deadline, epoch=core.epoch,
                      log_level=logging.getLogger().getEffectiveLevel())


def scenario_device_euis(scenario: Scenario) -> list[int]:
    """Every Comms Hub and device of the scenario's premises (whose GBCS keys the run uses)."""
    return [eui for premises in scenario.premises
            for eui in (premises.comms_hub, *(device.eui64 for device in premises.devices))]


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
    max_in_flight: int | None = DEFAULT_MAX_IN_FLIGHT,
    request_deadline: float | None = DEFAULT_REQUEST_DEADLINE,
    distribution_deadline: float | None = DEFAULT_DISTRIBUTION_DEADLINE,
    command_deadline: float | None = DEFAULT_COMMAND_DEADLINE,
    precommand_lifetime: float | None = DEFAULT_PRECOMMAND_LIFETIME,
) -> Service:
    """Build the system on the running loop's real-time clock and take up whatever an earlier
    process on ``db`` left open (docs/recovery.md)."""
    core = build_core(scenario, db=db, timeline=timeline, json_timeline=json_timeline,
                      distribution_deadline=distribution_deadline, command_deadline=command_deadline,
                      precommand_lifetime=precommand_lifetime)
    system = core.system
    security = security or DuisSecurity.from_options()
    outbox = Outbox(db, endpoint=user_endpoint, endpoints=endpoints, policy=policy, journal=journal,
                    renderer=UserMessageRenderer(epoch=core.epoch, signer=security.signer))
    system.add_sink(outbox.put)
    system.start()
    system.recover()
    return Service(system, outbox, create_app(system.submit, **security.app_options(),
                                              on_event=lambda name, **fields: system.bus.emit("dsp", name, None, **fields),
                                              max_in_flight=max_in_flight, request_deadline=request_deadline,
                                              hold=core.hold, durable=system.store.durable),
                   core.han_db)


@dataclass
class Core:
    """The DCC side and the premises of ``serve``, before any sink is attached and before
    :meth:`DccSystem.start` (the single process adds its outbox, ``--workers 2`` its link)."""

    system: DccSystem
    epoch: datetime
    hold: SyncAnswerHold | None
    han_db: sqlite3.Connection | None


def build_core(
    scenario: Scenario,
    *,
    db: str,
    timeline: TextIO | None = None,
    json_timeline: bool = False,
    distribution_deadline: float | None = DEFAULT_DISTRIBUTION_DEADLINE,
    command_deadline: float | None = DEFAULT_COMMAND_DEADLINE,
    precommand_lifetime: float | None = DEFAULT_PRECOMMAND_LIFETIME,
) -> Core:
    clock = AsyncioClock()
    bus = EventBus(clock)
    if timeline is not None:
        bus.subscribe(JsonLinesPrinter(timeline) if json_timeline else TimelinePrinter(timeline))
    epoch = datetime.now(timezone.utc)
    store = Store(db)
    # The hubs' OTA sessions and the devices' downloads on the same database: a transfer
    # interrupted by a kill resumes at its offset (docs/recovery.md).
    han_db = connect_han_db(db) if db != ":memory:" else None
    system = DccSystem.from_scenario(scenario, clock, bus, store=store, epoch=epoch, han_db=han_db)
    system.gbcs.counters = PersistedOriginatorCounters(system.store)  # GBCS counters rise across restarts
    store_device_keys(system.store, scenario_device_euis(scenario), scenario.seed)  # for `keys export --db`
    system.dsp.set_distribution_deadline(distribution_deadline)
    system.dsp.set_command_deadline(command_deadline)
    system.dsp.set_precommand_lifetime(precommand_lifetime)
    system.restore_devices()
    hold = SyncAnswerHold(clock, system.timing) if system.timing is not None else None
    return Core(system, epoch, hold, han_db)


def serve_command(args: argparse.Namespace) -> int:
    from emulator.errors import UserError

    try:
        scenario = load_scenario(args.scenario) if args.scenario else parse_scenario({}, source="default premises")
    except ScenarioError as exc:
        raise UserError(str(exc)) from None
    apply_timing_option(scenario, args)
    journal: str | TextIO | None = sys.stdout if args.journal == "-" else (args.journal or None)
    _check_paths(args.db, journal)
    try:
        security = DuisSecurity.from_options(args.keystore, require_signatures=args.require_signatures)
    except KeystoreError as exc:
        raise UserError(str(exc)) from None
    if args.workers == 2 and args.db == ":memory:":
        raise UserError("--workers 2 needs a database file (--db): the core and the edge process both open it")
    try:
        return asyncio.run(_serve_split(args, scenario, journal) if args.workers == 2
                           else _serve(args, scenario, journal, security))
    except OSError as exc:
        raise UserError(f"cannot serve on {args.host}:{args.port}: {exc.strerror or exc}") from None


def _check_paths(db: str, journal: str | TextIO | None) -> None:
    """The database and journal can be written: a clear error (exit 2) rather than a traceback."""
    from emulator.errors import UserError

    for what, path in (("--db", db), ("--journal", journal)):
        if not isinstance(path, str) or path == ":memory:":
            continue
        if "\0" in path:
            raise UserError(f"{what} {path!r}: a path cannot contain a NUL character")
        target = os.path.abspath(path)
        folder = os.path.dirname(target)
        if not os.path.isdir(folder):
            raise UserError(f"{what} {path}: directory {folder} does not exist")
        if os.path.isdir(target):
            raise UserError(f"{what} {path}: is a directory, not a file")
        if not os.access(folder, os.W_OK) or (os.path.exists(target) and not os.access(target, os.W_OK)):
            raise UserError(f"{what} {path}: not writable")


async def _serve_split(args: argparse.Namespace, scenario: Scenario, journal: str | TextIO | None) -> int:
    """``--workers 2``: this process is the core; it binds the port and supervises the edge,
    which accepts on it (docs/recovery.md, "Two processes")."""
    from emulator.dcc.store import StoreError
    from emulator.errors import UserError

    endpoints, policy = delivery_settings(args)
    try:
        core = build_core(scenario, db=args.db, timeline=sys.stderr, json_timeline=args.json,
                          distribution_deadline=args.distribution_deadline, command_deadline=args.command_deadline,
                          precommand_lifetime=args.precommand_lifetime)
    except (StoreError, sqlite3.DatabaseError) as exc:
        raise UserError(f"--db {args.db}: {exc}") from None
    journal_option = "-" if journal is sys.stdout else (journal if isinstance(journal, str) else None)
    config = edge_config(core, db=args.db, user_endpoint=args.user_endpoint, endpoints=endpoints, policy=policy,
                         journal=journal_option, require_signatures=args.require_signatures,
                         max_in_flight=args.max_in_flight, request_deadline=args.request_deadline,
                         keystore=args.keystore)
    link = CoreLink(core.system, config, core.hold)
    core.system.start()
    core.system.recover()
    listening = socket.create_server((args.host, args.port), backlog=1024)
    supervisor = EdgeSupervisor(link, listening)
    supervised = asyncio.create_task(supervisor.run(), name="edge-supervisor")
    prune_task = asyncio.create_task(_prune_ledger(core.system), name="ledger-prune")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        ready = asyncio.create_task(supervisor.ready.wait())
        await asyncio.wait({ready, supervised}, return_when=asyncio.FIRST_COMPLETED)
        if supervised.done():
            try:
                supervised.result()
            except EdgeFailedToStart as exc:
                raise UserError(f"serve --workers 2: {exc}") from None
        host, port = listening.getsockname()[:2]
        print(f"serving DUIS on http://{host}:{port}/api/v1/serviceD (core pid {os.getpid()}, "
              f"edge pid {supervisor.pid})", file=sys.stderr, flush=True)
        await stop.wait()
    finally:
        await supervisor.stop()
        supervised.cancel()
        prune_task.cancel()
        await asyncio.gather(supervised, return_exceptions=True)
        listening.close()
        core.system.store.close()
        if core.han_db is not None:
            core.han_db.close()
    return 0


async def _prune_ledger(system: DccSystem, interval: float = PRUNE_INTERVAL) -> None:
    while True:
        await asyncio.sleep(interval)
        system.dsp.ledger.prune_held("outbox")


async def _serve(args: argparse.Namespace, scenario: Scenario, journal: str | TextIO | None,
                 security: DuisSecurity | None = None) -> int:
    from emulator.dcc.store import StoreError
    from emulator.errors import UserError

    endpoints, policy = delivery_settings(args)
    try:
        service = build_service(scenario, db=args.db, user_endpoint=args.user_endpoint, journal=journal,
                                timeline=sys.stderr, json_timeline=args.json, security=security,
                                endpoints=endpoints, policy=policy,
                                max_in_flight=args.max_in_flight, request_deadline=args.request_deadline,
                                distribution_deadline=args.distribution_deadline,
                                command_deadline=args.command_deadline,
                                precommand_lifetime=args.precommand_lifetime)
    except (StoreError, sqlite3.DatabaseError) as exc:
        raise UserError(f"--db {args.db}: {exc}") from None
    runner = web.AppRunner(service.app)
    await runner.setup()
    outbox_task = await service.start_outbox()
    prune_task = asyncio.create_task(service.prune_ledger(), name="ledger-prune")
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
        prune_task.cancel()
        outbox_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await outbox_task
        await runner.cleanup()
        service.close()
    return 0
