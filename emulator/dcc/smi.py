"""Smart Metering Inventory: what the DSP knows about each device.

The DSP validates every Service Request against this inventory and updates it when a device
reports a new firmware version. Rows live in the :class:`~emulator.dcc.store.Store` so a run can be
inspected (or resumed) with any SQLite tool; IDs are stored in their hyphenated EUI-64 form because
supplier IDs do not fit SQLite's signed 64-bit integers.
"""

from __future__ import annotations

import enum
import json
import logging
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from emulator.eui64 import format_eui64, parse_eui64
from emulator.dcc.store import Store

from emulator.gbcs.codes import DeviceType

_LOGGER = logging.getLogger(__name__)

DEFAULT_GBCS_VERSION = "4.2"
"""DeviceGBCSVersion of a device unless a scenario says otherwise: what DCC Boxed's SMI gives its
RTDS devices (``read-inventory-response-5.4.xml``)."""


class DeviceStatus(str, enum.Enum):
    """SMI device status; only Commissioned devices take firmware (Suspended may still be read)."""

    PENDING = "Pending"
    INSTALLED_NOT_COMMISSIONED = "InstalledNotCommissioned"
    COMMISSIONED = "Commissioned"
    SUSPENDED = "Suspended"
    DECOMMISSIONED = "Decommissioned"


class FirmwareStatus(str, enum.Enum):
    """Where the device's firmware stands, as far as the DSP knows (project's own states).

    ``ACTIVE``: running ``firmware_version``. ``IMAGE_HELD``: a distributed image (11.1) was verified
    by the device and awaits 11.3. ``ACTIVATION_SCHEDULED``: a future-dated 11.3 is pending.
    """

    ACTIVE = "Active"
    IMAGE_HELD = "ImageHeld"
    ACTIVATION_SCHEDULED = "ActivationScheduled"


@dataclass(frozen=True, slots=True)
class DeviceModel:
    """The model fields an OTA image is checked against."""

    manufacturer_code: int
    image_type: int
    hardware_version: int


@dataclass(frozen=True, slots=True)
class SmiDevice:
    eui64: int
    device_type: DeviceType
    model: DeviceModel
    status: DeviceStatus
    firmware_version: int
    firmware_status: FirmwareStatus = FirmwareStatus.ACTIVE
    pending_firmware_version: int | None = None
    comms_hub: int | None = None
    premises: str | None = None
    suppliers: Mapping[str, int] = field(default_factory=dict)  # role -> supplier ID (EUI-64)
    gbcs_version: str = DEFAULT_GBCS_VERSION  # DUIS DeviceGBCSVersion


@dataclass(frozen=True, slots=True)
class UpdateInProgress:
    """The DSP's mark that a firmware distribution (11.1/11.4) is under way for a device."""

    device: int
    request_id: str
    service_reference_variant: str
    firmware_version: int
    originator: int | None
    started: float
    stage: str = "distributing"  # or "transferred" (CCS08 success seen) / "reported" (device's own alert seen)


class SmiError(ValueError):
    """An inventory operation that makes no sense (unknown or duplicate device)."""


_SCHEMA = """
CREATE TABLE IF NOT EXISTS smi_device (
    eui64 TEXT PRIMARY KEY,
    device_type TEXT NOT NULL,
    manufacturer_code INTEGER NOT NULL,
    image_type INTEGER NOT NULL,
    hardware_version INTEGER NOT NULL,
    status TEXT NOT NULL,
    firmware_version INTEGER NOT NULL,
    firmware_status TEXT NOT NULL,
    pending_firmware_version INTEGER,
    comms_hub TEXT,
    premises TEXT,
    suppliers TEXT NOT NULL,
    gbcs_version TEXT NOT NULL DEFAULT '4.2'
);
CREATE INDEX IF NOT EXISTS smi_device_premises ON smi_device(premises);
CREATE TABLE IF NOT EXISTS smi_update_in_progress (
    eui64 TEXT PRIMARY KEY REFERENCES smi_device(eui64),
    request_id TEXT NOT NULL,
    variant TEXT NOT NULL,
    firmware_version INTEGER NOT NULL,
    originator TEXT,
    started REAL NOT NULL,
    stage TEXT NOT NULL
);
"""

