"""The edge process of ``serve --workers 2``: the work that needs no DCC state.

It accepts on the listening socket the core bound, reads and parses each DUIS request, checks
its signature, hands the Service Request to the core over the link and answers with the DSP's
answer, rendered and signed here (the core sends it once its commit is on disk). It also runs the
outbox: the core hands it every message for the Users once the message is committed in the
DSP's ledger; the outbox renders, signs, stores (same database file, its own connection) and
delivers it. The core's supervisor starts this process and starts it again if it dies
(docs/recovery.md, "Two processes").

Run by the core only: ``python -m emulator.scenario.serve_edge LINK_FD LISTEN_FD``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import signal
import socket
import sys
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from emulator.dcc.duis import UserMessageRenderer
from emulator.dcc.duis.security import DuisSecurity
from emulator.dcc.http_api import create_app
from emulator.dcc.messages import DspResponse
from emulator.dcc.outbox import Outbox
from emulator.dcc.service_requests import ServiceRequest

from .serve_link import (Answer, Deliver, EdgeConfig, Failed, FrameWriter, FrontDoorNote, LinkError, Ready, Submit,
                         read_frame, read_frames)

_LOGGER = logging.getLogger(__name__)


class CoreUnavailable(Exception):
    """The core went away with this request in flight: it may or may not have been executed."""


class EdgeLink:
    """The edge's end of the link: requests out in arrival order, answers and messages in."""

    def __init__(self, writer: FrameWriter) -> None:
        self._writer = writer
        self._pending: dict[int, asyncio.Future[DspResponse]] = {}
        self._tickets = itertools.count()
        self.lost = False

    def submit(self, request: ServiceRequest) -> "asyncio.Future[DspResponse]":
        """The answer, once the core has executed ``request`` and its commit is on disk. The
        request is on its way when this returns (``create_app`` lets the next one go)."""
        future: asyncio.Future[DspResponse] = asyncio.get_running_loop().create_future()
        if self.lost:
            future.set_exception(CoreUnavailable("the core is not running"))
            return future
        ticket = next(self._tickets)
        self._pending[ticket] = future
        self._writer.send(Submit(ticket, request))
        return future

    def note(self, name: str, **fields: Any) -> None:
        """``create_app(on_event=...)``: onto the core's timeline."""
        if not self.lost:
            self._writer.send(FrontDoorNote(name, fields))

    def ready(self) -> None:
        self._writer.send(Ready(os.getpid()))

    async def run(self, reader: asyncio.StreamReader, outbox: Outbox) -> None:
        """Until the core closes the link (or dies): answers to their requests, messages into
        the outbox."""
        try:
            async for frames in read_frames(reader):
                for frame in frames:
                    if isinstance(frame, Answer):
                        self._resolve(frame.ticket, frame.response)
                    elif isinstance(frame, Failed):
                        self._resolve(frame.ticket, RuntimeError(f"the DSP failed on this request: {frame.error}"))
                    elif isinstance(frame, Deliver):
                        try:
                            outbox.put(frame.message)
                        except Exception:  # it stays in the DSP's ledger: handed again at the next start
                            _LOGGER.exception("edge: outbox refused message %s", frame.message.message_id)
                    else:
                        raise LinkError(f"the core sent a {type(frame).__name__}")
        finally:
            self.lost = True
            for ticket in list(self._pending):
                self._resolve(ticket, CoreUnavailable("the core went away with this request in flight"))

    def _resolve(self, ticket: int, outcome: DspResponse | Exception) -> None:
        future = self._pending.pop(ticket, None)
        if future is None or future.done():
            return
        if isinstance(outcome, Exception):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


@dataclass
class Edge:
    """What one edge runs: the front door's application, the outbox, the link."""

    app: web.Application
    outbox: Outbox
    link: EdgeLink


def build_edge(config: EdgeConfig, writer: FrameWriter, *, journal: Any = None,
               security: DuisSecurity | None = None) -> Edge:
    """``journal`` and ``security`` override the config's (a stream, a verifier: tests in one process)."""
    if security is None:
        security = DuisSecurity.from_options(config.keystore, require_signatures=config.require_signatures)
    if journal is None and config.journal is not None:
        journal = sys.stdout if config.journal == "-" else config.journal
    outbox = Outbox(config.db, endpoint=config.user_endpoint, endpoints=config.endpoints, policy=config.policy,
                    journal=journal, renderer=UserMessageRenderer(epoch=config.epoch, signer=security.signer))
    link = EdgeLink(writer)
    app = create_app(link.submit, **security.app_options(), on_event=link.note,
                     max_in_flight=config.max_in_flight, request_deadline=config.request_deadline)
    return Edge(app, outbox, link)


def _die_with_parent() -> None:
    """Linux: the kernel kills this process when the core dies, so the port is free at once."""
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


async def run_edge(link_fd: int, listen_fd: int) -> int:
    parent = os.getppid()
    _die_with_parent()
    if os.getppid() != parent:  # the core died before the line above
        return 1
    link_socket = socket.socket(fileno=link_fd)
    listening = socket.socket(fileno=listen_fd)
    reader, raw_writer = await asyncio.open_unix_connection(sock=link_socket)
    config = await read_frame(reader)
    if not isinstance(config, EdgeConfig):
        raise LinkError(f"the core's first frame is {type(config).__name__}, not EdgeConfig")
    logging.basicConfig(level=config.log_level, format="%(asctime)s %(levelname)s %(name)s [edge]: %(message)s")
    writer = FrameWriter(raw_writer)
    edge = build_edge(config, writer)
    runner = web.AppRunner(edge.app, handle_signals=False)
    await runner.setup()
    site = web.SockSite(runner, listening)
    await site.start()
    outbox_task = asyncio.create_task(edge.outbox.run(), name="outbox")
    link_task = asyncio.create_task(edge.link.run(reader, edge.outbox), name="edge-link")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, lambda: None)  # the core stops us (a terminal's ^C reaches both)
    edge.link.ready()
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({link_task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if link_task.done():
        # The core is gone: what was in flight was not answered (so not accepted, or committed and
        # recovered by the next core); the outbox's uncommitted puts are in the DSP's ledger.
        _LOGGER.error("edge: the core closed the link; exiting")
        os._exit(3)
    await runner.cleanup()  # stops listening, lets the requests in flight have their answers
    outbox_task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await outbox_task
    edge.outbox.close()
    writer.close()
    link_task.cancel()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("emulator.scenario.serve_edge is started by `ch-emulator serve --workers 2`", file=sys.stderr)
        return 2
    return asyncio.run(run_edge(int(args[0]), int(args[1])))


if __name__ == "__main__":
    sys.exit(main())
