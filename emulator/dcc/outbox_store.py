"""The outbox's SQLite connection, owned by one writer thread that commits in groups.

Every database call of the outbox runs here, never on the event loop: a job is a function of the
connection, queued with :meth:`OutboxStore.submit`, and its result comes back as an asyncio
future. The thread takes every job waiting when it wakes and runs them in ONE transaction (each
in its own savepoint, so one failing job fails alone), so a burst of N messages costs one fsync,
not N. The batch commits with ``synchronous=NORMAL`` and is then fsynced by the database's
:class:`~emulator.dcc.group_commit.WalSync` (shared with the DSP's connection) before any of its
futures resolves: the guarantee of ``synchronous=FULL``, without holding the write lock during the
fsync (the DSP, on the event loop, would wait for it). ``SQLITE_BUSY`` (another process, e.g. ``ch-emulator outbox retry``, holding the write lock)
is retried in the thread with a short back-off; the loop never waits for it.

Measured against aiosqlite with a commit per message: ``benchmarks/outbox.py --compare-db``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import sqlite3
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Generic, TypeVar

from .group_commit import WalSync, configure, is_busy

_LOGGER = logging.getLogger(__name__)

T = TypeVar("T")
Job = Callable[[sqlite3.Connection], T]

BUSY_RETRY_LIMIT_S = 30.0  # give up a batch (its futures fail) after this long locked out


@dataclass(slots=True)
class _Pending(Generic[T]):
    job: Job[T]
    reply: "Callable[[bool, Any], None] | None"  # None: nobody waits; a failure is logged
    after_commit: "Callable[[T], None] | None" = None  # runs in the writer thread once committed
    future: "asyncio.Future[T] | None" = None  # resolved on ``loop`` (one hand-over per batch and loop)
    loop: "asyncio.AbstractEventLoop | None" = None


class _JobFailed(Exception):
    """A job raised in a batch run without savepoints: run it again, isolated."""


class OutboxStoreClosed(RuntimeError):
    """A job was submitted after :meth:`OutboxStore.close`."""


def connect(path: str) -> sqlite3.Connection:
    """A connection with the settings of the outbox's writer (WAL, NORMAL sync: its commits are
    fsynced by a :class:`WalSync`, never use it without one; busy wait)."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 50")
    if path != ":memory:":
        configure(conn)  # a committed batch survives a power cut once WalSync.sync() returns
    return conn


