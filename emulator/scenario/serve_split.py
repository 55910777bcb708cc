"""The core of ``serve --workers 2``: the DSP, CSP, hubs, devices and SQLite, with an edge process.

One ``serve`` process holds the GIL for everything (docs/recovery.md, "Where the floor is"); this
moves what needs no DCC state to a second process (``serve_edge``) so the work uses both cores.
What the core keeps is what #11's guarantees rest on: every request runs through the DSP here, in
arrival order, and its answer goes to the edge only once its commit is on disk (group commit);
every message for a User is committed in the DSP's ledger in the step that produced it before it
is handed to the edge's outbox, and stays there until the outbox's table holds it. So a dead edge
loses nothing: its successor is handed every message the ledger still keeps (same IDs; the outbox
ignores those it holds).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import sys
import time
from typing import Callable

from emulator.dcc.http_api import Hold
from emulator.dcc.messages import DspResponse, UserMessage

from .serve_link import (Answer, Deliver, EdgeConfig, Failed, FrameWriter, FrontDoorNote, LinkError, Ready, Submit,
                         read_frames)
from .system import DccSystem

_LOGGER = logging.getLogger(__name__)
EDGE_MODULE = "emulator.scenario.serve_edge"


class CoreLink:
    """The core's end of the link to (one life of) the edge."""

    def __init__(self, system: DccSystem, config: EdgeConfig, hold: Hold | None = None) -> None:
        self.system = system
        self.config = config
        self.hold = hold
        self._writer: FrameWriter | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        system.add_sink(self._deliver)

    def _deliver(self, message: UserMessage) -> None:
        # Without an edge the message waits in the ledger: the next edge is handed it.
        if self._writer is not None and self._writer.open:
            self._writer.send(Deliver(message))

    async def serve(self, reader: asyncio.StreamReader, writer: FrameWriter,
                    on_ready: Callable[[int], None] = lambda pid: None) -> None:
        """Until the edge closes the link or dies."""
        writer.send(self.config)
        ledger = self.system.dsp.ledger
        ledger.prune_held("outbox")
        for message in ledger.kept_messages():  # committed, maybe not yet held by the outbox
            writer.send(Deliver(message))
        self._writer = writer
        try:
            async for frames in read_frames(reader):
                for frame in frames:
                    if isinstance(frame, Submit):
                        self._submit(frame, writer)
                    elif isinstance(frame, FrontDoorNote):
                        self.system.bus.emit("dsp", frame.name, None, **frame.fields)
                    elif isinstance(frame, Ready):
                        on_ready(frame.pid)
                    else:
                        raise LinkError(f"the edge sent a {type(frame).__name__}")
        finally:
            if self._writer is writer:
                self._writer = None

    def _submit(self, frame: Submit, writer: FrameWriter) -> None:
        try:
            response = self.system.submit(frame.request)
        except Exception as exc:  # a bug: the edge answers 500, as the single process does
            _LOGGER.exception("DSP failed on %s", frame.request.header.request_id)
            writer.send(Failed(frame.ticket, f"{type(exc).__name__}: {exc}"))
            return
        if self.hold is None:
            durable = self.system.store.durable()
            durable.add_done_callback(lambda done: self._answer(frame.ticket, response, writer, done))
            return
        task = asyncio.create_task(self._held(frame.ticket, response, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _held(self, ticket: int, response: DspResponse, writer: FrameWriter) -> None:
        assert self.hold is not None
        await self.hold(response)
        durable = self.system.store.durable()
        with contextlib.suppress(Exception):
            await durable
        self._answer(ticket, response, writer, durable)

    def _answer(self, ticket: int, response: DspResponse, writer: FrameWriter, durable: asyncio.Future[None]) -> None:
        if not durable.cancelled() and durable.exception() is not None:
            _LOGGER.error("DUIS %s: answered although its commit may not be on disk: %s",
                          response.request_id, durable.exception())
        if writer.open:
            writer.send(Answer(ticket, response))


class EdgeFailedToStart(Exception):
    """The edge process ended before it was ever ready, ``MAX_FAILED_STARTS`` times in a row."""


MAX_FAILED_STARTS = 3


class EdgeSupervisor:
    """Runs the edge process on the core's listening socket and starts it again when it dies."""

    def __init__(self, link: CoreLink, listening: socket.socket, *, restart_delay: float = 0.2,
                 max_restart_delay: float = 5.0) -> None:
        self.link = link
        self.listening = listening
        self.restart_delay = restart_delay
        self.max_restart_delay = max_restart_delay
        self.ready = asyncio.Event()
        self.pid: int | None = None
        self.restarts = 0
        self._process: asyncio.subprocess.Process | None = None
        self._stopping = False
        self._was_ready = False

    async def run(self) -> None:
        """For ever (until :meth:`stop`); raises :class:`EdgeFailedToStart` if the edge cannot
        start at all (it then never listened)."""
        delay = self.restart_delay
        failed_starts = 0
        while not self._stopping:
            began = time.monotonic()
            self._was_ready = False
            try:
                code = await self._one_life()
            except Exception:  # a bug on the link: logged, and the edge starts again
                _LOGGER.exception("edge link failed")
                code = None
            if self._stopping:
                return
            failed_starts = 0 if self._was_ready else failed_starts + 1
            if failed_starts >= MAX_FAILED_STARTS:
                raise EdgeFailedToStart(f"the edge process ended {failed_starts} times before it was ready "
                                        f"(last exit code {code}); see its errors above")
            self.restarts += 1
            _LOGGER.error("edge process ended (%s); starting it again", code)
            self.link.system.bus.emit("dsp", "edge_restarted", None, exit_code=code, restarts=self.restarts)
            delay = self.restart_delay if time.monotonic() - began > 10 else min(delay * 2, self.max_restart_delay)
            await asyncio.sleep(delay)

    async def _one_life(self) -> int | None:
        ours, theirs = socket.socketpair()
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", EDGE_MODULE, str(theirs.fileno()), str(self.listening.fileno()),
                pass_fds=(theirs.fileno(), self.listening.fileno()), stdin=asyncio.subprocess.DEVNULL)
        finally:
            theirs.close()
        self._process = process
        reader, raw = await asyncio.open_unix_connection(sock=ours)
        writer = FrameWriter(raw)
        try:
            await self.link.serve(reader, writer, self._on_ready)
        finally:
            writer.close()
            if process.returncode is None and not self._stopping:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
            code = await process.wait()
            self.pid = None
        return code

    def _on_ready(self, pid: int) -> None:
        self.pid = pid
        self._was_ready = True
        self.ready.set()

    async def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM to the edge: it stops listening and answers what is in flight, then exits."""
        self._stopping = True
        process = self._process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), timeout)
        except asyncio.TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
