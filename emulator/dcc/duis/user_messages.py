"""UserMessage -> DUIS-style XML (for the User's endpoint) and JSON (for the journal).

DUIS defines the envelope and the message kinds: ``DCCAlertMessage`` (``DCCAlertCode`` N..),
``DeviceAlertMessage`` (GBCS ``AlertCode`` as four hex digits, ``GBCSPayload``) and the
asynchronous ``ResponseMessage`` to 11.2/11.3. What DUIS leaves alert-specific or what the
emulator does not build (real GBCS payloads) is written as ``emu:`` elements, so a reader can
tell DCC's names from the emulator's at a glance.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from lxml import etree

from ..messages import MessageKind, UserMessage
from .envelope import add_text, response_root, serialise
from .errors import DuisError
from .eui import format_eui64, parse_eui64
from .names import emu, sr
from .responses import service_reference_of

UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
DEFAULT_DCC_ID = 0x90B3D51F30000002
"""The DCC's own EUI-64 in DCC's sample requests (target of the non-device SRs 11.1/11.4)."""
DEFAULT_USER_ID = 0x90B3D51F30010000
"""The DCC User (supplier) EUI-64 used throughout DCC's sample requests."""

DCC_ALERT_DESCRIPTIONS: dict[str, str] = {
    "N18": "CSP rejected the device (reason N18)",
    "N19": "CSP rejected the device (reason N19)",
    "N20": "CSP rejected the device (reason N20)",
    "N22": "CSP rejected the device (reason N22)",
    "N39": "PPMID alert forwarded",
    "N49": "Firmware version updated",
    "N59": "Firmware distribution in progress",
    "N60": "Firmware transfer to the Communications Hub failed",
    "N61": "Firmware delivered to the Communications Hub",
    "N62": "Communications Hub firmware transfer outcome for a device",
}
"""Public definitions of N18-N22 were not found; see docs/duis.md."""

# Details the renderer places in DUIS fields rather than in emu:Detail.
_GBCS_PAYLOAD = "gbcs_payload"
_RESPONSE_CODE = "response_code"
_ALERT_CODE = re.compile(r"(?:0[xX])?([0-9A-Fa-f]{4})")


@dataclass(frozen=True, slots=True)
class UserMessageRenderer:
    """How asynchronous messages are stamped and addressed.

    ``epoch`` turns a message's clock seconds into ResponseDateTime. The ResponseID is
    ``<originator>:<recipient>:<counter>``: the originator is the device for device alerts and
    responses, the DCC (``dcc_id``) for DCC alerts; the recipient is the message's recipient when
    it is an EUI-64, else the originator of its RequestID, else ``user_id``.
    """

    epoch: datetime = UNIX_EPOCH
    dcc_id: int = DEFAULT_DCC_ID
    user_id: int = DEFAULT_USER_ID

    def time_of(self, message: UserMessage) -> datetime:
        return self.epoch + timedelta(seconds=message.time)

    def recipient_of(self, message: UserMessage) -> int:
        for candidate in (message.recipient, (message.request_id or "").split(":")[0]):
            if candidate:
                try:
                    return parse_eui64(candidate, element="recipient")
                except DuisError:
                    continue
        return self.user_id

    def xml(self, message: UserMessage, *, counter: int) -> bytes:
        """Render ``message``; ``counter`` is the last part of its ResponseID."""
        if message.kind is MessageKind.DCC_ALERT:
            originator = self.dcc_id
        else:
            originator = message.device if message.device is not None else self.dcc_id
        response_id = f"{format_eui64(originator)}:{format_eui64(self.recipient_of(message))}:{counter}"
        details = dict(message.details)
        response_code = str(details.pop(_RESPONSE_CODE, "I0"))
        payload = details.pop(_GBCS_PAYLOAD, None)
        root, body = response_root(
            request_id=message.request_id,
            response_id=response_id,
            response_code=response_code,
            at=self.time_of(message),
            with_emu=True,
        )
        root.set(emu("MessageID"), message.message_id)
        if message.recipient is not None:
            root.set(emu("Recipient"), message.recipient)
        if message.kind is MessageKind.DCC_ALERT:
            alert = etree.SubElement(body, sr("DCCAlertMessage"))
            add_text(alert, sr("DCCAlertCode"), message.code)
            content = etree.SubElement(alert, sr("DCCAlert"))
            if message.device is not None:
                add_text(content, emu("DeviceID"), format_eui64(message.device))
            add_text(content, emu("Description"), DCC_ALERT_DESCRIPTIONS.get(message.code, message.code))
            _add_details(content, details)
        elif message.kind is MessageKind.DEVICE_ALERT:
            alert = etree.SubElement(body, sr("DeviceAlertMessage"))
            add_text(alert, sr("AlertCode"), _alert_code(message.code))
            add_text(alert, sr("GBCSPayload"), _payload_text(payload))
            _add_details(alert, details)
        else:
            reply = etree.SubElement(body, sr("ResponseMessage"))
            add_text(reply, sr("ServiceReference"), service_reference_of(message.code))
            add_text(reply, sr("ServiceReferenceVariant"), message.code)
            add_text(reply, sr("GBCSPayload"), _payload_text(payload))
            _add_details(reply, details)
        return serialise(root)


def _alert_code(code: str) -> str:
    """``0x8F8B`` -> ``8F8B`` (DUIS writes the GBCS alert code as four hex digits)."""
    match = _ALERT_CODE.fullmatch(code.strip())
    return match.group(1).upper() if match else code


def _payload_text(payload: Any) -> str:
    if payload is None:
        return ""
    if isinstance(payload, (bytes, bytearray)):
        return base64.b64encode(bytes(payload)).decode("ascii")
    return str(payload)


def _detail_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex().upper()
    if isinstance(value, (list, tuple)):
        return " ".join(_detail_text(item) for item in value)
    if isinstance(value, dict):
        return json.dumps(jsonable(value), sort_keys=True)
    return str(value)


def _add_details(parent: etree._Element, details: dict[str, Any]) -> None:
    for name, value in details.items():
        element = add_text(parent, emu("Detail"), _detail_text(value))
        element.set("name", str(name))


def jsonable(value: Any) -> Any:
    """Details as JSON values: bytes become upper-case hex, tuples lists, enums their value."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex().upper()
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(item) for item in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "value"):
        return jsonable(value.value)
    return str(value)


def user_message_to_json(message: UserMessage) -> dict[str, Any]:
    """One journal record: every field of ``message``, device as an EUI-64 string."""
    return {
        "message_id": message.message_id,
        "kind": message.kind.value,
        "code": message.code,
        "time": message.time,
        "device": format_eui64(message.device) if message.device is not None else None,
        "request_id": message.request_id,
        "recipient": message.recipient,
        "details": jsonable(message.details),
    }