class OutboxStore:
    """One SQLite connection, one writer thread, group commit.

    ``open_with`` runs on the calling thread before the writer starts (schema, migration, the
    start-up read), so a new outbox knows its state before its first ``put``.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._conn = connect(path)
        self._wal_sync = WalSync.acquire(path) if path != ":memory:" else None
        self._queue: "queue.SimpleQueue[list[_Pending[Any]] | _Pending[Any] | None]" = queue.SimpleQueue()
        self._tick: list[_Pending[Any]] = []  # queued from the event loop during this pass of it
        self._tick_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.batches = 0  # group commits made

    def open_with(self, job: Job[T]) -> T:
        """Run ``job`` synchronously in one transaction; only before :meth:`start`."""
        assert self._thread is None, "open_with after start"
        conn = self._conn
        conn.execute("PRAGMA busy_timeout = 5000")  # start-up may wait for `ch-emulator outbox` to finish
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = job(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            if self._wal_sync is not None:
                self._wal_sync.sync()
        finally:
            conn.execute("PRAGMA busy_timeout = 50")
        return result

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"outbox-writer:{self.path}", daemon=True)
            self._thread.start()

    def submit(self, job: Job[T], after_commit: "Callable[[T], None] | None" = None) -> "asyncio.Future[T]":
        """Queue ``job``; the future resolves on the calling loop once its batch has committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._enqueue_from_loop(loop, _Pending(job, None, after_commit, future, loop))
        return future

    def run_sync(self, job: Job[T]) -> T:
        """Run ``job`` and wait for its commit, blocking the caller (inspection and tests, not the loop's hot path)."""
        if self._thread is None and not self._closed:
            return self.open_with(job)
        done: "concurrent.futures.Future[T]" = concurrent.futures.Future()

        def reply(ok: bool, value: Any) -> None:
            if ok:
                done.set_result(value)
            else:
                done.set_exception(value)

        self._flush_tick()  # what the loop queued before this goes first
        self._enqueue(_Pending(job, reply))
        return done.result()

    def _enqueue(self, pending: "_Pending[Any]") -> None:
        if self._closed:
            raise OutboxStoreClosed(f"{self.path}: outbox database is closed")
        self.start()
        self._queue.put(pending)

    def _enqueue_from_loop(self, loop: asyncio.AbstractEventLoop, pending: "_Pending[Any]") -> None:
        """Jobs queued during one pass of the event loop reach the writer together (one wake-up
        of its thread, not one per job: each takes the GIL from the loop)."""
        if self._closed:
            raise OutboxStoreClosed(f"{self.path}: outbox database is closed")
        self.start()
        with self._tick_lock:
            self._tick.append(pending)
            first = len(self._tick) == 1
        if first:
            loop.call_soon(self._flush_tick)

    def _flush_tick(self) -> None:
        with self._tick_lock:
            jobs, self._tick = self._tick, []
        if jobs:
            self._queue.put(jobs)

    async def call(self, job: Job[T]) -> T:
        return await self.submit(job)

    def post(self, job: Job[T], after_commit: "Callable[[T], None] | None" = None) -> None:
        """Queue ``job`` without waiting for it (a failure is logged)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._enqueue(_Pending(job, None, after_commit))
        else:
            self._enqueue_from_loop(loop, _Pending(job, None, after_commit))

    # -- the writer thread ---------------------------------------------------------------

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                break
            batch = list(first) if isinstance(first, list) else [first]
            stop = False
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                if isinstance(item, list):
                    batch.extend(item)
                else:
                    batch.append(item)
            self._commit(batch)
            if stop:
                break
        self._conn.close()

    def _commit(self, batch: list[_Pending[Any]]) -> None:
        started = time.monotonic()
        delay = 0.005
        while True:
            try:
                outcomes = self._run_batch(batch)
                break
            except sqlite3.OperationalError as exc:
                if not is_busy(exc) or time.monotonic() - started > BUSY_RETRY_LIMIT_S:
                    outcomes = [(False, exc)] * len(batch)
                    break
                _LOGGER.debug("outbox: %s busy, retrying the batch in %.3f s", self.path, delay)
                time.sleep(delay)  # the writer thread waits, never the event loop
                delay = min(delay * 2, 0.5)
        if self._wal_sync is not None and any(ok for ok, _ in outcomes):
            try:
                self._wal_sync.sync()  # the lock is free: the DSP may commit meanwhile
            except OSError as exc:  # logged by WalSync; the rows are committed, not yet power-safe
                _LOGGER.debug("outbox: fsync failed on %s: %s", self.path, exc)
        self.batches += 1
        replies: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], bool, Any]]] = {}
        for pending, (ok, value) in zip(batch, outcomes):
            if ok and pending.after_commit is not None:
                try:
                    pending.after_commit(value)
                except Exception:
                    _LOGGER.exception("outbox: after-commit step failed on %s", self.path)
            if pending.future is not None and pending.loop is not None:
                replies.setdefault(pending.loop, []).append((pending.future, ok, value))
            elif pending.reply is not None:
                pending.reply(ok, value)
            elif not ok:
                _LOGGER.error("outbox: database job failed on %s: %s", self.path, value)
        for loop, resolved in replies.items():
            try:
                loop.call_soon_threadsafe(_resolve_many, resolved)
            except RuntimeError:  # that loop has closed: nobody is waiting any more
                pass

    def _run_batch(self, batch: list[_Pending[Any]]) -> list[tuple[bool, Any]]:
        """All jobs in one transaction. If one fails, the batch is redone with each job in its
        own savepoint, so only the failing job fails (the common case pays for no savepoints)."""
        try:
            return self._transaction(batch, isolate=False)
        except _JobFailed:
            return self._transaction(batch, isolate=True)

    def _transaction(self, batch: list[_Pending[Any]], *, isolate: bool) -> list[tuple[bool, Any]]:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        outcomes: list[tuple[bool, Any]] = []
        try:
            for pending in batch:
                if isolate:
                    conn.execute("SAVEPOINT job")
                try:
                    value = pending.job(conn)
                except Exception as exc:
                    if isinstance(exc, sqlite3.OperationalError) and is_busy(exc):
                        raise
                    if not isolate:
                        raise _JobFailed from exc
                    conn.execute("ROLLBACK TO job")
                    outcomes.append((False, exc))
                else:
                    outcomes.append((True, value))
                if isolate:
                    conn.execute("RELEASE job")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return outcomes

    # -- closing -------------------------------------------------------------------------

    def close(self) -> None:
        """Commit what is queued, stop the thread and close the connection (blocks until done)."""
        if self._closed:
            return
        self._flush_tick()
        self._closed = True
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
        else:
            self._conn.close()
        if self._wal_sync is not None:
            self._wal_sync.release()
            self._wal_sync = None

    async def aclose(self) -> None:
        """:meth:`close`, waiting for the queued commits without blocking the loop."""
        if self._closed:
            return
        if self._thread is not None:
            await self.call(lambda conn: None)  # everything queued before it has committed
        self.close()  # the thread has nothing left but to close the connection


def _resolve_many(resolved: "list[tuple[asyncio.Future[Any], bool, Any]]") -> None:
    for future, ok, value in resolved:
        _resolve(future, ok, value)


def _resolve(future: "asyncio.Future[Any]", ok: bool, value: Any) -> None:
    if future.done():  # the awaiting task was cancelled meanwhile
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)
