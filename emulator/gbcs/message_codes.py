"""GBCS message codes and CRA flags of the firmware flow (GBCS message code table).

A message code names the use case a message belongs to; it travels in the grouping header's
other-information. Codes outside this table still decode (as a number) but their payloads do not.
"""

from __future__ import annotations

import enum


class CraFlag(enum.IntEnum):
    """The first byte of the GBCS transaction id: what kind of message this is."""

    COMMAND = 1
    RESPONSE = 2
    ALERT = 3


class MessageCode(enum.IntEnum):
    """Message codes the emulator encodes and decodes (with the GBCS use case in the name)."""

    CCS01_ADD_DEVICE_TO_CHF_DEVICE_LOG = 0x0001
    CCS02_REMOVE_DEVICE_FROM_CHF_DEVICE_LOG = 0x0002
    CS06_ACTIVATE_FIRMWARE = 0x0012
    CS14_DEVICE_LOG_CHANGED_ALERT = 0x0018
    ECS52_READ_ESME_CHF_FIRMWARE_VERSION = 0x0059
    GCS38_READ_GSME_FIRMWARE_VERSION = 0x0084
    CS06_FUTURE_DATED_ACTIVATION_ALERT = 0x00CA
    FIRMWARE_DISTRIBUTION_RECEIPT_ALERT_ESME = 0x00CE
    FIRMWARE_DISTRIBUTION_RECEIPT_ALERT_GSME = 0x00CF
    CCS08_FIRMWARE_TRANSFER_ALERT = 0x0128
    CS08_READ_PPMID_HCALCS_FIRMWARE_VERSION = 0x0129
    CS09_PPMID_FIRMWARE_ACTIVATION_ALERT = 0x012B
    GENERIC_CRITICAL_ALERT = 0x1000
    GENERIC_NON_CRITICAL_ALERT = 0x1001


def message_code_name(code: int) -> str:
    """``0x0128`` -> ``"CCS08_FIRMWARE_TRANSFER_ALERT"``; an unknown code -> ``"unknown 0xNNNN"``."""
    try:
        return MessageCode(code).name
    except ValueError:
        return f"unknown 0x{code:04X}"
