"""The DSP's open work, kept in its Store so a restart finds every piece of it.

Everything the DSP has accepted and not yet finished lives here, written in the same SQLite
transaction as the SMI and SAT change that started it (:meth:`Store.transaction`): the 11.2/11.3
commands forwarded and not yet answered, the acknowledged future-dated 11.3s, the 11.1/11.4
distributions with their image and how far the CSP got (checked, delivered to which hubs), the
user messages each step produced (a transactional outbox: the message is committed with the state
change that made it, then handed to the delivering outbox, which ignores a message ID it already
holds), and the emulated devices' firmware state (active and pending image) as the DSP last saw
it. Times are absolute seconds (the DSP's epoch plus its clock), so they mean the same thing after
a restart whose clock starts again at zero.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import dataclass
from typing import Any, Generic, Iterator, TypeVar

from emulator.dcc.duis.user_messages import jsonable
from emulator.dcc.messages import MessageKind, UserMessage
from emulator.dcc.store import Store
from emulator.eui64 import format_eui64, parse_eui64

_LOGGER = logging.getLogger(__name__)

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS dsp_pending_command (
        key TEXT PRIMARY KEY, kind TEXT NOT NULL, request_id TEXT NOT NULL, variant TEXT NOT NULL,
        device TEXT NOT NULL, originator TEXT, execution_time REAL, cancel INTEGER NOT NULL,
        firmware_hash BLOB, accepted REAL NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS dsp_distribution (
        request_id TEXT PRIMARY KEY, image BLOB NOT NULL, targets TEXT NOT NULL,
        activate_now INTEGER NOT NULL, accepted REAL NOT NULL, phase TEXT NOT NULL,
        delivered_hubs TEXT NOT NULL DEFAULT '[]')""",
    """CREATE TABLE IF NOT EXISTS dsp_user_message (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, message_id TEXT NOT NULL UNIQUE, record TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS dsp_issued_precommand (
        request_id TEXT PRIMARY KEY, device TEXT NOT NULL, originator TEXT, execution_time REAL,
        cancel INTEGER NOT NULL, precommand BLOB NOT NULL, issued REAL NOT NULL)""",
    # Earlier databases kept issued pre-commands as dsp_pending_command rows of kind "precommand",
    # their bytes in firmware_hash: move them to their own table (idempotent).
    """INSERT OR IGNORE INTO dsp_issued_precommand
        SELECT request_id, device, originator, execution_time, cancel, firmware_hash, accepted
        FROM dsp_pending_command WHERE kind='precommand' AND firmware_hash IS NOT NULL""",
    "DELETE FROM dsp_pending_command WHERE kind='precommand'",
    """CREATE TABLE IF NOT EXISTS device_firmware (
        eui64 TEXT PRIMARY KEY, active_version INTEGER NOT NULL, pending_version INTEGER,
        pending_hash BLOB)""",
)

PHASE_ACCEPTED = "accepted"  # forwarded to the CSP, its checks not yet reported
PHASE_APPROVED = "approved"  # the CSP's checks reported; WAN delivery to the hubs under way


@dataclass(frozen=True, slots=True)
class StoredCommand:
    """An 11.2/11.3 as the ledger keeps it (``kind`` "pending": awaiting the hub's response;
    "scheduled": a future-dated 11.3 the device acknowledged)."""

    kind: str
    request_id: str
    variant: str
    device: int
    originator: int | None
    execution_time: float | None  # absolute seconds
    cancel: bool
    firmware_hash: bytes
    accepted: float  # absolute seconds


@dataclass(frozen=True, slots=True)
class IssuedPreCommand:
    """An 11.3 CS06 pre-command the DSP handed a User (CV 4 on serviceT), awaiting its signed
    return (CV 5/6/7). Times are absolute seconds; ``execution_time`` None = immediate."""

    request_id: str
    device: int
    originator: int | None
    execution_time: float | None
    cancel: bool
    precommand: bytes
    issued: float


@dataclass(frozen=True, slots=True)
class StoredDistribution:
    request_id: str
    image: bytes
    targets: tuple[tuple[int, int], ...]
    activate_now: bool
    accepted: float  # absolute seconds
    phase: str
    delivered_hubs: frozenset[int]


@dataclass(frozen=True, slots=True)
class StoredFirmware:
    active_version: int
    pending_version: int | None
    pending_hash: bytes | None


K = TypeVar("K")
V = TypeVar("V")


