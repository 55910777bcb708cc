"""GBCS vocabulary of the firmware flow: alert codes and the result codes devices and hubs report.

Neutral ground: the hub, the devices and the DCC side all speak these, so none imports another
for them.
"""

from __future__ import annotations

import enum


class DeviceType(str, enum.Enum):
    """GBCS device types, as the SMI and DUIS name them."""

    ESME = "ESME"
    GSME = "GSME"
    PPMID = "PPMID"
    HCALCS = "HCALCS"
    CHF = "CHF"
    GPF = "GPF"

    @property
    def on_han(self) -> bool:
        """Whether it is a device of its own on the HAN (the CHF and GPF are the Comms Hub)."""
        return self not in (DeviceType.CHF, DeviceType.GPF)

    @classmethod
    def han_device(cls, name: str) -> "DeviceType":
        """The HAN device type called ``name`` (any case); ValueError for the CHF, GPF or unknown."""
        device_type = cls(name.strip().upper())
        if not device_type.on_han:
            raise ValueError(f"{name!r} is the Comms Hub, not a HAN device")
        return device_type

    @property
    def signed_images(self) -> bool:
        """Whether its firmware images end in ``00 40`` and a supplier signature, which the device
        verifies and reports (0x8F72 / 0x8F1C) before holding the image for activation: all but
        the PPMID, whose image activates on CS09 without a supplier signature."""
        return self is not DeviceType.PPMID

    @property
    def image_layout(self) -> str:
        """The OTA image layout its images take (docs/image.md)."""
        return "gbcs" if self.signed_images else "gbcs-ppmid"


class GbcsAlertCode(enum.IntEnum):
    """GBCS alert codes the firmware flow and SR 8.11 use (GBCS alert code table)."""

    CHF_DEVICE_LOG_CHANGED = 0x8F12
    FIRMWARE_VERIFICATION_FAILED = 0x8F1C
    FIRMWARE_VERIFICATION_FAILED_AT_POWER_ON = 0x8F1B
    EXECUTING_FIRMWARE_VERSION_CHANGED = 0x8F43
    FUTURE_DATED_ACTIVATION_SUCCESS = 0x8F66
    FUTURE_DATED_ACTIVATION_FAILURE = 0x8F67
    FIRMWARE_VERIFICATION_SUCCESSFUL = 0x8F72
    CCS08_TRANSFER_FAILURE = 0x8F89
    CCS08_TRANSFER_SUCCESS = 0x8F8A
    PPMID_FIRMWARE_ACTIVATION = 0x8F8B


class TransferResult(enum.IntEnum):
    """GBCS CCS08 per-device transfer result carried in 0x8F8A / 0x8F89."""

    TRANSFERRED = 0
    DISCARDED_OR_OVERWRITTEN = 1
    HARDWARE_VERSION_MISMATCH = 2
    TRANSFER_FAILED = 3


class ActivationResponseCode(enum.IntEnum):
    """SR 11.3 Activate Firmware response codes."""

    SUCCESS = 0
    NO_IMAGE_HELD = 1
    HASH_MISMATCH = 2
    ACTIVATION_FAILURE = 3
