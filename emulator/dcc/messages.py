"""What the DCC side hands back to a DCC User: synchronous DSP answers and asynchronous messages.

The DSP produces these records; the DUIS layer renders them as XML, the outbox delivers them, the
timeline prints them. Keeping them as data here lets each of those stay ignorant of the others.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class RejectionReason(str, enum.Enum):
    """Why the DSP rejected a device synchronously (seed diagram, DSP validation checks)."""

    INVALID_DEVICE = "InvalidDevice"
    NOT_COMMISSIONED = "NotCommissioned"
    FIRMWARE_NOT_APPLICABLE = "FirmwareNotApplicable"
    FIRMWARE_UPDATE_IN_PROGRESS = "FirmwareUpdateInProgress"


@dataclass(frozen=True, slots=True)
class DspResponse:
    """The synchronous answer to a Service Request.

    ``response_code`` follows DUIS: ``"I0"`` accepted, ``"W1"`` accepted with some devices
    rejected, ``"E…"`` rejected as a whole (``error`` says why).
    """

    request_id: str
    service_reference_variant: str
    response_code: str
    accepted: tuple[int, ...] = ()
    rejected: dict[RejectionReason, tuple[int, ...]] = field(default_factory=dict)
    error: str | None = None


class MessageKind(str, enum.Enum):
    DCC_ALERT = "dcc_alert"  # code "N18".."N62"
    DEVICE_ALERT = "device_alert"  # code "0x8F8B" etc. (GBCS alert code)
    RESPONSE = "response"  # asynchronous response to an SR; code is its variant, e.g. "11.2"


@dataclass(frozen=True, slots=True)
class UserMessage:
    """One asynchronous message for a DCC User.

    ``message_id`` is stable for the same event so that a receiver can de-duplicate retried
    deliveries. ``time`` is clock seconds; renderers turn it into a date with their epoch.
    """

    message_id: str
    kind: MessageKind
    code: str
    time: float
    device: int | None = None
    request_id: str | None = None
    recipient: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
