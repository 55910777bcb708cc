"""GBCS originator counters kept in ``serve``'s database, so they keep rising across restarts.

GBCS wants every originator's counter strictly increasing (a device refuses a command whose
counter it has seen; a User's head-end the same for alerts). In process a scenario's counters
start at 1 and live in memory (:class:`emulator.gbcs.flow.OriginatorCounters`); ``serve`` runs
for days against a real head-end, so its counters are reserved in blocks in the DSP's SQLite
database: one write per :data:`COUNTER_BLOCK` messages of an originator, and a restart goes on
above the last reserved block (counters may jump, never repeat).
"""

from __future__ import annotations

import logging

from emulator.dcc.store import Store
from emulator.eui64 import format_eui64, parse_eui64
from emulator.gbcs.flow import OriginatorCounters

_LOGGER = logging.getLogger(__name__)

COUNTER_BLOCK = 1000
"""Counters reserved per database write and originator."""
_MAX_COUNTER = (1 << 64) - 1

_SCHEMA = ("CREATE TABLE IF NOT EXISTS gbcs_originator_counter ("
           "originator TEXT PRIMARY KEY, reserved TEXT NOT NULL)")


class PersistedOriginatorCounters(OriginatorCounters):
    """:class:`OriginatorCounters` whose reservations are written to ``store`` (counters as
    decimal text: a 64-bit unsigned value does not fit SQLite's signed integers)."""

    def __init__(self, store: Store, block: int = COUNTER_BLOCK) -> None:
        if block < 1:
            raise ValueError(f"counter block {block} must be at least 1")
        self._store = store
        self._block = block
        with store.transaction() as conn:
            conn.execute(_SCHEMA)
            rows = conn.execute("SELECT originator, reserved FROM gbcs_originator_counter").fetchall()
        self._reserved = {parse_eui64(eui): int(reserved) for eui, reserved in rows}
        super().__init__(last=dict(self._reserved))  # go on above every block an earlier run reserved
        if rows:
            _LOGGER.info("GBCS counters of %d originator(s) continue from the database", len(rows))

    def next(self, originator: int) -> int:
        value = self.last.get(originator, 0) + 1
        if value > _MAX_COUNTER:
            raise OverflowError(f"GBCS originator counter of {format_eui64(originator)} is exhausted")
        if value > self._reserved.get(originator, 0):
            reserved = min(value + self._block - 1, _MAX_COUNTER)
            with self._store.write() as conn:  # one statement
                conn.execute(
                    "INSERT INTO gbcs_originator_counter VALUES (?, ?) "
                    "ON CONFLICT(originator) DO UPDATE SET reserved=excluded.reserved",
                    (format_eui64(originator), str(reserved)))
            self._reserved[originator] = reserved
        self.last[originator] = value
        return value

    def reserved(self, originator: int) -> int | None:
        """The highest counter of ``originator`` the database has reserved (None: none yet)."""
        return self._reserved.get(originator)
