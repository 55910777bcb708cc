"""Durable outbox: every asynchronous message for a DCC User, kept until the User has it.

``put`` renders the message's DUIS XML once (so every retry sends the same bytes), hands the row
to the writer thread (:mod:`.outbox_store`, group commit: the event loop never waits for SQLite)
and returns at once. Delivery runs in one **lane per recipient**: each lane POSTs its messages
oldest first, one at a time, so a slow or dead endpoint holds up only its own recipient. A
failure waits a bounded, jittered exponential back-off on the project's clock; the time of the
next attempt is stored, so a restart keeps the schedule. After ``max_attempts`` a message is
dead-lettered (kept, listed and re-drivable with ``ch-emulator outbox``). Delivery is
at-least-once: the receiver de-duplicates with the ``X-DCC-Message-ID`` header (or the
``emu:MessageID`` attribute), which never changes for a message, across restarts too.
Guarantees and figures: docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import heapq
import json
import logging
import random
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Awaitable, Callable, Mapping, Protocol

import aiohttp

from ..runtime.clock import AsyncioClock, Clock, Timer
from .duis import UserMessageRenderer, user_message_to_json
from . import sat
from .messages import MessageKind, UserMessage
from .outbox_store import OutboxStore

_LOGGER = logging.getLogger(__name__)

MESSAGE_ID_HEADER = "X-DCC-Message-ID"
Sleep = Callable[[float], Awaitable[None]]

_COLUMNS = (
    ("seq", "INTEGER PRIMARY KEY AUTOINCREMENT"),
    ("message_id", "TEXT NOT NULL UNIQUE"),
    ("kind", "TEXT NOT NULL"),
    ("code", "TEXT NOT NULL"),
    ("record", "TEXT NOT NULL"),
    ("xml", "BLOB NOT NULL"),
    ("created", "REAL NOT NULL"),
    ("attempts", "INTEGER NOT NULL DEFAULT 0"),
    ("last_error", "TEXT"),
    ("delivered", "REAL"),
    # added by the lanes; an older database gets them on open
    ("lane", "TEXT NOT NULL DEFAULT ''"),  # the recipient ('' for none)
    ("next_attempt", "REAL"),  # wall time (``now``) before which no attempt is made
    ("dead", "REAL"),  # wall time it was dead-lettered
    ("redrive", "INTEGER NOT NULL DEFAULT 0"),  # set by ``ch-emulator outbox retry``
)
_INDEXES = (
    "CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (seq) WHERE delivered IS NULL",
    "CREATE INDEX IF NOT EXISTS outbox_redrive ON outbox (seq) WHERE redrive = 1",
    "CREATE INDEX IF NOT EXISTS outbox_delivered ON outbox (delivered) WHERE delivered IS NOT NULL",
)
_ENTRY_COLUMNS = "seq, message_id, kind, code, xml, attempts, last_error, delivered, lane, next_attempt, dead"


# -- policy ------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before retry ``n`` (1-based): ``initial * factor**(n-1)``, capped at ``maximum``.

    With an RNG, each delay is scaled by a factor drawn from ``[1 - jitter, 1 + jitter]`` (and
    still capped), so lanes that failed together do not all retry in the same instant.
    """

    initial: float = 1.0
    factor: float = 2.0
    maximum: float = 10.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if self.initial <= 0 or self.factor < 1 or self.maximum < self.initial:
            raise ValueError(f"bad back-off {self}: need initial > 0, factor >= 1, maximum >= initial")
        if not 0 <= self.jitter < 1:
            raise ValueError(f"bad back-off {self}: need 0 <= jitter < 1")

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        base = min(self.maximum, self.initial * self.factor ** max(attempt - 1, 0))
        if rng is None or self.jitter == 0:
            return base
        return min(self.maximum, base * (1 + self.jitter * (2 * rng.random() - 1)))


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    """How hard the outbox tries, and how much it keeps (every figure configurable; seconds)."""

    attempt_timeout: float = 60.0  # one POST; longer than a slow-but-working User endpoint
    max_attempts: int = 100  # then the message is dead-lettered
    backoff: Backoff = field(default_factory=Backoff)
    seed: int = 0  # of the back-off jitter
    restart_delay: float = 1.0  # after a crash in a lane's delivery
    rescan_interval: float = 5.0  # how often re-driven messages (``outbox retry``) are picked up
    prune_interval: float = 300.0
    keep_delivered_s: float | None = 7 * 86400.0  # delivered messages older than this are deleted
    keep_delivered_rows: int | None = 100_000  # and at most this many delivered ones are kept
    sat_keep_rows: int | None = None  # rotate the SAT (same database) down to this many entries
    sat_archive: str | None = None  # where rotated SAT entries go (default: <database>.sat-archive.jsonl)

    def __post_init__(self) -> None:
        problems = [
            name for name, ok in (
                ("attempt_timeout", self.attempt_timeout > 0),
                ("max_attempts", self.max_attempts >= 1),
                ("restart_delay", self.restart_delay >= 0),
                ("rescan_interval", self.rescan_interval > 0),
                ("prune_interval", self.prune_interval > 0),
                ("keep_delivered_s", self.keep_delivered_s is None or self.keep_delivered_s >= 0),
                ("keep_delivered_rows", self.keep_delivered_rows is None or self.keep_delivered_rows >= 0),
                ("sat_keep_rows", self.sat_keep_rows is None or self.sat_keep_rows >= 0),
            ) if not ok
        ]
        if problems:
            raise ValueError(f"bad delivery policy: {', '.join(problems)} out of range")


