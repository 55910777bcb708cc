"""Anti-replay: each originator's RequestID counters must strictly increase (DUIS, DCC Boxed).

The last counter accepted from each originator is kept in the DSP's database, so a request
replayed after a restart is still refused, and never executed again.
"""

from __future__ import annotations

from emulator.dcc.store import Store
from emulator.eui64 import format_eui64

_SCHEMA = """
CREATE TABLE IF NOT EXISTS duis_originator_counter (
    originator TEXT PRIMARY KEY,
    last_counter TEXT NOT NULL
)
"""


class OriginatorCounters:
    """The highest RequestID counter seen per originator (counters are stored as decimal text:
    unsigned 64-bit values do not fit SQLite's signed integers)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        store.connection.execute(_SCHEMA)

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
        with self._store.transaction() as conn:
            conn.execute(
                "INSERT INTO duis_originator_counter VALUES (?, ?) "
                "ON CONFLICT(originator) DO UPDATE SET last_counter=excluded.last_counter",
                (format_eui64(originator), str(counter)),
            )
        return None
