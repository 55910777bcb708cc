"""Durable outbox: every asynchronous message for the DCC User, kept until the User has it.

``put`` stores a message in SQLite (once per ``message_id``), renders its DUIS XML right away so
every retry sends the same bytes, and appends a JSON line to a journal. The deliverer POSTs the
XML to the User's endpoint, oldest first, and keeps retrying with exponential back-off until the
endpoint answers 2xx (at-least-once: the receiver de-duplicates with the ``X-DCC-Message-ID``
header or the ``emu:MessageID`` attribute). A new Outbox on the same database delivers what an
earlier one did not.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Awaitable, Callable

import aiohttp

from ..runtime.clock import Clock
from .duis import UserMessageRenderer, user_message_to_json
from .messages import MessageKind, UserMessage

_LOGGER = logging.getLogger(__name__)

MESSAGE_ID_HEADER = "X-DCC-Message-ID"
Sleep = Callable[[float], Awaitable[None]]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    code TEXT NOT NULL,
    record TEXT NOT NULL,
    xml BLOB NOT NULL,
    created REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    delivered REAL
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (seq) WHERE delivered IS NULL;
"""


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before retry ``n`` (1-based): ``initial * factor**(n-1)``, capped at ``maximum``."""

    initial: float = 1.0
    factor: float = 2.0
    maximum: float = 300.0

    def __post_init__(self) -> None:
        if self.initial <= 0 or self.factor < 1 or self.maximum < self.initial:
            raise ValueError(f"bad back-off {self}: need initial > 0, factor >= 1, maximum >= initial")

    def delay(self, attempt: int) -> float:
        return min(self.maximum, self.initial * self.factor ** max(attempt - 1, 0))


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One stored message as the outbox sees it."""

    seq: int
    message_id: str
    kind: MessageKind
    code: str
    xml: bytes
    attempts: int
    last_error: str | None
    delivered: float | None


