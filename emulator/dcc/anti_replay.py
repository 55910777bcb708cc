"""Anti-replay: each originator's RequestID counters must strictly increase (DUIS, DCC Boxed).

The last counter accepted from each originator is kept in the DSP's database, so a request
replayed after a restart is still refused, and never executed again. The same table family keeps
each request's DUIS schemaVersion, so the asynchronous answers after a restart still use it.
"""

from __future__ import annotations

from emulator.dcc.store import Store
from emulator.eui64 import format_eui64

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS duis_originator_counter (originator TEXT PRIMARY KEY, last_counter TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS duis_request_schema_version (request_id TEXT PRIMARY KEY, schema_version TEXT NOT NULL)",
)


def _create(store: Store) -> None:
    for statement in _SCHEMA:
        store.connection.execute(statement)


_CACHE_SIZE = 65536
"""Schema versions :class:`RequestSchemaVersions` keeps in memory at most (the rest are read back)."""


class OriginatorCounters:
    """The highest RequestID counter seen per originator (counters are stored as decimal text:
    unsigned 64-bit values do not fit SQLite's signed integers)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        _create(store)

    def last(self, originator: int) -> int | None:
        row = self._store.connection.execute(
            "SELECT last_counter FROM duis_originator_counter WHERE originator=?", (format_eui64(originator),)
        ).fetchone()
        return int(row[0]) if row else None

    def claim(self, originator: int, counter: int) -> int | None:
        """Record ``counter`` if it is greater than the last one; else return that last one."""
        last = self.last(originator)
        if last is not None and counter <= last:
            return last
        with self._store.write() as conn:  # one statement
            conn.execute(
                "INSERT INTO duis_originator_counter VALUES (?, ?) "
                "ON CONFLICT(originator) DO UPDATE SET last_counter=excluded.last_counter",
                (format_eui64(originator), str(counter)),
            )
        return None


class RequestSchemaVersions:
    """RequestID -> the schemaVersion its request was written in (answers are written in kind)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._cache: dict[str, str] = {}
        _create(store)

    def record(self, request_id: str, version: str) -> None:
        if len(self._cache) >= _CACHE_SIZE:
            self._cache.clear()  # the table has them all: a steady 500 SR/s must not grow memory for ever
        self._cache[request_id] = version
        with self._store.write() as conn:  # one statement
            conn.execute("INSERT OR REPLACE INTO duis_request_schema_version VALUES (?, ?)", (request_id, version))

    def get(self, request_id: str | None) -> str | None:
        if not request_id:
            return None
        if request_id not in self._cache:
            row = self._store.connection.execute(
                "SELECT schema_version FROM duis_request_schema_version WHERE request_id=?", (request_id,)
            ).fetchone()
            if row is None:
                return None
            if len(self._cache) >= _CACHE_SIZE:
                self._cache.clear()
            self._cache[request_id] = row[0]
        return self._cache[request_id]
