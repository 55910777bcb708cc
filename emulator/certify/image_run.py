"""What ``certify image`` checks one file against: the file, its parse, and the vendor's options."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from emulator.certify.keys import SupplierKey
from emulator.gbcs.codes import DeviceType
from emulator.ota.image.errors import ImageError
from emulator.ota.image.model import OtaImage

# DUIS V5.4: the largest FirmwareImage a Service Request may carry.
DUIS_MAX_IMAGE_SIZE = 7_680_000


# Device types that take a firmware image of their own (the GPF's comes with the CHF's).
FIRMWARE_DEVICE_TYPES: tuple[DeviceType, ...] = (
    DeviceType.CHF, DeviceType.ESME, DeviceType.GSME, DeviceType.HCALCS, DeviceType.PPMID)

# The image types the emulator's own device profiles use (emulator/dcc/premises.py). Only the
# PPMID's 0x0084 is DCC's published value; the others are the project's choice.
EMULATOR_IMAGE_TYPES: dict[DeviceType, int] = {
    DeviceType.CHF: 0x0010,
    DeviceType.ESME: 0x0000,
    DeviceType.GSME: 0x0001,
    DeviceType.PPMID: 0x0084,
}


def eui64_text(value: int) -> str:
    """An EUI-64 as DUIS writes it: 00-DB-12-34-56-78-90-A0."""
    return "-".join(f"{byte:02X}" for byte in value.to_bytes(8, "big"))


@dataclass(frozen=True)
class ImageOptions:
    """The run parameters: what the SR, the CPL entry and the target device say."""

    device_type: DeviceType | None = None
    hardware_version: int | None = None
    firmware_version: int | None = None  # as the SR's FirmwareVersion carries it (8 hex chars)
    manufacturer_code: int | None = None
    image_type: int | None = None
    cpl_hash: bytes | None = None
    current_version: int | None = None
    slot_size: int | None = None
    zigbee_signers: tuple[int, ...] = ()  # EUI-64s allowed to sign ZigBee images (A11)
    zigbee_ca: bytes | None = None  # compressed sect283k1 CA key; None: Certicom's TEST ONLY CA
    supplier_keys: tuple[SupplierKey, ...] = ()
    default_supplier_keys: bool = True
    deploy_from: dt.date = dt.date(2026, 1, 1)
    deploy_until: dt.date = dt.date(2026, 1, 1)

    def as_dict(self) -> dict[str, object]:
        """For reports: every parameter as the user would type it."""
        def hexa(value: int | None, width: int) -> str | None:
            return None if value is None else f"0x{value:0{width}X}"

        return {
            "device_type": None if self.device_type is None else self.device_type.value,
            "hardware_version": hexa(self.hardware_version, 4),
            "firmware_version": None if self.firmware_version is None else f"{self.firmware_version:08X}",
            "manufacturer_code": hexa(self.manufacturer_code, 4),
            "image_type": hexa(self.image_type, 4),
            "cpl_hash": None if self.cpl_hash is None else self.cpl_hash.hex(),
            "current_version": hexa(self.current_version, 8),
            "slot_size": self.slot_size,
            "zigbee_signers": [eui64_text(signer) for signer in self.zigbee_signers],
            "zigbee_ca": None if self.zigbee_ca is None else self.zigbee_ca.hex(),
            "supplier_keys": [key.describe() for key in self.supplier_keys],
            "deploy_window": f"{self.deploy_from.isoformat()}..{self.deploy_until.isoformat()}",
        }


@dataclass(frozen=True)
class ImageRun:
    """One file under check: ``image`` when it parsed, else ``error`` says where it broke."""

    source: str
    data: bytes
    image: OtaImage | None
    error: ImageError | None
    options: ImageOptions

    @property
    def body_offset(self) -> int:
        """Where the body starts in the input."""
        assert self.image is not None
        return self.image.identifier_offset + self.image.header.header_length