def clock_sleep(clock: Clock) -> Sleep:
    """A ``sleep`` that waits on ``clock`` (e.g. a VirtualClock advanced by a test or a fleet run)."""

    async def sleep(delay: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not future.done():  # the sleeper may have been cancelled meanwhile
                future.set_result(None)

        clock.call_later(delay, wake)
        await future

    return sleep


class Outbox:
    """Durable, idempotent store and at-least-once deliverer of :class:`UserMessage`.

    ``database`` is a SQLite path or ``":memory:"``. ``journal`` is a path (appended to) or an
    open text stream for the JSON lines; None writes none. ``endpoint`` is the User's URL; None
    stores without delivering. ``sleep`` waits between retries and ``now`` stamps the records,
    so tests and virtual-time runs never wait in wall time. One deliverer per database.
    """

    def __init__(
        self,
        database: str | Path,
        *,
        endpoint: str | None = None,
        journal: str | Path | IO[str] | None = None,
        renderer: UserMessageRenderer | None = None,
        backoff: Backoff = Backoff(),
        sleep: Sleep = asyncio.sleep,
        now: Callable[[], float] = time.time,
        request_timeout: float = 10.0,
    ) -> None:
        self.endpoint = endpoint
        self.renderer = renderer or UserMessageRenderer()
        self.backoff = backoff
        self._sleep = sleep
        self._now = now
        self._timeout = aiohttp.ClientTimeout(total=request_timeout)
        self._db = sqlite3.connect(str(database), isolation_level=None)
        self._db.executescript(_SCHEMA)
        self._journal, self._owns_journal = self._open_journal(journal)
        self._wake = asyncio.Event()
        self._wake.set()  # a new outbox first looks for what an earlier one left undelivered

    @staticmethod
    def _open_journal(journal: str | Path | IO[str] | None) -> tuple[IO[str] | None, bool]:
        if journal is None:
            return None, False
        if isinstance(journal, (str, Path)):
            return open(journal, "a", encoding="utf-8"), True
        return journal, False

    # -- storing -------------------------------------------------------------------------

    def put(self, message: UserMessage) -> bool:
        """Store ``message``; False (and nothing written) if its ``message_id`` is already held."""
        record = user_message_to_json(message)
        text = json.dumps(record, sort_keys=True)
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            cursor = db.execute(
                "INSERT OR IGNORE INTO outbox (message_id, kind, code, record, xml, created) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (message.message_id, message.kind.value, message.code, text, b"", self._now()),
            )
            if cursor.rowcount == 0:
                db.execute("ROLLBACK")
                self._note_duplicate(message, text)
                return False
            seq = cursor.lastrowid
            assert seq is not None
            xml = self.renderer.xml(message, counter=seq)
            db.execute("UPDATE outbox SET xml = ? WHERE seq = ?", (xml, seq))
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        if self._journal is not None:
            self._journal.write(text + "\n")
            self._journal.flush()
        _LOGGER.debug("outbox: stored %s %s as #%d", message.kind.value, message.message_id, seq)
        self._wake.set()
        return True

    def _note_duplicate(self, message: UserMessage, text: str) -> None:
        row = self._db.execute(
            "SELECT record FROM outbox WHERE message_id = ?", (message.message_id,)
        ).fetchone()
        if row and row[0] != text:
            _LOGGER.warning(
                "outbox: message %s already held with different content; kept the first",
                message.message_id,
            )

    # -- reading -------------------------------------------------------------------------

    def entries(self, *, pending_only: bool = False) -> list[OutboxEntry]:
        query = "SELECT seq, message_id, kind, code, xml, attempts, last_error, delivered FROM outbox"
        if pending_only:
            query += " WHERE delivered IS NULL"
        rows = self._db.execute(query + " ORDER BY seq").fetchall()
        return [
            OutboxEntry(seq, mid, MessageKind(kind), code, bytes(xml), attempts, error, delivered)
            for seq, mid, kind, code, xml, attempts, error, delivered in rows
        ]

    def pending_count(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM outbox WHERE delivered IS NULL").fetchone()[0]

    def _next_pending(self) -> OutboxEntry | None:
        rows = self._db.execute(
            "SELECT seq, message_id, kind, code, xml, attempts, last_error, delivered FROM outbox "
            "WHERE delivered IS NULL ORDER BY seq LIMIT 1"
        ).fetchall()
        if not rows:
            return None
        seq, mid, kind, code, xml, attempts, error, delivered = rows[0]
        return OutboxEntry(seq, mid, MessageKind(kind), code, bytes(xml), attempts, error, delivered)

    # -- delivering ----------------------------------------------------------------------

    async def deliver_pending(self) -> int:
        """Deliver every undelivered message, oldest first, retrying each until it is accepted.

        Returns how many were delivered. Without an endpoint it does nothing.
        """
        if self.endpoint is None or self._next_pending() is None:
            return 0
        delivered = 0
        async with aiohttp.ClientSession(timeout=self._timeout) as session:
            while (entry := self._next_pending()) is not None:
                failures = 0
                while not await self._attempt(session, entry):
                    failures += 1
                    delay = self.backoff.delay(failures)
                    _LOGGER.info("outbox: retrying %s in %.3g s", entry.message_id, delay)
                    await self._sleep(delay)
                delivered += 1
        return delivered

    async def _attempt(self, session: aiohttp.ClientSession, entry: OutboxEntry) -> bool:
        assert self.endpoint is not None
        headers = {
            "Content-Type": "application/xml; charset=utf-8",
            MESSAGE_ID_HEADER: entry.message_id,
        }
        try:
            async with session.post(self.endpoint, data=entry.xml, headers=headers) as reply:
                await reply.read()
                ok = 200 <= reply.status < 300
                error = None if ok else f"HTTP {reply.status}"
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            ok, error = False, f"{type(exc).__name__}: {exc}"
        self._db.execute(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?, delivered = ? WHERE seq = ?",
            (error, self._now() if ok else None, entry.seq),
        )
        if ok:
            _LOGGER.debug("outbox: delivered %s", entry.message_id)
        else:
            _LOGGER.warning("outbox: delivery of %s to %s failed: %s", entry.message_id, self.endpoint, error)
        return ok

    async def run(self) -> None:
        """Deliver for ever: whatever is pending now, then whatever ``put`` adds. Cancel to stop."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self.deliver_pending()

    def close(self) -> None:
        """Close the database and a journal this outbox opened; messages stay on disk."""
        if self._owns_journal and self._journal is not None:
            self._journal.close()
        self._journal = None
        self._db.close()

    def __enter__(self) -> "Outbox":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
