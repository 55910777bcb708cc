"""What the DCC side hands back to a DCC User: synchronous DSP answers and asynchronous messages.

The DSP produces these records; the DUIS layer renders them as XML, the outbox delivers them, the
timeline prints them. Keeping them as data here lets each of those stay ignorant of the others.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class RejectionReason(str, enum.Enum):
    """Why the DSP rejected a device of an 11.1/11.4 synchronously: one DUIS warning list each."""

    INVALID_DEVICE = "InvalidDevice"
    NOT_COMMISSIONED = "NotCommissioned"
    FIRMWARE_NOT_APPLICABLE = "FirmwareNotApplicable"
    FIRMWARE_UPDATE_IN_PROGRESS = "FirmwareUpdateInProgress"
    INVALID_GBCS_VERSION = "InvalidGBCSVersion"


class ResponseCode(str, enum.Enum):
    """DUIS ``ResponseCode`` values the emulated DSP answers with (DUIS V5.4 l.4020).

    The schema's enumeration carries no meanings; those of I0-E21 follow DUIS's response code table
    as public SMETS2 references reproduce it. Which code DCC gives a bad signature or a replayed
    counter was not found: the project answers those with E1 (the User is not authenticated), see
    docs/duis.md "Response codes".
    """

    SUCCESS = "I0"  # success with data in the body
    ACKNOWLEDGED = "I99"  # accepted and passed access control; the outcome follows asynchronously
    W110101 = "W110101"  # 11.1 accepted for some devices (warning lists)
    W110401 = "W110401"  # 11.4 accepted for some devices (warning lists)
    UNKNOWN_USER = "E1"  # Invalid User / User Role: not a valid SEC party / role
    BAD_SIGNATURE = "E1"  # (reading) the signature does not authenticate the User
    REPLAYED_COUNTER = "E1"  # (reading) RequestID counter not greater than the last from this originator
    ROLE_NOT_ELIGIBLE = "E2"  # User Role not permitted to send the Service Reference
    NOT_RESPONSIBLE = "E4"  # User / User Role not authorised for the device
    DEVICE_STATUS = "E5"  # the device's SMI status is incompatible with the SR
    NOT_VALID_FOR_DEVICE = "E11"  # SR not compatible with the device (type)
    COMMAND_VARIANT_NOT_ALLOWED = "E12"  # CommandVariant not applicable (or not served) for the SR
    WRONG_ENDPOINT = "E13"  # request type not valid for the URL (e.g. 11.4 sent to serviceT)
    DEVICE_UNKNOWN = "E19"  # the device does not exist (not in the SMI)
    NO_WAN_ROUTE = "E20"  # unable to communicate with the device (no route to its Comms Hub)
    INVALID_REQUEST = "E100"  # (reading) well-formed XML that is not a valid request for SR 11.1-11.4

    def __str__(self) -> str:
        return self.value

    @property
    def accepted(self) -> bool:
        """I and W codes: the request (or part of it) goes ahead."""
        return self.value.startswith(("I", "W"))


@dataclass(frozen=True, slots=True)
class DspResponse:
    """The synchronous answer to a Service Request.

    ``response_code`` is a DUIS :class:`ResponseCode`: ``I99`` acknowledged, ``W110101`` /
    ``W110401`` accepted with some devices rejected, ``E…`` refused as a whole (``error`` says why,
    for the event log and an HTTP header; DUIS itself carries only the code).
    """

    request_id: str
    service_reference_variant: str
    response_code: ResponseCode
    accepted: tuple[int, ...] = ()
    rejected: dict[RejectionReason, tuple[int, ...]] = field(default_factory=dict)
    error: str | None = None
    precommand: bytes | None = None
    """11.3 CV 4 on serviceT: the CS06 pre-command for the User to sign (DUIS ``PreCommand``)."""
    gbcs_version: str | None = None
    local_command: bytes | None = None
    """11.2 CV 2/3, 11.3 CV 6/7: the GBCS command returned for local delivery (DUIS ``LocalCommand``),
    ACB-MAC'd (and for 11.3 carrying the User's KRP signature)."""


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
    schema_version: str | None = None  # the request's DUIS schemaVersion, answered in kind
