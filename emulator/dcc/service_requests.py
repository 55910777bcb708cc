"""Service Requests 11.1-11.4 and 8.11 as parsed records, independent of how they arrived (API, CLI, DUIS).

The DUIS layer builds these from XML; the DSP consumes them. Device IDs are EUI-64 integers.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime


class ServiceReferenceVariant(str, enum.Enum):
    UPDATE_FIRMWARE = "11.1"
    READ_FIRMWARE_VERSION = "11.2"
    ACTIVATE_FIRMWARE = "11.3"
    UPDATE_PPMID_FIRMWARE = "11.4"
    UPDATE_HAN_DEVICE_LOG = "8.11"


class CommandDelivery(enum.Enum):
    """Where a device SR's GBCS command goes, by CommandVariant (DUIS V5.4, the table above the
    ``CommandVariant`` type): over the SM WAN to the device, back to the User for local delivery
    (synchronously, in ``LocalCommand``), or both."""

    WAN = "wan"  # CV 1, 5 (and an in-process SR)
    LOCAL = "local"  # CV 2, 6: returned to the User; nothing goes over the WAN
    WAN_AND_LOCAL = "wan_and_local"  # CV 3, 7: sent over the WAN and a copy returned to the User

    @classmethod
    def of(cls, command_variant: int) -> "CommandDelivery":
        if command_variant in (2, 6):
            return cls.LOCAL
        if command_variant in (3, 7):
            return cls.WAN_AND_LOCAL
        return cls.WAN

    @property
    def over_wan(self) -> bool:
        return self is not CommandDelivery.LOCAL

    @property
    def returned(self) -> bool:
        """The command goes back to the User for local delivery."""
        return self is not CommandDelivery.WAN


@dataclass(frozen=True, slots=True)
class RequestHeader:
    """DUIS request header. ``request_id`` is ``<originator EUI>:<target EUI>:<counter>``."""

    request_id: str
    command_variant: int
    service_reference: str
    service_reference_variant: str
    originator: int | None = None
    target: int | None = None
    counter: int | None = None
    schema_version: str | None = None  # the request's DUIS schemaVersion (answers use the same)

    @property
    def delivery(self) -> CommandDelivery:
        return CommandDelivery.of(self.command_variant)


@dataclass(frozen=True, slots=True)
class UpdateFirmware:
    """SR 11.1: distribute (not activate) an image to CH/ESME/GSME/HCALCS devices.

    ``firmware_version`` is the request's FirmwareVersion read as hex, None when it is not hex
    (DUIS allows any 1-8 characters)."""

    header: RequestHeader
    firmware_image: bytes
    firmware_version: int | None
    device_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class UpdatePPMIDFirmware:
    """SR 11.4: distribute and activate an image on PPMIDs (``firmware_version`` as in 11.1)."""

    header: RequestHeader
    firmware_image: bytes
    firmware_version: int | None
    device_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ReadFirmwareVersion:
    """SR 11.2: read the active firmware version of one device."""

    header: RequestHeader
    device_id: int


@dataclass(frozen=True, slots=True)
class ActivateFirmware:
    """SR 11.3: activate a held image; ``execution_datetime`` None = now, 3000-12-31 = cancel."""

    header: RequestHeader
    device_id: int
    firmware_hash: bytes
    execution_datetime: datetime | None = None
    transform: bool = False
    """Arrived on serviceT (CV 4, DCC's Transform): answer with the pre-command for the User to
    sign. False for an in-process 11.3, which keeps the shortcut of signing for the User."""
    signed_precommand: bytes | None = None
    """CV 5, 6, 7 (``SignedPreCommand{GBCSPayload}``): the pre-command the DSP issued for
    this device, with the User's KRP signature; ``firmware_hash`` is then the one it names."""


@dataclass(frozen=True, slots=True)
class UpdateHanDeviceLog:
    """SR 8.11: add ``device_id`` to (GBCS CCS01) or remove it from (CCS02) the Device Log of
    ``comms_hub``, the RequestID's target. An addition carries the DUIS ``InstallCode`` (6-16
    octets, without the CRC) and ``JoinTimePeriod`` (seconds, 1-3600)."""

    header: RequestHeader
    comms_hub: int
    device_id: int
    add: bool
    install_code: bytes | None = None
    join_time_period: int | None = None


ServiceRequest = UpdateFirmware | UpdatePPMIDFirmware | ReadFirmwareVersion | ActivateFirmware | UpdateHanDeviceLog