class Ledger:
    """The open-work tables in ``store``; every write joins the caller's transaction if one is open."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.durable = store.path != ":memory:"
        with store.transaction() as conn:
            for statement in _SCHEMA:
                conn.execute(statement)

    # -- commands --------------------------------------------------------------------------------
    def put_command(self, key: str, command: StoredCommand) -> None:
        with self._store.write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO dsp_pending_command VALUES (?,?,?,?,?,?,?,?,?,?)",
                (key, command.kind, command.request_id, command.variant, format_eui64(command.device),
                 None if command.originator is None else format_eui64(command.originator),
                 command.execution_time, int(command.cancel), command.firmware_hash, command.accepted),
            )

    def delete_command(self, key: str) -> None:
        with self._store.write() as conn:
            conn.execute("DELETE FROM dsp_pending_command WHERE key=?", (key,))

    def commands(self, kind: str) -> dict[str, StoredCommand]:
        rows = self._store.connection.execute(
            "SELECT key, kind, request_id, variant, device, originator, execution_time, cancel, firmware_hash, "
            "accepted FROM dsp_pending_command WHERE kind=? ORDER BY accepted", (kind,))
        return {
            key: StoredCommand(k, rid, variant, parse_eui64(dev), None if orig is None else parse_eui64(orig),
                               execution, bool(cancel), bytes(fhash or b""), accepted)
            for key, k, rid, variant, dev, orig, execution, cancel, fhash, accepted in rows
        }

    # -- issued 11.3 pre-commands ----------------------------------------------------------------
    def put_precommand(self, issued: IssuedPreCommand) -> None:
        with self._store.write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO dsp_issued_precommand VALUES (?,?,?,?,?,?,?)",
                (issued.request_id, format_eui64(issued.device),
                 None if issued.originator is None else format_eui64(issued.originator),
                 issued.execution_time, int(issued.cancel), issued.precommand, issued.issued),
            )

    def delete_precommand(self, request_id: str) -> None:
        with self._store.write() as conn:
            conn.execute("DELETE FROM dsp_issued_precommand WHERE request_id=?", (request_id,))

    def precommands(self) -> dict[str, IssuedPreCommand]:
        """Request ID -> pre-command issued and not yet used, oldest first."""
        rows = self._store.connection.execute(
            "SELECT request_id, device, originator, execution_time, cancel, precommand, issued "
            "FROM dsp_issued_precommand ORDER BY issued")
        return {
            rid: IssuedPreCommand(rid, parse_eui64(dev), None if orig is None else parse_eui64(orig), execution,
                                  bool(cancel), bytes(pre), issued)
            for rid, dev, orig, execution, cancel, pre, issued in rows
        }

    # -- distributions -----------------------------------------------------------------------------
    def put_distribution(self, request_id: str, image: bytes, targets: tuple[tuple[int, int], ...],
                         activate_now: bool, accepted: float) -> None:
        with self._store.write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO dsp_distribution VALUES (?,?,?,?,?,?,?)",
                (request_id, image if self.durable else b"", json.dumps([[format_eui64(d), format_eui64(h)] for d, h in targets]),
                 int(activate_now), accepted, PHASE_ACCEPTED, "[]"),
            )

    def distribution_approved(self, request_id: str) -> None:
        with self._store.write() as conn:
            conn.execute("UPDATE dsp_distribution SET phase=? WHERE request_id=?", (PHASE_APPROVED, request_id))

    def hub_delivered(self, request_id: str, hub: int) -> None:
        with self._store.write() as conn:  # a read, then one UPDATE
            row = conn.execute("SELECT delivered_hubs FROM dsp_distribution WHERE request_id=?",
                               (request_id,)).fetchone()
            if row is None:
                return
            hubs = set(json.loads(row[0])) | {format_eui64(hub)}
            conn.execute("UPDATE dsp_distribution SET delivered_hubs=? WHERE request_id=?",
                         (json.dumps(sorted(hubs)), request_id))

    def distribution(self, request_id: str) -> StoredDistribution | None:
        row = self._store.connection.execute(
            "SELECT request_id, image, targets, activate_now, accepted, phase, delivered_hubs "
            "FROM dsp_distribution WHERE request_id=?", (request_id,)).fetchone()
        return None if row is None else _distribution(row)

    def distributions(self) -> list[StoredDistribution]:
        rows = self._store.connection.execute(
            "SELECT request_id, image, targets, activate_now, accepted, phase, delivered_hubs "
            "FROM dsp_distribution ORDER BY accepted")
        return [_distribution(row) for row in rows]

    def close_if_done(self, request_id: str) -> None:
        """Drop ``request_id``'s distribution once no device of it is still in progress."""
        with self._store.write() as conn:
            conn.execute(
                "DELETE FROM dsp_distribution WHERE request_id=? AND NOT EXISTS "
                "(SELECT 1 FROM smi_update_in_progress WHERE request_id=?)", (request_id, request_id))

    def delete_distribution(self, request_id: str) -> None:
        with self._store.write() as conn:
            conn.execute("DELETE FROM dsp_distribution WHERE request_id=?", (request_id,))

    # -- user messages (transactional outbox) ----------------------------------------------------
    def put_message(self, message: UserMessage) -> None:
        if not self.durable:  # nothing survives an in-memory database: keep no copy
            return
        with self._store.write() as conn:
            conn.execute("INSERT OR IGNORE INTO dsp_user_message (message_id, record) VALUES (?, ?)",
                         (message.message_id, json.dumps(_message_record(message), sort_keys=True)))

    def kept_messages(self) -> list[UserMessage]:
        """Messages committed and not yet known to be held by the outbox, oldest first."""
        rows = self._store.connection.execute("SELECT record FROM dsp_user_message ORDER BY seq")
        return [_message_from_record(json.loads(record)) for (record,) in rows]

    def prune_held(self, table: str = "outbox") -> int:
        """Forget the messages the outbox table ``table`` of this database holds (it has them
        durably); returns how many. Without such a table nothing is forgotten."""
        if not self.durable:
            return 0
        try:
            with self._store.transaction() as conn:
                cursor = conn.execute(
                    f"DELETE FROM dsp_user_message WHERE message_id IN (SELECT message_id FROM {table})")
                return max(cursor.rowcount, 0)
        except sqlite3.OperationalError as exc:  # no such table (the outbox keeps another database)
            _LOGGER.debug("ledger: cannot prune against %s: %s", table, exc)
            return 0

    # -- emulated devices' firmware --------------------------------------------------------------
    def put_firmware(self, device: int, firmware: StoredFirmware) -> None:
        with self._store.write() as conn:
            conn.execute("INSERT OR REPLACE INTO device_firmware VALUES (?,?,?,?)",
                         (format_eui64(device), firmware.active_version, firmware.pending_version,
                          firmware.pending_hash))

    def firmware(self) -> dict[int, StoredFirmware]:
        rows = self._store.connection.execute(
            "SELECT eui64, active_version, pending_version, pending_hash FROM device_firmware")
        return {parse_eui64(eui): StoredFirmware(active, pending, None if h is None else bytes(h))
                for eui, active, pending, h in rows}