# -- records -----------------------------------------------------------------------------------

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
    recipient: str = ""
    next_attempt: float | None = None
    dead: float | None = None

    @property
    def state(self) -> str:
        return "delivered" if self.delivered is not None else "dead" if self.dead is not None else "pending"


def entry_from_row(row: tuple[Any, ...]) -> OutboxEntry:
    seq, mid, kind, code, xml, attempts, error, delivered, lane, next_attempt, dead = row
    return OutboxEntry(seq, mid, MessageKind(kind), code, bytes(xml), attempts, error, delivered,
                       lane, next_attempt, dead)


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one delivery attempt came to, for observers (a timeline, a monitor, a test)."""

    message_id: str
    recipient: str
    endpoint: str
    attempts: int  # made so far, this one included
    delivered: bool
    error: str | None = None
    next_attempt: float | None = None  # ``now`` time of the next try, if any
    dead: bool = False  # dead-lettered by this failure


@dataclass(slots=True)
class _Held:
    """A pending message in its lane (the database row is the truth; this is the working copy)."""

    seq: int
    message_id: str
    xml: bytes
    attempts: int
    next_attempt: float | None


@dataclass(eq=False)
class _Lane:
    recipient: str
    heap: list[tuple[int, _Held]] = field(default_factory=list)
    task: "asyncio.Task[None] | None" = None
    waiter: "asyncio.Future[None] | None" = None

    def remove(self, held: _Held) -> None:
        if self.heap and self.heap[0][1] is held:
            heapq.heappop(self.heap)
        else:  # a re-driven older message went in front of it meanwhile
            self.heap = [item for item in self.heap if item[1] is not held]
            heapq.heapify(self.heap)

    def poke(self) -> None:
        """Cut a back-off wait short (the head may have changed, e.g. re-driven)."""
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)


# -- transport ---------------------------------------------------------------------------------

class Transport(Protocol):
    """POSTs one body; returns the HTTP status. Connection trouble raises OSError or aiohttp's
    ClientError; anything else is a bug and crashes the lane (which is then restarted)."""

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> int: ...

    async def aclose(self) -> None: ...


class AiohttpTransport:
    """The real one. No aiohttp timeout: the outbox times each attempt on its own clock."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))
        async with self._session.post(url, data=body, headers=dict(headers)) as reply:
            await reply.read()
            return reply.status

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def clock_sleep(clock: Clock) -> Sleep:
    """A ``sleep`` that waits on ``clock`` (e.g. a VirtualClock advanced by a test or a fleet run)."""

    async def sleep(delay: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        timer = clock.call_later(delay, _wake, future)
        try:
            await future
        finally:
            timer.cancel()

    return sleep


def _wake(future: "asyncio.Future[None]") -> None:
    if not future.done():  # the sleeper may have been cancelled meanwhile
        future.set_result(None)


# -- the outbox --------------------------------------------------------------------------------

class Outbox:
    """Durable, idempotent store and at-least-once deliverer of :class:`UserMessage`.

    ``database`` is a SQLite path or ``":memory:"``. ``endpoint`` is the URL for every recipient
    not in ``endpoints`` (recipient ID -> URL); a recipient with neither is stored, not
    delivered. ``journal`` is a path (appended to) or an open text stream for the JSON lines,
    written once the message is committed. ``clock`` times attempts and back-off (default: the
    running loop's real time); ``now`` stamps the records and the stored next-attempt times, so
    it must mean the same across restarts (wall time; a test passes its virtual clock's).
    One outbox per database at a time (``ch-emulator outbox`` may run beside it).
    """

    def __init__(
        self,
        database: str | Path,
        *,
        endpoint: str | None = None,
        endpoints: Mapping[str, str] | None = None,
        journal: str | Path | IO[str] | None = None,
        renderer: UserMessageRenderer | None = None,
        policy: DeliveryPolicy | None = None,
        backoff: Backoff | None = None,
        clock: Clock | None = None,
        now: Callable[[], float] = time.time,
        transport: Transport | None = None,
    ) -> None:
        policy = policy or DeliveryPolicy()
        if backoff is not None:
            policy = DeliveryPolicy(**{**_fields(policy), "backoff": backoff})
        self.policy = policy
        self.endpoint = endpoint
        self.endpoints = dict(endpoints or {})
        self.renderer = renderer or UserMessageRenderer()
        self._clock = clock
        self._now = now
        self._rng = random.Random(policy.seed)
        self._transport: Transport = transport or AiohttpTransport()
        self._journal, self._owns_journal = self._open_journal(journal)
        self._lanes: dict[str, _Lane] = {}
        self._running = 0
        self._last_put: asyncio.Future[bool] | None = None
        self.delivered_total = 0  # since this outbox was opened
        self.crashes = 0  # lane crashes the supervisor restarted
        self._observers: list[Callable[[Attempt], None]] = []
        self._store = OutboxStore(str(database))
        self._ids, self._next_seq = self._store.open_with(self._open)

    @staticmethod
    def _open_journal(journal: str | Path | IO[str] | None) -> tuple[IO[str] | None, bool]:
        if journal is None:
            return None, False
        if isinstance(journal, (str, Path)):
            return open(journal, "a", encoding="utf-8"), True
        return journal, False

    def _open(self, conn: sqlite3.Connection) -> tuple[set[str], int]:
        """Schema (adding the lane columns to an older outbox), then what the lanes start with."""
        conn.execute("CREATE TABLE IF NOT EXISTS outbox (" + ", ".join(f"{n} {t}" for n, t in _COLUMNS) + ")")
        have = {row[1] for row in conn.execute("PRAGMA table_info(outbox)")}
        for name, kind in _COLUMNS:
            if name not in have:
                conn.execute(f"ALTER TABLE outbox ADD COLUMN {name} {kind}")
                if name == "lane":
                    conn.execute("UPDATE outbox SET lane = COALESCE(json_extract(record, '$.recipient'), '')")
        for statement in _INDEXES:
            conn.execute(statement)
        conn.execute("UPDATE outbox SET redrive = 0 WHERE redrive = 1")  # all pending rows load below
        ids = {row[0] for row in conn.execute("SELECT message_id FROM outbox")}
        top = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").fetchone()
        for seq, mid, xml, attempts, next_attempt, lane in conn.execute(
            "SELECT seq, message_id, xml, attempts, next_attempt, lane FROM outbox "
            "WHERE delivered IS NULL AND dead IS NULL ORDER BY seq"
        ):
            self._lane(lane).heap.append((seq, _Held(seq, mid, bytes(xml), attempts, next_attempt)))
        return ids, (top[0] if top else 0) + 1

    def _lane(self, recipient: str) -> _Lane:
        lane = self._lanes.get(recipient)
        if lane is None:
            lane = self._lanes[recipient] = _Lane(recipient)
        return lane

    def add_observer(self, observer: Callable[[Attempt], None]) -> None:
        """``observer(attempt)`` after every delivery attempt, once its outcome is decided."""
        self._observers.append(observer)

    def _notify(self, attempt: Attempt) -> None:
        for observer in self._observers:  # one that raises crashes the lane (logged, then restarted)
            observer(attempt)

    def endpoint_for(self, recipient: str) -> str | None:
        return self.endpoints.get(recipient, self.endpoint)

    def _get_clock(self) -> Clock:
        if self._clock is None:
            self._clock = AsyncioClock()
        return self._clock

    # -- storing -------------------------------------------------------------------------

    def put(self, message: UserMessage) -> bool:
        """Accept ``message``; False (nothing stored) if its ``message_id`` is already held.

        Never waits for the database: the row is committed by the writer thread's next group
        commit (``await committed()`` waits for it). The lane has the message at once.
        """
        record = user_message_to_json(message)
        text = json.dumps(record, sort_keys=True)
        if message.message_id in self._ids:
            self._store.post(_duplicate_check(message.message_id, text))
            return False
        seq = self._next_seq
        xml = self.renderer.xml(message, counter=seq)  # before any state changes: a bad message fails alone
        self._next_seq += 1
        self._ids.add(message.message_id)
        lane = message.recipient or ""
        row = (seq, message.message_id, message.kind.value, message.code, text, xml, self._now(), lane)

        def insert(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                "INSERT OR IGNORE INTO outbox (seq, message_id, kind, code, record, xml, created, lane) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row)
            return cursor.rowcount == 1

        journal = self._journal

        def after_commit(inserted: bool) -> None:
            if inserted and journal is not None:
                journal.write(text + "\n")
                journal.flush()

        try:
            asyncio.get_running_loop()
        except RuntimeError:  # no loop (a script or a sync test): nobody can await the commit
            self._store.post(insert, after_commit)
        else:
            self._last_put = self._store.submit(insert, after_commit)
            self._last_put.add_done_callback(_log_failed_put(message.message_id))
        target = self._lane(lane)
        heapq.heappush(target.heap, (seq, _Held(seq, message.message_id, xml, 0, None)))
        _LOGGER.debug("outbox: accepted %s %s as #%d for %r", message.kind.value, message.message_id, seq, lane)
        if self._running:
            self._ensure_lane_task(target)
        return True

    async def put_durable(self, message: UserMessage) -> bool:
        """:meth:`put`, then wait until the message is committed."""
        new = self.put(message)
        await self.committed()
        return new

    async def committed(self) -> None:
        """Wait until everything put so far is on disk."""
        last = self._last_put
        if last is not None and not last.done():
            await asyncio.shield(last)
        else:
            await self._store.call(lambda conn: None)

    # -- reading -------------------------------------------------------------------------

    def entries(self, *, pending_only: bool = False, dead_only: bool = False) -> list[OutboxEntry]:
        """Every stored message (blocks until the writer has committed what is queued)."""
        return self._store.run_sync(_select_entries(pending_only, dead_only))

    async def aentries(self, *, pending_only: bool = False, dead_only: bool = False) -> list[OutboxEntry]:
        return await self._store.call(_select_entries(pending_only, dead_only))

    def pending_count(self) -> int:
        """Messages still to deliver (dead-lettered ones excluded)."""
        return sum(len(lane.heap) for lane in self._lanes.values())

    # -- delivering ----------------------------------------------------------------------

    async def run(self) -> None:
        """Deliver for ever (the supervised delivery task): one task per lane with work, each
        restarted after a crash; re-driven messages picked up and old ones pruned on schedule.
        Cancel to stop."""
        clock = self._get_clock()
        sleep = clock_sleep(clock)
        self._running += 1
        try:
            for lane in list(self._lanes.values()):
                self._ensure_lane_task(lane)
            next_prune = clock.now() + self.policy.prune_interval
            while True:
                await sleep(self.policy.rescan_interval)
                await self._guarded(self.rescan)
                if clock.now() >= next_prune:
                    await self._guarded(self.prune)
                    next_prune = clock.now() + self.policy.prune_interval
        finally:
            self._running -= 1
            if not self._running:
                await self._stop_lanes()
                await self._transport.aclose()

    async def _guarded(self, step: Callable[[], Awaitable[int]]) -> None:
        try:
            await step()
        except asyncio.CancelledError:
            raise
        except Exception:  # the database may be briefly unusable; the next round tries again
            _LOGGER.exception("outbox: %s failed; trying again next round", getattr(step, "__name__", step))

    async def deliver_pending(self) -> int:
        """Deliver until no lane with an endpoint holds a pending message (each ends delivered or
        dead-lettered). Returns how many were delivered."""
        self._get_clock()
        before = self.delivered_total
        try:
            while tasks := [self._ensure_lane_task(lane) for lane in self._lanes.values()
                            if lane.heap and self.endpoint_for(lane.recipient) is not None]:
                await asyncio.gather(*tasks)
        finally:
            if not self._running:
                await self._stop_lanes()
                await self._transport.aclose()
        return self.delivered_total - before

    def _ensure_lane_task(self, lane: _Lane) -> "asyncio.Task[None]":
        if lane.task is None or lane.task.done():
            lane.task = asyncio.get_running_loop().create_task(
                self._supervise(lane), name=f"outbox-lane:{lane.recipient or '-'}")
        return lane.task

    async def _stop_lanes(self) -> None:
        tasks = [lane.task for lane in self._lanes.values() if lane.task is not None and not lane.task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _supervise(self, lane: _Lane) -> None:
        """A lane's task: deliver until the lane is empty; a crash is logged and the lane restarts."""
        sleep = clock_sleep(self._get_clock())
        while True:
            try:
                await self._deliver_lane(lane)
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                self.crashes += 1
                _LOGGER.exception("outbox: delivery to %r crashed; restarting it in %.3g s",
                                  lane.recipient, self.policy.restart_delay)
                await sleep(self.policy.restart_delay)

    async def _deliver_lane(self, lane: _Lane) -> None:
        while lane.heap:
            endpoint = self.endpoint_for(lane.recipient)
            if endpoint is None:
                return  # stored only, until an outbox with an endpoint for it runs
            held = lane.heap[0][1]
            if held.next_attempt is not None:
                wait = held.next_attempt - self._now()
                if wait > 0:
                    await self._pause(lane, wait)
                    continue  # the head may have changed meanwhile
            ok, error = await self._attempt(endpoint, held)
            held.attempts += 1
            if ok:
                lane.remove(held)
                self.delivered_total += 1
                self._store.post(_mark(held.seq, delivered=self._now(), attempts=held.attempts))
                _LOGGER.debug("outbox: delivered %s", held.message_id)
                self._notify(Attempt(held.message_id, lane.recipient, endpoint, held.attempts, True))
                continue
            if held.attempts >= self.policy.max_attempts:
                lane.remove(held)
                self._store.post(_mark(held.seq, dead=self._now(), attempts=held.attempts, error=error))
                _LOGGER.error("outbox: %s dead-lettered after %d attempts to %s (last: %s)",
                              held.message_id, held.attempts, endpoint, error)
                self._notify(Attempt(held.message_id, lane.recipient, endpoint, held.attempts, False, error, dead=True))
                continue
            delay = self.policy.backoff.delay(held.attempts, self._rng)
            held.next_attempt = self._now() + delay
            self._store.post(_mark(held.seq, attempts=held.attempts, error=error, next_attempt=held.next_attempt))
            _LOGGER.warning("outbox: delivery of %s to %s failed (%s); attempt %d in %.3g s",
                            held.message_id, endpoint, error, held.attempts + 1, delay)
            self._notify(Attempt(held.message_id, lane.recipient, endpoint, held.attempts, False, error,
                                 held.next_attempt))

    async def _pause(self, lane: _Lane, delay: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        lane.waiter = future
        timer = self._get_clock().call_later(delay, _wake, future)
        try:
            await future
        finally:
            timer.cancel()
            lane.waiter = None

    async def _attempt(self, endpoint: str, held: _Held) -> tuple[bool, str | None]:
        """One POST, timed on the clock. Only this lane's task calls it: one attempt in flight."""
        headers = {"Content-Type": "application/xml; charset=utf-8", MESSAGE_ID_HEADER: held.message_id}
        post = asyncio.ensure_future(self._transport.post(endpoint, held.xml, headers))
        timed_out = False

        def expire() -> None:
            nonlocal timed_out
            timed_out = True
            post.cancel()

        timer: Timer = self._get_clock().call_later(self.policy.attempt_timeout, expire)
        try:
            status = await post
        except asyncio.CancelledError:
            if not timed_out:
                raise
            return False, f"no answer within {self.policy.attempt_timeout:g} s"
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
            return False, f"{type(exc).__name__}: {exc}"
        finally:
            timer.cancel()
        if 200 <= status < 300:
            return True, None
        return False, f"HTTP {status}"

    # -- re-drive and pruning --------------------------------------------------------------

    async def rescan(self) -> int:
        """Take in messages ``ch-emulator outbox retry`` re-drove; returns how many."""
        rows = await self._store.call(_take_redriven)
        for seq, mid, xml, attempts, next_attempt, recipient in rows:
            self._ids.add(mid)
            lane = self._lane(recipient)
            for _, held in lane.heap:
                if held.seq == seq:  # still pending here: retry it now
                    held.attempts, held.next_attempt = attempts, next_attempt
                    break
            else:
                heapq.heappush(lane.heap, (seq, _Held(seq, mid, bytes(xml), attempts, next_attempt)))
            lane.poke()
            if self._running:
                self._ensure_lane_task(lane)
        if rows:
            _LOGGER.info("outbox: %d re-driven message(s) back in their lanes", len(rows))
        return len(rows)

    async def prune(self) -> int:
        """Delete delivered messages past ``keep_delivered_s`` or beyond ``keep_delivered_rows``
        (newest kept). Pending and dead-lettered messages are never pruned. Returns how many."""
        removed = await self._store.call(_prune(self._now(), self.policy))
        self._ids.difference_update(removed)
        if removed:
            _LOGGER.info("outbox: pruned %d delivered message(s)", len(removed))
        if self.policy.sat_keep_rows is not None:
            await self.rotate_sat()
        return len(removed)

    async def rotate_sat(self) -> int:
        """Move all but the newest ``sat_keep_rows`` SAT entries of this database to
        ``sat_archive`` (JSON lines); run with :meth:`prune`. Returns how many moved."""
        keep = self.policy.sat_keep_rows
        archive = self.policy.sat_archive or (None if self._store.path == ":memory:"
                                              else self._store.path + ".sat-archive.jsonl")
        if keep is None or archive is None:
            return 0
        moved = await self._store.call(_rotate_sat(keep, archive))
        if moved:
            _LOGGER.info("outbox: moved %d SAT entries to %s", moved, archive)
        return moved

    # -- closing -------------------------------------------------------------------------

    def close(self) -> None:
        """Commit what is queued and close the database and a journal this outbox opened."""
        self._store.close()
        self._close_journal()

    async def aclose(self) -> None:
        """:meth:`close` without blocking the loop."""
        await self._store.aclose()
        self._close_journal()

    def _close_journal(self) -> None:
        if self._owns_journal and self._journal is not None:
            self._journal.close()
        self._journal = None

    def __enter__(self) -> "Outbox":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# -- database jobs (run in the writer thread) ------------------------------------------------------

def _fields(policy: DeliveryPolicy) -> dict[str, Any]:
    return {name: getattr(policy, name) for name in DeliveryPolicy.__dataclass_fields__}


def _duplicate_check(message_id: str, text: str) -> Callable[[sqlite3.Connection], None]:
    def check(conn: sqlite3.Connection) -> None:
        row = conn.execute("SELECT record FROM outbox WHERE message_id = ?", (message_id,)).fetchone()
        if row and row[0] != text:
            _LOGGER.warning("outbox: message %s already held with different content; kept the first", message_id)

    return check


def _log_failed_put(message_id: str) -> Callable[["asyncio.Future[bool]"], None]:
    def done(future: "asyncio.Future[bool]") -> None:
        if not future.cancelled() and future.exception() is not None:
            _LOGGER.error("outbox: could not store %s: %s (it is delivered from memory, but would not "
                          "survive a restart)", message_id, future.exception())

    return done


def _mark(seq: int, *, attempts: int, delivered: float | None = None, dead: float | None = None,
          error: str | None = None, next_attempt: float | None = None) -> Callable[[sqlite3.Connection], None]:
    def mark(conn: sqlite3.Connection) -> None:
        conn.execute(
            "UPDATE outbox SET attempts = ?, last_error = ?, delivered = ?, dead = ?, next_attempt = ? WHERE seq = ?",
            (attempts, error, delivered, dead, next_attempt, seq))

    return mark


def _select_entries(pending_only: bool, dead_only: bool) -> Callable[[sqlite3.Connection], list[OutboxEntry]]:
    def select(conn: sqlite3.Connection) -> list[OutboxEntry]:
        query = f"SELECT {_ENTRY_COLUMNS} FROM outbox"
        if pending_only:
            query += " WHERE delivered IS NULL AND dead IS NULL"
        elif dead_only:
            query += " WHERE dead IS NOT NULL"
        return [entry_from_row(row) for row in conn.execute(query + " ORDER BY seq")]

    return select


def _take_redriven(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
    rows = conn.execute(
        "SELECT seq, message_id, xml, attempts, next_attempt, lane FROM outbox "
        "WHERE redrive = 1 AND delivered IS NULL AND dead IS NULL ORDER BY seq").fetchall()
    conn.execute("UPDATE outbox SET redrive = 0 WHERE redrive = 1")
    return rows


def _rotate_sat(keep_rows: int, archive: str) -> Callable[[sqlite3.Connection], int]:
    def rotate(conn: sqlite3.Connection) -> int:
        if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sat'").fetchone() is None:
            return 0
        with open(archive, "a", encoding="utf-8") as stream:
            return sat.rotate(conn, keep_rows=keep_rows, archive=stream)

    return rotate


def _prune(now: float, policy: DeliveryPolicy) -> Callable[[sqlite3.Connection], list[str]]:
    def prune(conn: sqlite3.Connection) -> list[str]:
        where: list[str] = []
        values: list[Any] = []
        if policy.keep_delivered_s is not None:
            where.append("delivered < ?")
            values.append(now - policy.keep_delivered_s)
        if policy.keep_delivered_rows is not None:
            where.append("seq NOT IN (SELECT seq FROM outbox WHERE delivered IS NOT NULL ORDER BY seq DESC LIMIT ?)")
            values.append(policy.keep_delivered_rows)
        if not where:
            return []
        condition = f"delivered IS NOT NULL AND ({' OR '.join(where)})"
        removed = [row[0] for row in conn.execute(f"SELECT message_id FROM outbox WHERE {condition}", values)]
        conn.execute(f"DELETE FROM outbox WHERE {condition}", values)
        return removed

    return prune