_COLUMNS = (
    "eui64, device_type, manufacturer_code, image_type, hardware_version, status, firmware_version, "
    "firmware_status, pending_firmware_version, comms_hub, premises, suppliers, gbcs_version"
)


def _opt_eui(value: int | None) -> str | None:
    return None if value is None else format_eui64(value)


def _row_to_device(row: tuple) -> SmiDevice:
    (eui, dtype, mfr, itype, hw, status, fw, fw_status, pending, hub, premises, suppliers, gbcs) = row
    return SmiDevice(
        eui64=parse_eui64(eui),
        device_type=DeviceType(dtype),
        model=DeviceModel(mfr, itype, hw),
        status=DeviceStatus(status),
        firmware_version=fw,
        firmware_status=FirmwareStatus(fw_status),
        pending_firmware_version=pending,
        comms_hub=None if hub is None else parse_eui64(hub),
        premises=premises,
        suppliers={role: parse_eui64(sid) for role, sid in json.loads(suppliers).items()},
        gbcs_version=gbcs,
    )


_DEVICE_CACHE_SIZE = 4096
"""Devices :class:`Smi` keeps decoded at most (the cache starts again empty past it)."""


class Smi:
    """Inventory rows in ``store``; every method is one transaction."""

    def __init__(self, store: Store) -> None:
        self._store = store
        # Devices read (None: not in the SMI), until this class writes their row or anything
        # rolls back: every Service Request reads its device three times, each a SELECT and a
        # JSON decode. Only this class writes smi_device, and only serve's core (one process).
        self._devices: dict[int, SmiDevice | None] = {}
        store.on_rollback(self._devices.clear)
        with store.transaction() as conn:
            for statement in _SCHEMA.split(";"):  # executescript() would commit on its own
                if statement.strip():
                    conn.execute(statement)
            columns = {row[1] for row in conn.execute("PRAGMA table_info(smi_device)")}
            if "gbcs_version" not in columns:  # a database written before the SMI held GBCS versions
                conn.execute(f"ALTER TABLE smi_device ADD COLUMN gbcs_version TEXT NOT NULL "
                             f"DEFAULT '{DEFAULT_GBCS_VERSION}'")

    # -- devices -------------------------------------------------------------------------------
    def add(self, device: SmiDevice) -> None:
        """Register ``device``; a device already in the inventory is an error, not an overwrite."""
        self._devices.pop(device.eui64, None)
        with self._store.write() as conn:  # one INSERT, after the check
            if conn.execute("SELECT 1 FROM smi_device WHERE eui64=?", (format_eui64(device.eui64),)).fetchone():
                raise SmiError(f"device {format_eui64(device.eui64)} is already in the SMI")
            conn.execute(
                f"INSERT INTO smi_device ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    format_eui64(device.eui64),
                    device.device_type.value,
                    device.model.manufacturer_code,
                    device.model.image_type,
                    device.model.hardware_version,
                    device.status.value,
                    device.firmware_version,
                    device.firmware_status.value,
                    device.pending_firmware_version,
                    _opt_eui(device.comms_hub),
                    device.premises,
                    json.dumps({role: format_eui64(s) for role, s in device.suppliers.items()}),
                    device.gbcs_version,
                ),
            )

    def add_all(self, devices: Iterable[SmiDevice]) -> None:
        with self._store.transaction():
            for device in devices:
                self.add(device)

    def get(self, eui64: int) -> SmiDevice | None:
        try:
            return self._devices[eui64]
        except KeyError:
            pass
        row = self._store.connection.execute(
            f"SELECT {_COLUMNS} FROM smi_device WHERE eui64=?", (format_eui64(eui64),)
        ).fetchone()
        device = None if row is None else _row_to_device(row)
        if len(self._devices) >= _DEVICE_CACHE_SIZE:
            self._devices.clear()  # a fleet's SMI holds far more devices than are busy at once
        self._devices[eui64] = device
        return device

    def require(self, eui64: int) -> SmiDevice:
        device = self.get(eui64)
        if device is None:
            raise SmiError(f"device {format_eui64(eui64)} is not in the SMI")
        return device

    def devices(self) -> list[SmiDevice]:
        rows = self._store.connection.execute(f"SELECT {_COLUMNS} FROM smi_device ORDER BY eui64")
        return [_row_to_device(r) for r in rows]

    def premises_suppliers(self, premises: str) -> set[int]:
        """Every supplier responsible for some device at ``premises``."""
        rows = self._store.connection.execute("SELECT suppliers FROM smi_device WHERE premises=?", (premises,))
        return {parse_eui64(s) for (js,) in rows for s in json.loads(js).values()}

    def all_suppliers(self) -> set[int]:
        """Every supplier responsible for some device (the DCC Users the SMI knows)."""
        rows = self._store.connection.execute("SELECT DISTINCT suppliers FROM smi_device")
        return {parse_eui64(s) for (js,) in rows for s in json.loads(js).values()}

    def set_status(self, eui64: int, status: DeviceStatus) -> None:
        self._update(eui64, "status=?", (status.value,))

    def set_firmware(
        self,
        eui64: int,
        firmware_version: int,
        firmware_status: FirmwareStatus = FirmwareStatus.ACTIVE,
    ) -> None:
        """The device now runs ``firmware_version``; any held image is forgotten."""
        self._update(
            eui64,
            "firmware_version=?, firmware_status=?, pending_firmware_version=NULL",
            (firmware_version, firmware_status.value),
        )

    def set_firmware_status(
        self, eui64: int, firmware_status: FirmwareStatus, pending_firmware_version: int | None
    ) -> None:
        self._update(
            eui64, "firmware_status=?, pending_firmware_version=?", (firmware_status.value, pending_firmware_version)
        )

    def _update(self, eui64: int, assignments: str, values: tuple) -> None:
        self._devices.pop(eui64, None)
        with self._store.write() as conn:  # one UPDATE of one row (rowcount 0: nothing changed)
            cur = conn.execute(f"UPDATE smi_device SET {assignments} WHERE eui64=?", (*values, format_eui64(eui64)))
            if cur.rowcount != 1:
                raise SmiError(f"device {format_eui64(eui64)} is not in the SMI")

    # -- firmware update in progress -----------------------------------------------------------
    def start_update(self, mark: UpdateInProgress) -> None:
        with self._store.write() as conn:
            conn.execute(
                "INSERT INTO smi_update_in_progress VALUES (?,?,?,?,?,?,?)",
                (
                    format_eui64(mark.device),
                    mark.request_id,
                    mark.service_reference_variant,
                    mark.firmware_version,
                    _opt_eui(mark.originator),
                    mark.started,
                    mark.stage,
                ),
            )

    def update_in_progress(self, eui64: int) -> UpdateInProgress | None:
        row = self._store.connection.execute(
            "SELECT eui64, request_id, variant, firmware_version, originator, started, stage "
            "FROM smi_update_in_progress WHERE eui64=?",
            (format_eui64(eui64),),
        ).fetchone()
        if row is None:
            return None
        eui, request_id, variant, version, originator, started, stage = row
        return UpdateInProgress(
            parse_eui64(eui), request_id, variant, version, None if originator is None else parse_eui64(originator),
            started, stage,
        )

    def set_update_stage(self, eui64: int, stage: str) -> None:
        with self._store.write() as conn:
            conn.execute("UPDATE smi_update_in_progress SET stage=? WHERE eui64=?", (stage, format_eui64(eui64)))

    def finish_update(self, eui64: int) -> UpdateInProgress | None:
        """Clear the mark; returns what it was (None if there was none)."""
        with self._store.write() as conn:  # a read, then one DELETE
            mark = self.update_in_progress(eui64)
            if mark is not None:
                conn.execute("DELETE FROM smi_update_in_progress WHERE eui64=?", (format_eui64(eui64),))
            return mark
