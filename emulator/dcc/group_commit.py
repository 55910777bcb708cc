"""Group commit for an SQLite database in WAL mode: many transactions, one fsync, off the event loop.

Every connection that uses this commits with ``synchronous=NORMAL``: COMMIT appends the
transaction's pages to the write-ahead log (the ``-wal`` file) with write() and returns without
an fsync. From then on the transaction survives a kill of the process (its pages are in the
operating system's cache), but not yet a power cut. :class:`WalSync` makes commits power-safe in
groups: after committing, a writer asks for a sync (``await durable()`` on the event loop,
``sync()`` from a thread) and one thread fsyncs the WAL file. An fsync covers every commit whose
write() returned before it began, so the thread releases every request made before it began,
however many. ``synchronous=FULL`` gives the same guarantee with one fsync per commit, made inside
COMMIT while the database's write lock is held (every other writer waits for it; on the event
loop, the whole service waits); here the lock is free during the fsync, and N commits share one.

SQLite's automatic checkpoint (copying the WAL into the database file, with two fsyncs) runs
inside the COMMIT that crosses its threshold, on the committing thread: the event loop, for the
DSP. Connections opened with :func:`configure` turn it off; the sync thread checkpoints instead
(PASSIVE, on its own connection: writers are not blocked), at most once a second while busy and
when it goes idle. The thread runs only while there is something to sync: it leaves after
:data:`IDLE_EXIT_S` without a request and the next request starts it again.

One :class:`WalSync` per database file in the process (:meth:`WalSync.acquire`), shared by every
connection to it (the DSP's :class:`~emulator.dcc.store.Store` and the outbox's writer), so their
commits share fsyncs too.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import ClassVar

_LOGGER = logging.getLogger(__name__)

CHECKPOINT_INTERVAL_S = 1.0
"""The sync thread checkpoints at most this often while busy (and only after commits)."""
IDLE_EXIT_S = 0.2
"""The sync thread checkpoints and leaves after this long without a request."""
CHECKPOINT_AFTER_COMMITS = 1000
"""Commits without any sync request after which the thread starts anyway, to checkpoint."""

_Release = Callable[[BaseException | None], None]


def is_busy(exc: sqlite3.OperationalError) -> bool:
    """SQLITE_BUSY / SQLITE_LOCKED: another connection holds the lock (try again later)."""
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def configure(conn: sqlite3.Connection) -> None:
    """WAL, ``synchronous=NORMAL`` and no automatic checkpoint: for connections whose commits a
    :class:`WalSync` makes durable (never use these settings without one)."""
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")


class WalSync:
    """The fsync thread of one database file (see the module docstring)."""

    _shared: ClassVar[dict[str, tuple[WalSync, int]]] = {}
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        self.wal_path = self.path + "-wal"
        self._cond = threading.Condition()
        self._waiting: list[_Release] = []
        self._loop_waiting: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
        self._committed = False  # a commit was noted since the last checkpoint
        self._unsynced_commits = 0
        self._closed = False
        self._thread: threading.Thread | None = None
        self._fd: int | None = None
        self._inode: tuple[int, int] | None = None
        self._checkpointer: sqlite3.Connection | None = None
        self._last_checkpoint = time.monotonic()
        self.syncs = 0  # fsyncs made
        self.released = 0  # requests released by them
        self.checkpoints = 0

    # -- sharing ---------------------------------------------------------------------------
    @classmethod
    def acquire(cls, path: str) -> WalSync:
        """The process's WalSync of ``path`` (created on first use); :meth:`release` it when done."""
        key = os.path.realpath(path)
        with cls._shared_lock:
            found = cls._shared.get(key)
            sync = found[0] if found else cls(path)
            cls._shared[key] = (sync, (found[1] if found else 0) + 1)
        return sync

    def release(self) -> None:
        """One user less; the last one stops the thread (once what waits is synced)."""
        key = os.path.realpath(self.path)
        with self._shared_lock:
            found = self._shared.get(key)
            if found is None or found[0] is not self:
                return
            if found[1] > 1:
                self._shared[key] = (self, found[1] - 1)
                return
            del self._shared[key]
        self.close()

    # -- requests --------------------------------------------------------------------------
    def note_commit(self) -> None:
        """A transaction committed (so the WAL has something to checkpoint); cheap, any thread.
        Many commits that nobody asks to sync still get checkpointed (the thread starts for it)."""
        self._committed = True
        self._unsynced_commits += 1
        if self._unsynced_commits >= CHECKPOINT_AFTER_COMMITS and self._thread is None:
            self._unsynced_commits = 0
            self.start()

    def durable(self) -> asyncio.Future[None]:
        """A future of the running loop, resolved once every commit made before this call is on
        disk (fsynced). Never blocks the loop."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._cond:
            if self._closed:
                future.set_result(None)
                return future
            self._loop_waiting.setdefault(loop, []).append(future)
            self._committed = True
            self._unsynced_commits = 0
            self._start_locked()
            self._cond.notify()
        return future

    def sync(self) -> None:
        """Block until every commit made before this call is on disk (from a thread, not the loop)."""
        done = threading.Event()
        failure: list[BaseException] = []

        def release(error: BaseException | None) -> None:
            if error is not None:
                failure.append(error)
            done.set()

        with self._cond:
            if self._closed:
                return
            self._waiting.append(release)
            self._committed = True
            self._unsynced_commits = 0
            self._start_locked()
            self._cond.notify()
        done.wait()
        if failure:
            raise failure[0]

    # -- the thread ------------------------------------------------------------------------
    def start(self) -> None:
        """Run the thread if it is not running (it leaves after :data:`IDLE_EXIT_S` with nothing to do)."""
        with self._cond:
            self._start_locked()

    def _start_locked(self) -> None:
        if self._thread is None and not self._closed:
            self._thread = threading.Thread(target=self._run, name=f"wal-sync:{self.path}", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                if not (self._waiting or self._loop_waiting or self._closed):
                    self._cond.wait(timeout=IDLE_EXIT_S)
                waiting, self._waiting = self._waiting, []
                loop_waiting, self._loop_waiting = self._loop_waiting, {}
                closing = self._closed
            if waiting or loop_waiting:
                self._release(waiting, loop_waiting)
            idle = not (waiting or loop_waiting)
            if self._committed and (idle or closing
                                    or time.monotonic() - self._last_checkpoint >= CHECKPOINT_INTERVAL_S):
                self._checkpoint()
            if idle or closing:
                with self._cond:
                    if not (self._waiting or self._loop_waiting):
                        self._thread = None  # a later request starts another
                        return

    def _release(self, waiting: list[_Release],
                 loop_waiting: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]]) -> None:
        error: BaseException | None = None
        try:
            self._fsync()
        except OSError as exc:
            error = exc
            _LOGGER.error("%s: fsync of the write-ahead log failed: %s; the last commits may not survive "
                          "a power cut", self.path, exc)
        self.syncs += 1
        self.released += len(waiting) + sum(len(f) for f in loop_waiting.values())
        for release in waiting:
            release(error)
        for loop, futures in loop_waiting.items():
            try:
                loop.call_soon_threadsafe(_resolve_all, futures, error)
            except RuntimeError:  # that loop has closed: nobody waits any more
                pass

    def _fsync(self) -> None:
        """fsync the WAL file (the database file when there is no WAL)."""
        try:
            stat = os.stat(self.wal_path)
        except FileNotFoundError:
            fd = os.open(self.path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            return
        inode = (stat.st_dev, stat.st_ino)
        if self._fd is None or inode != self._inode:
            if self._fd is not None:
                os.close(self._fd)
            self._fd = os.open(self.wal_path, os.O_RDONLY)
            self._inode = inode
            _fsync_directory(os.path.dirname(self.path))  # a new WAL file's name must survive too
        os.fsync(self._fd)

    def _checkpoint(self) -> None:
        self._committed = False
        self._last_checkpoint = time.monotonic()
        if not os.path.exists(self.wal_path):
            return
        try:
            if self._checkpointer is None:
                self._checkpointer = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
                self._checkpointer.execute("PRAGMA synchronous=FULL")  # the checkpoint syncs WAL and database
            self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            self.checkpoints += 1
        except sqlite3.Error as exc:
            _LOGGER.warning("%s: checkpoint failed (retried in %g s): %s", self.path, CHECKPOINT_INTERVAL_S, exc)

    def close(self) -> None:
        """Release what waits (after a last fsync), stop the thread and close its files; blocks."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        if self._checkpointer is not None:
            self._checkpointer.close()
            self._checkpointer = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _resolve_all(futures: list[asyncio.Future[None]], error: BaseException | None) -> None:
    for future in futures:
        if future.done():  # its waiter was cancelled
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)


def _fsync_directory(folder: str) -> None:
    try:
        fd = os.open(folder or ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