def _distribution(row: tuple[Any, ...]) -> StoredDistribution:
    request_id, image, targets, activate_now, accepted, phase, hubs = row
    return StoredDistribution(
        request_id, bytes(image), tuple((parse_eui64(d), parse_eui64(h)) for d, h in json.loads(targets)),
        bool(activate_now), accepted, phase, frozenset(parse_eui64(h) for h in json.loads(hubs)),
    )


def _message_record(message: UserMessage) -> dict[str, Any]:
    return {
        "message_id": message.message_id, "kind": message.kind.value, "code": message.code, "time": message.time,
        "device": None if message.device is None else format_eui64(message.device),
        "request_id": message.request_id, "recipient": message.recipient, "details": jsonable(message.details),
        "schema_version": message.schema_version,
    }


def _message_from_record(record: dict[str, Any]) -> UserMessage:
    device = record.get("device")
    return UserMessage(
        record["message_id"], MessageKind(record["kind"]), record["code"], float(record["time"]),
        None if device is None else parse_eui64(device), record.get("request_id"), record.get("recipient"),
        dict(record.get("details") or {}), record.get("schema_version"),
    )


class PersistentMap(Generic[K, V]):
    """A dict kept in memory and written through to the ledger (the DSP's pending commands)."""

    def __init__(self, ledger: Ledger, kind: str, to_key: Any, to_stored: Any, from_stored: Any) -> None:
        self._ledger = ledger
        self._kind = kind
        self._to_key = to_key
        self._to_stored = to_stored
        self._data: dict[K, V] = {}
        for key, stored in ledger.commands(kind).items():
            self._data[to_key(key.split(":", 1)[1])] = from_stored(stored)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __getitem__(self, key: K) -> V:
        return self._data[key]

    def __setitem__(self, key: K, value: V) -> None:
        self._ledger.put_command(self._key_text(key), self._to_stored(self._kind, value))
        self._data[key] = value

    def pop(self, key: K, default: V | None = None) -> V | None:
        if key not in self._data:
            return default
        self._ledger.delete_command(self._key_text(key))
        return self._data.pop(key)

    def get(self, key: K, default: V | None = None) -> V | None:
        return self._data.get(key, default)

    def items(self) -> list[tuple[K, V]]:
        return list(self._data.items())

    def __iter__(self) -> Iterator[K]:
        return iter(list(self._data))

    def __len__(self) -> int:
        return len(self._data)

    def _key_text(self, key: K) -> str:
        text = format_eui64(key) if isinstance(key, int) else str(key)
        return f"{self._kind}:{text}"
