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
from contextlib import contextmanager
from typing import Iterator

from .group_commit import WalSync, configure

_LOGGER = logging.getLogger(__name__)


class Store:
    """An SQLite database at ``path`` (a file, or ``":memory:"`` for a throw-away run)."""

    def __init__(self, path: str | os.PathLike[str] = ":memory:") -> None:
        self.path = os.fspath(path)
        try:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves, so nothing commits behind our back.
            self._conn = sqlite3.connect(self.path, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot open database: {exc}") from exc
        self._depth = 0
        self._wal_sync: WalSync | None = None
        if self.path != ":memory:":
            configure(self._conn)
            self._wal_sync = WalSync.acquire(self.path)

    @property
    def connection(self) -> sqlite3.Connection:
        return self._conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Everything inside commits together or not at all; nested blocks are savepoints."""
        conn = self._conn
        name = f"sp{self._depth}"
        if self._depth == 0:
            conn.execute("BEGIN IMMEDIATE")
        else:
            conn.execute(f"SAVEPOINT {name}")
        self._depth += 1
        try:
            yield conn
        except BaseException:
            self._depth -= 1
            if self._depth == 0:
                conn.execute("ROLLBACK")
            else:
                conn.execute(f"ROLLBACK TO {name}")
                conn.execute(f"RELEASE {name}")
            raise
        else:
            self._depth -= 1
            if self._depth == 0:
                conn.execute("COMMIT")
                if self._wal_sync is not None:
                    self._wal_sync.note_commit()
            else:
                conn.execute(f"RELEASE {name}")

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


class StoreError(Exception):
    """The database cannot be opened or used; the message names the file."""
