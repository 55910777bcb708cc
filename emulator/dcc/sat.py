"""Service Audit Trail: the DSP's append-only record of what it decided and said.

The public definition of the SAT was not found; the project keeps one row per event: each
Service Request received, each per-device decision (DSP and CSP), each SMI change and each message
sent to a DCC User. The seed diagram requires an individual entry for every device the CSP rejects
with N19; every CSP rejection gets one here. SQLite triggers refuse UPDATE and DELETE, so the trail
cannot be rewritten even by mistake.
"""

from __future__ import annotations

import enum
import json
import logging
from dataclasses import dataclass, field
from typing import Any, Mapping

from emulator.eui64 import format_eui64, parse_eui64
from emulator.dcc.store import Store

_LOGGER = logging.getLogger(__name__)


class SatEvent(str, enum.Enum):
    SERVICE_REQUEST = "ServiceRequest"  # an SR arrived (accepted or not)
    DSP_ACCEPTED = "DspAccepted"  # a device passed DSP validation
    DSP_REJECTED = "DspRejected"  # a device failed DSP validation (code = RejectionReason)
    CSP_REJECTED = "CspRejected"  # a device failed CSP validation (code = N18/N19/N20/N22)
    SMI_UPDATED = "SmiUpdated"  # firmware version / status changed
    USER_MESSAGE = "UserMessage"  # a DCC alert, device alert or response sent to a DCC User
    HUB_MESSAGE = "HubMessage"  # a hub message the DSP could not attribute or understand


@dataclass(frozen=True, slots=True)
class SatEntry:
    seq: int
    time: float
    event: SatEvent
    request_id: str | None = None
    device: int | None = None
    code: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS sat (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        time REAL NOT NULL,
        event TEXT NOT NULL,
        request_id TEXT,
        device TEXT,
        code TEXT,
        details TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS sat_device ON sat(device)",
    "CREATE INDEX IF NOT EXISTS sat_request ON sat(request_id)",
    """CREATE TRIGGER IF NOT EXISTS sat_no_update BEFORE UPDATE ON sat
       BEGIN SELECT RAISE(ABORT, 'the Service Audit Trail is append-only'); END""",
    """CREATE TRIGGER IF NOT EXISTS sat_no_delete BEFORE DELETE ON sat
       BEGIN SELECT RAISE(ABORT, 'the Service Audit Trail is append-only'); END""",
)


def _json_default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def rotate(conn: Any, *, keep_rows: int, archive: Any) -> int:
    """Move all but the newest ``keep_rows`` entries to ``archive`` (a text stream, one JSON object
    per entry, oldest first) and delete them here. The one sanctioned removal: the delete trigger is
    lifted and restored inside the caller's transaction, so no other statement ever sees it gone.
    Returns how many entries moved."""
    rows = conn.execute(
        "SELECT seq, time, event, request_id, device, code, details FROM sat "
        "WHERE seq <= (SELECT MAX(seq) FROM sat) - ? ORDER BY seq", (keep_rows,)).fetchall()
    if not rows:
        return 0
    for seq, time, event, request_id, device, code, details in rows:
        archive.write(json.dumps({"seq": seq, "time": time, "event": event, "request_id": request_id,
                                  "device": device, "code": code, "details": json.loads(details)}) + "\n")
    archive.flush()
    conn.execute("DROP TRIGGER sat_no_delete")
    conn.execute("DELETE FROM sat WHERE seq <= ?", (rows[-1][0],))
    conn.execute(_SCHEMA[-1])
    return len(rows)


class ServiceAuditTrail:
    """Append-only audit rows in ``store``."""

    def __init__(self, store: Store) -> None:
        self._store = store
        with store.transaction() as conn:
            for statement in _SCHEMA:
                conn.execute(statement)

    def append(
        self,
        time: float,
        event: SatEvent,
        *,
        request_id: str | None = None,
        device: int | None = None,
        code: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> int:
        """Write one entry; returns its sequence number."""
        with self._store.write() as conn:  # one INSERT
            cur = conn.execute(
                "INSERT INTO sat (time, event, request_id, device, code, details) VALUES (?,?,?,?,?,?)",
                (
                    time,
                    event.value,
                    request_id,
                    None if device is None else format_eui64(device),
                    code,
                    json.dumps(dict(details or {}), default=_json_default, sort_keys=True),
                ),
            )
            return int(cur.lastrowid or 0)

    def entries(
        self,
        *,
        event: SatEvent | None = None,
        request_id: str | None = None,
        device: int | None = None,
        code: str | None = None,
    ) -> list[SatEntry]:
        """Entries in the order written, filtered by whichever arguments are given."""
        clauses: list[str] = []
        values: list[Any] = []
        for column, value in (
            ("event", None if event is None else event.value),
            ("request_id", request_id),
            ("device", None if device is None else format_eui64(device)),
            ("code", code),
        ):
            if value is not None:
                clauses.append(f"{column}=?")
                values.append(value)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._store.connection.execute(
            f"SELECT seq, time, event, request_id, device, code, details FROM sat{where} ORDER BY seq", values
        )
        return [
            SatEntry(
                seq, time, SatEvent(ev), rid, None if dev is None else parse_eui64(dev), c, json.loads(det)
            )
            for seq, time, ev, rid, dev, c, det in rows
        ]

    def __len__(self) -> int:
        return int(self._store.connection.execute("SELECT COUNT(*) FROM sat").fetchone()[0])
