"""Per-device OTA server sessions and where they are kept.

A session is plain data so it can be stored: a restarted server loads it and serves the client's
next request as if nothing happened (any offset can be served, so no buffered state is needed).
"""

from __future__ import annotations

import enum
import json
import sqlite3
from dataclasses import dataclass, field, fields
from typing import Any, Final, Iterator, Protocol

from .actions import TransferProgress


class SessionState(str, enum.Enum):
    OFFERED = "offered"  # Query Next Image answered with an image
    DOWNLOADING = "downloading"
    AWAITING_UPGRADE_END = "awaiting_upgrade_end"  # last byte served, silent phase
    WAITING_FOR_COMMAND = "waiting_for_command"  # Upgrade End Response 0xFFFFFFFF sent
    SCHEDULED = "scheduled"  # Upgrade End Response with "now" or a delay sent
    COMPLETED = "completed"  # upgrade command sent / activation due
    FAILED = "failed"  # client reported a non-SUCCESS Upgrade End status
    TIMED_OUT = "timed_out"
    ABORTED = "aborted"

    @property
    def active(self) -> bool:
        return self in _ACTIVE


_ACTIVE: Final = frozenset(
    {SessionState.OFFERED, SessionState.DOWNLOADING, SessionState.AWAITING_UPGRADE_END}
)


_TRANSIENT: Final = frozenset({"timer_due", "image"})


@dataclass(slots=True)
class Session:
    device: int
    nwk: int
    manufacturer_code: int
    image_type: int
    file_version: int
    image_size: int
    state: SessionState = SessionState.OFFERED
    offset: int = 0  # highest byte served + 1
    bytes_served: int = 0
    blocks_served: int = 0
    started_at: float | None = None
    last_request_at: float = 0.0
    last_response_at: float = -1e18
    next_progress: int = 0
    status: int | None = None  # final ZCL status
    # Image Page Request in progress: next offset to send and end of the page
    page_offset: int = 0
    page_end: int = 0
    page_block: int = 0
    page_spacing_ms: int = 0
    page_tsn: int = 0
    # HAN link: a wait the server asked for (WAIT_FOR_DATA) is not silence; when the hub took
    # the link as lost (the time the device was last heard), until it is heard again
    quiet_until: float = -1e18
    link_lost_at: float | None = None
    # not persisted: the time of the earliest armed timeout timer
    timer_due: float | None = field(default=None, compare=False)
    # not persisted: the image being served, so a block needs no catalogue look-up
    image: Any = field(default=None, compare=False, repr=False)

    @property
    def image_key(self) -> tuple[int, int, int]:
        return (self.manufacturer_code, self.image_type, self.file_version)

    def progress(self, now: float) -> TransferProgress:
        elapsed = (now - self.started_at) if self.started_at is not None else 0.0
        rate = self.bytes_served / elapsed if elapsed > 0 else 0.0
        remaining = max(self.image_size - self.offset, 0)
        eta = remaining / rate if rate > 0 else None
        return TransferProgress(
            self.device,
            self.offset,
            self.image_size,
            round(100.0 * self.offset / self.image_size, 1) if self.image_size else 100.0,
            self.bytes_served,
            round(rate, 1),
            round(eta, 1) if eta is not None else None,
        )

    def to_json(self) -> str:
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _TRANSIENT}
        data["state"] = self.state.value
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> "Session":
        data = json.loads(text)
        data["state"] = SessionState(data["state"])
        return cls(**data)


class SessionStore(Protocol):
    def get(self, device: int) -> Session | None: ...
    def put(self, session: Session) -> None: ...
    def delete(self, device: int) -> None: ...
    def __iter__(self) -> Iterator[Session]: ...


class MemorySessionStore:
    """Sessions in a dict; sharing the object across server instances models a restart."""

    __slots__ = ("_sessions",)

    def __init__(self) -> None:
        self._sessions: dict[int, Session] = {}

    def get(self, device: int) -> Session | None:
        return self._sessions.get(device)

    def put(self, session: Session) -> None:
        self._sessions[session.device] = session

    def delete(self, device: int) -> None:
        self._sessions.pop(device, None)

    def __iter__(self) -> Iterator[Session]:
        return iter(list(self._sessions.values()))


def sqlite_int(eui64: int) -> int:
    """An EUI-64 as SQLite's signed 64-bit INTEGER (those above 2**63 wrap to negative)."""
    return eui64 - (1 << 64) if eui64 >= 1 << 63 else eui64


def connect(path: str) -> sqlite3.Connection:
    """A connection for the HAN side's durable state (sessions, device flash) on ``path``: WAL,
    ``synchronous=NORMAL`` (a commit survives the process being killed), and a busy timeout so a
    writer elsewhere on the same file (the DSP, the outbox's writer thread) makes it wait, not fail."""
    db = sqlite3.connect(path, timeout=30.0, isolation_level=None)
    if path != ":memory:":
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
    return db


class SqliteSessionStore:
    """Sessions persisted in SQLite, so a hub process can be killed and restarted.

    ``db`` is a path or a connection shared with other stores (``serve`` keeps every hub's
    sessions in its one database); ``hub`` (the Comms Hub's EUI-64) keeps each hub to its own
    rows. The server writes a session on each state change and each progress step (every
    ``progress_step_percent`` of the image, 10 % by default), never once per block: after a
    restart the stored offset may be behind the device's, which is harmless since the server
    serves any offset the client asks for."""

    def __init__(self, db: str | sqlite3.Connection, *, hub: int = 0) -> None:
        self._db = connect(db) if isinstance(db, str) else db
        self._owned = isinstance(db, str)
        self._hub = sqlite_int(hub)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS ota_server_session (hub INTEGER NOT NULL, device INTEGER NOT NULL, "
            "body TEXT NOT NULL, PRIMARY KEY (hub, device))"
        )
        self._cache: dict[int, Session] = {}

    def get(self, device: int) -> Session | None:
        session = self._cache.get(device)
        if session is not None:
            return session
        row = self._db.execute("SELECT body FROM ota_server_session WHERE hub = ? AND device = ?",
                               (self._hub, sqlite_int(device))).fetchone()
        if row is None:
            return None
        session = Session.from_json(row[0])
        self._cache[device] = session
        return session

    def put(self, session: Session) -> None:
        self._cache[session.device] = session
        self._db.execute(
            "INSERT OR REPLACE INTO ota_server_session (hub, device, body) VALUES (?, ?, ?)",
            (self._hub, sqlite_int(session.device), session.to_json()),
        )

    def delete(self, device: int) -> None:
        self._cache.pop(device, None)
        self._db.execute("DELETE FROM ota_server_session WHERE hub = ? AND device = ?", (self._hub, sqlite_int(device)))

    def __iter__(self) -> Iterator[Session]:
        rows = self._db.execute("SELECT device FROM ota_server_session WHERE hub = ?", (self._hub,)).fetchall()
        return iter([s for (d,) in rows if (s := self.get(d % (1 << 64))) is not None])

    def close(self) -> None:
        if self._owned:
            self._db.close()
