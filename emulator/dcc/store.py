"""One SQLite database for the DSP's records (SMI and SAT), with all-or-nothing writes.

The DSP changes the inventory and appends to the audit trail as one step per event; if anything in
that step fails, none of it may stay. :meth:`Store.transaction` gives that guarantee, nests (inner
blocks become savepoints) and is cheap enough to run once per device in a fleet of thousands.

A file database commits with ``synchronous=NORMAL`` (a commit survives a kill of the process at
once) and is made power-safe in groups by :mod:`.group_commit`: ``await store.durable()`` returns
once every transaction committed before it is fsynced, one fsync for all the commits of that
moment, made off the event loop (the front door awaits it before answering).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import time
from typing import Any, Callable

from .group_commit import WalSync, configure, is_busy

_LOGGER = logging.getLogger(__name__)

BUSY_TIMEOUT_S = 5.0
"""How long a transaction waits for another writer's lock (what sqlite3's default timeout was)."""


class Store:
    """An SQLite database at ``path`` (a file, or ``":memory:"`` for a throw-away run)."""

    def __init__(self, path: str | os.PathLike[str] = ":memory:") -> None:
        self.path = os.fspath(path)
        try:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves, so nothing commits behind our back.
            # timeout=0: a locked database is waited for by _begin_when_free, in finer steps than
            # SQLite's own busy handler (which sleeps 1, 2, 5, 10 ms... with the event loop stopped).
            self._conn = sqlite3.connect(self.path, isolation_level=None, timeout=0)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot open database: {exc}") from exc
        self._depth = 0
        self._rollback_hooks: list[Callable[[], None]] = []
        self._wal_sync: WalSync | None = None
        if self.path != ":memory:":
            configure(self._conn)
            self._wal_sync = WalSync.acquire(self.path)

    @property
    def connection(self) -> sqlite3.Connection:
        return self._conn

    def transaction(self) -> "_Transaction":
        """Everything inside commits together or not at all; nested blocks are savepoints."""
        return _Transaction(self)

    def write(self) -> "_Transaction | _Joined":
        """For a block that changes the database with ONE statement (it may read first, and may
        raise before it writes): SQLite makes a single statement atomic by itself, so inside a
        transaction the block joins it without a savepoint (the DSP's audit rows and SMI
        updates, a dozen a premises in a fleet); outside one it is a transaction of its own."""
        return _Transaction(self) if self._depth == 0 else _Joined(self._conn)

    def on_rollback(self, hook: Callable[[], None]) -> None:
        """Call ``hook`` after any rollback (of a transaction or a savepoint): for caches of rows
        read through this connection, whose reads see the uncommitted writes a rollback undoes."""
        self._rollback_hooks.append(hook)

    def durable(self) -> "asyncio.Future[None]":
        """Resolves (on the running loop) once every transaction committed so far is on disk."""
        if self._wal_sync is None:  # in memory: nothing to wait for
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            future.set_result(None)
            return future
        return self._wal_sync.durable()

    def close(self) -> None:
        self._conn.close()
        if self._wal_sync is not None:
            self._wal_sync.release()  # the last user of the file stops its sync thread
            self._wal_sync = None


class _Transaction:
    """:meth:`Store.transaction` as a plain context manager (a generator-based one costs twice
    as much, and a fleet runs dozens a premises)."""

    __slots__ = ("_store", "_name")

    def __init__(self, store: Store) -> None:
        self._store = store
        self._name = ""

    def __enter__(self) -> sqlite3.Connection:
        store = self._store
        conn = store._conn
        depth = store._depth
        if depth == 0:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                _begin_when_free(conn, exc, store.path)
        else:
            self._name = f"sp{depth}"
            conn.execute(f"SAVEPOINT {self._name}")
        store._depth = depth + 1
        return conn

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        store = self._store
        conn = store._conn
        store._depth -= 1
        if exc_type is None:
            if store._depth == 0:
                conn.execute("COMMIT")
                if store._wal_sync is not None:
                    store._wal_sync.note_commit()
            else:
                conn.execute(f"RELEASE {self._name}")
        else:
            try:
                if store._depth == 0:
                    conn.execute("ROLLBACK")
                else:
                    conn.execute(f"ROLLBACK TO {self._name}")
                    conn.execute(f"RELEASE {self._name}")
            finally:
                for hook in store._rollback_hooks:
                    hook()


def _begin_when_free(conn: sqlite3.Connection, first: sqlite3.OperationalError, path: str) -> None:
    """BEGIN IMMEDIATE once the write lock is free: tried again after 20 us, doubling to 1 ms,
    for up to :data:`BUSY_TIMEOUT_S`. The other writer is the outbox's thread (or ``ch-emulator
    outbox retry``), which holds the lock for well under a millisecond a batch: SQLite's own
    busy handler would sleep a whole millisecond or more each time, on the event loop."""
    if not is_busy(first):
        raise first
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    delay = 20e-6
    while True:
        time.sleep(delay)
        try:
            conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if not is_busy(exc):
                raise
            if time.monotonic() > deadline:
                raise StoreError(f"{path}: another writer held the database locked for more than "
                                 f"{BUSY_TIMEOUT_S:g} s ({exc})") from exc
        delay = min(delay * 2, 1e-3)


class _Joined:
    """:meth:`Store.write` inside a transaction: the block's one statement is part of it."""

    __slots__ = ("_conn",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> sqlite3.Connection:
        return self._conn

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        return None


class StoreError(Exception):
    """The database cannot be opened or used; the message names the file."""
