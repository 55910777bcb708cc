"""GBCS vocabulary of the firmware flow: alert codes and the result codes devices and hubs report.

Neutral ground: the hub, the devices and the DCC side all speak these, so none imports another
for them.
"""

from __future__ import annotations

import enum


class GbcsAlertCode(enum.IntEnum):
    """GBCS alert codes the firmware flow uses (GBCS alert code table)."""

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
