"""DCC alert codes of the firmware flow, and the one place UserMessage records are made.

The N-codes are DCC alerts (the DSP's own); GBCS alert codes (0x8Fxx) are device alerts the DSP
passes on. Message IDs are a hash of what identifies the event, so the same event always gets the
same ID (a receiver de-duplicates retried deliveries) and two runs give the same IDs.
"""

from __future__ import annotations

import enum
import hashlib
from typing import Any, Mapping

from emulator.eui64 import format_eui64
from emulator.dcc.messages import MessageKind, UserMessage


class DccAlertCode(str, enum.Enum):
    """DCC alerts the DSP raises in the firmware flow.

    The public definitions of N18, N19, N20 and N22 were not found: the project treats them as four
    distinct CSP rejection reasons of a device, each chosen per device by a scenario's
    :class:`~emulator.dcc.csp.CspPolicy`.
    """

    N18 = "N18"
    N19 = "N19"
    N20 = "N20"
    N22 = "N22"
    N39 = "N39"
    N49 = "N49"
    N59 = "N59"
    N60 = "N60"
    N61 = "N61"
    N62 = "N62"

    @property
    def description(self) -> str:
        return _DESCRIPTIONS[self]


_DESCRIPTIONS: dict[DccAlertCode, str] = {
    DccAlertCode.N18: "Device rejected by CSP validation (reason N18; public definition not found)",
    DccAlertCode.N19: "Device rejected by CSP validation (reason N19; public definition not found)",
    DccAlertCode.N20: "Device rejected by CSP validation (reason N20; public definition not found)",
    DccAlertCode.N22: "Device rejected by CSP validation (reason N22; public definition not found)",
    DccAlertCode.N39: "PPMID alert relayed (firmware activation reported by the PPMID, GBCS 0x8F8B)",
    DccAlertCode.N49: "Firmware version updated in the Smart Metering Inventory",
    DccAlertCode.N59: "Firmware distribution in progress (to the other responsible suppliers)",
    DccAlertCode.N60: "Firmware image transfer to the Comms Hub failed",
    DccAlertCode.N61: "Firmware image delivered to the Comms Hub",
    DccAlertCode.N62: "Comms Hub alert: firmware transfer to the device (GBCS CCS08 result)",
}

CSP_REJECTION_CODES: frozenset[DccAlertCode] = frozenset(
    {DccAlertCode.N18, DccAlertCode.N19, DccAlertCode.N20, DccAlertCode.N22}
)


def message_id(
    kind: MessageKind,
    code: str,
    *,
    time: float,
    device: int | None,
    request_id: str | None,
    recipient: str | None,
) -> str:
    """A stable ID: ``<code>-<16 hex>`` hashed from everything that identifies the event."""
    key = "|".join(
        (
            kind.value,
            code,
            repr(float(time)),
            "" if device is None else format_eui64(device),
            request_id or "",
            recipient or "",
        )
    )
    return f"{code}-{hashlib.sha256(key.encode()).hexdigest()[:16].upper()}"


def make_message(
    kind: MessageKind,
    code: str,
    *,
    time: float,
    device: int | None = None,
    request_id: str | None = None,
    recipient: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> UserMessage:
    return UserMessage(
        message_id=message_id(kind, code, time=time, device=device, request_id=request_id, recipient=recipient),
        kind=kind,
        code=code,
        time=time,
        device=device,
        request_id=request_id,
        recipient=recipient,
        details=dict(details or {}),
    )


def dcc_alert(
    code: DccAlertCode,
    *,
    time: float,
    device: int | None = None,
    request_id: str | None = None,
    recipient: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> UserMessage:
    """A DCC alert (its description is ``code.description``, not repeated in ``details``)."""
    return make_message(
        MessageKind.DCC_ALERT, code.value, time=time, device=device, request_id=request_id,
        recipient=recipient, details=details,
    )


def gbcs_code(alert_code: int) -> str:
    """How a GBCS alert code is written in a UserMessage: ``"0x8F8B"``."""
    return f"0x{alert_code:04X}"
