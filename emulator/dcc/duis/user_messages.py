"""UserMessage -> DUIS XML (for the User's endpoint) and JSON (for the journal).

Every message is a DUIS V5.4 ``sr:Response``: ``DCCAlertMessage`` with the typed ``DCCAlert`` body
the schema defines for each N-code of the flow, ``DeviceAlertMessage`` for GBCS alerts, and the
asynchronous ``ResponseMessage`` to 11.2/11.3 (a future-dated 11.3's outcome as
``FutureDatedDeviceAlertMessage``). DUIS types are closed, so what the emulator knows beyond them
(descriptions, hub details) stays in the JSON journal. Which body goes with which N-code is the
project's reading of the field names; docs/duis.md lists it.
"""

from __future__ import annotations

import base64
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

from lxml import etree

from ..messages import MessageKind, UserMessage
from .envelope import add_text, format_datetime, response_root, serialise
from .errors import DuisError
from .eui import format_eui64, parse_eui64
from .names import sr
from .responses import service_reference_of

_LOGGER = logging.getLogger(__name__)

UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
DEFAULT_DCC_ID = 0x90B3D51F30000002
"""The DCC's own EUI-64 in DCC's sample requests (target of the non-device SRs 11.1/11.4)."""
DEFAULT_USER_ID = 0x90B3D51F30010000
"""The DCC User (supplier) EUI-64 used throughout DCC's sample requests."""

DCC_ALERT_DESCRIPTIONS: dict[str, str] = {
    "N18": "CSP rejected the device (reason N18)",
    "N19": "CSP rejected the device (reason N19)",
    "N20": "CSP rejected the device (reason N20)",
    "N21": "CSP rejected the device (reason N21)",
    "N22": "CSP rejected the device (reason N22)",
    "N39": "PPMID alert forwarded",
    "N49": "Firmware version updated",
    "N59": "Firmware distribution in progress",
    "N60": "Firmware transfer to the Communications Hub failed",
    "N61": "Firmware delivered to the Communications Hub",
    "N62": "Communications Hub firmware transfer outcome for a device",
}
"""For the journal and timeline; DUIS messages carry only the code."""

DCC_ALERT_BODIES: dict[str, str] = {
    "N18": "FirmwareDistributionFailure",
    "N19": "FirmwareDistributionFailure",
    "N20": "FirmwareDistributionFailure",
    "N21": "FirmwareDistributionFailure",
    "N22": "FirmwareDistributionFailure",
    "N39": "PPMIDAlert",
    "N49": "FirmwareVersionMismatch",
    "N59": "FirmwareUpgradeRequested",
    "N60": "CSPFirmwareDeliveryStatus",
    "N61": "CSPFirmwareDeliveryStatus",
    "N62": "CommsHubAlert",
}
"""The typed ``DCCAlert`` body (DUIS V5.4 l.4905) written for each N-code."""

FUTURE_DATED_ALERT_CODES = frozenset({"8F66", "8F67"})
"""GBCS alerts that DUIS carries as the outcome of a future-dated 11.3 (l.4259)."""

TRANSFER_RESPONSE_CODES = ("FileTransferSuccess", "FirmwareImageDiscarded", "HardwareVersionMismatch",
                           "FileTransferFailure")
"""CCS08 transfer result 0-3 -> ``FirmwareTransferAlert/TransferResponseCode`` (l.4740)."""

# Details the renderer reads (the DSP writes them; the journal keeps them all).
_GBCS_PAYLOAD = "gbcs_payload"
_RESPONSE_CODE = "response_code"
_ALERT_CODE = re.compile(r"(?:0[xX])?([0-9A-Fa-f]{4})")
_COUNTER = re.compile(r"[0-9]{1,20}")
_REQUEST_ID = re.compile(r"[0-9A-Fa-f]{2}(?:-[0-9A-Fa-f]{2}){7}:[0-9A-Fa-f]{2}(?:-[0-9A-Fa-f]{2}){7}:[0-9]{1,20}")


def duis_request_id(request_id: str | None) -> str | None:
    """``request_id`` when it is a DUIS RequestID; in-process callers (scenarios) may use any text,
    which stays in the journal but cannot go into DUIS XML."""
    if request_id and _REQUEST_ID.fullmatch(request_id) and int(request_id.rsplit(":", 1)[1]) < 1 << 64:
        return request_id
    return None


class Signer(Protocol):
    def sign_element(self, root: etree._Element) -> bytes: ...


@dataclass(frozen=True, slots=True)
class UserMessageRenderer:
    """How asynchronous messages are stamped, addressed and signed.

    ``epoch`` turns a message's clock seconds into ResponseDateTime. The ResponseID is
    ``<originator>:<recipient>:<counter>``: the originator is the device for device alerts and
    responses, the DCC (``dcc_id``) for DCC alerts; the recipient is the message's recipient when
    it is an EUI-64, else the originator of its RequestID, else ``user_id``. An SR response
    takes the counter of its request (as DCC Boxed's do); alerts the ``counter`` they are given.
    ``signer`` (the DSP's XML signing key) signs every message when set.
    """

    epoch: datetime = UNIX_EPOCH
    dcc_id: int = DEFAULT_DCC_ID
    user_id: int = DEFAULT_USER_ID
    signer: Signer | None = None

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

    def element(self, message: UserMessage, *, counter: int) -> etree._Element:
        """The unsigned ``sr:Response`` for ``message``."""
        at = self.time_of(message)
        details = dict(message.details)
        response_code = str(details.pop(_RESPONSE_CODE, "I0"))
        payload = details.pop(_GBCS_PAYLOAD, None)
        future_dated = (message.kind is MessageKind.DEVICE_ALERT
                        and _alert_code(message.code) in FUTURE_DATED_ALERT_CODES)
        if message.kind is MessageKind.DCC_ALERT:
            originator = self.dcc_id
        else:
            originator = message.device if message.device is not None else self.dcc_id
        if message.kind is MessageKind.RESPONSE or future_dated:
            counter = _request_counter(message.request_id, counter)
        response_id = f"{format_eui64(originator)}:{format_eui64(self.recipient_of(message))}:{counter}"
        request_id = duis_request_id(message.request_id)
        if message.request_id and request_id is None:
            _LOGGER.warning("%s: request ID %r is not a DUIS RequestID; left out of the XML",
                            message.message_id, message.request_id)
        root, body = response_root(
            request_id=request_id,
            response_id=response_id,
            response_code=response_code,
            at=at,
            schema_version=message.schema_version,
        )
        if message.kind is MessageKind.DCC_ALERT:
            alert = etree.SubElement(body, sr("DCCAlertMessage"))
            add_text(alert, sr("DCCAlertCode"), message.code)
            _dcc_alert_body(etree.SubElement(alert, sr("DCCAlert")), message, details, at)
        elif future_dated:
            reply = etree.SubElement(body, sr("ResponseMessage"))
            add_text(reply, sr("ServiceReference"), "11.3")
            add_text(reply, sr("ServiceReferenceVariant"), "11.3")
            outcome = etree.SubElement(reply, sr("FutureDatedDeviceAlertMessage"))
            add_text(outcome, sr("FutureDatedAlertCode"), _alert_code(message.code))
            add_text(outcome, sr("GBCSPayload"), _payload_text(payload))
            add_text(outcome, sr("InstructionNumber"), "1")
            add_text(outcome, sr("TotalCommandInstructions"), "1")
        elif message.kind is MessageKind.DEVICE_ALERT:
            alert = etree.SubElement(body, sr("DeviceAlertMessage"))
            add_text(alert, sr("AlertCode"), _alert_code(message.code))
            add_text(alert, sr("GBCSPayload"), _payload_text(payload))
        else:
            reply = etree.SubElement(body, sr("ResponseMessage"))
            add_text(reply, sr("ServiceReference"), service_reference_of(message.code))
            add_text(reply, sr("ServiceReferenceVariant"), message.code)
            add_text(reply, sr("GBCSPayload"), _payload_text(payload))
        return root

    def xml(self, message: UserMessage, *, counter: int) -> bytes:
        """Render ``message`` (signed when the renderer has a signer); ``counter`` numbers alerts."""
        root = self.element(message, counter=counter)
        return self.signer.sign_element(root) if self.signer is not None else serialise(root)


def _request_counter(request_id: str | None, fallback: int) -> int:
    counter = (request_id or "").rsplit(":", 1)[-1]
    return int(counter) if _COUNTER.fullmatch(counter) else fallback


def _eui_detail(details: dict[str, Any], key: str, fallback: int | None) -> str:
    value = details.get(key)
    if isinstance(value, str):
        try:
            return format_eui64(parse_eui64(value, element=key))
        except DuisError:
            pass
    if isinstance(value, int) and not isinstance(value, bool):
        return format_eui64(value)
    if fallback is not None:
        return format_eui64(fallback)
    raise ValueError(f"DCC alert needs {key!r} (an EUI-64), got {value!r}")


def _version_detail(details: dict[str, Any], key: str, code: str) -> str:
    """A DUIS FirmwareVersion (1-8 characters): the DSP writes versions as 8 hex digits."""
    value = details.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:08X}"
    if isinstance(value, str) and 1 <= len(value) <= 8:
        return value
    _LOGGER.warning("%s: %s is %r, not a firmware version; 00000000 written", code, key, value)
    return "00000000"


def _devices_detail(details: dict[str, Any], device: int | None) -> str:
    devices = details.get("devices")
    if isinstance(devices, (list, tuple)) and devices:
        return ",".join(_eui_detail({"d": d}, "d", None) for d in devices)
    return _eui_detail({}, "device", device)


def _dcc_alert_body(content: etree._Element, message: UserMessage, details: dict[str, Any], at: datetime) -> None:
    code = message.code
    body_name = DCC_ALERT_BODIES.get(code)
    if body_name is None:
        raise ValueError(f"no DUIS DCCAlert body is defined here for {code}")
    body = etree.SubElement(content, sr(body_name))
    device = message.device
    request_id = duis_request_id(message.request_id)
    if body_name == "FirmwareDistributionFailure":
        add_text(body, sr("UpdateFirmwareRequestID"), _required(request_id, code))
        add_text(body, sr("MeterIDs"), _devices_detail(details, device))
    elif body_name == "PPMIDAlert":
        add_text(body, sr("DeviceID"), _eui_detail(details, "device", device))
        add_text(body, sr("DeviceAlertCode"), _alert_code(str(details.get("alert_code", "8F8B"))))
        add_text(body, sr("Timestamp"), format_datetime(at))
        upgrade = etree.SubElement(body, sr("PPMIDFirmwareUpgradeAlert"))
        add_text(upgrade, sr("FirmwareVersion"), _version_detail(details, "firmware_version", code))
        add_text(upgrade, sr("ActivateImageResultCode"),
                 "ActivationSuccess" if details.get("success", True) else "ActivationFailure")
    elif body_name == "FirmwareVersionMismatch":
        add_text(body, sr("DeviceID"), _eui_detail(details, "device", device))
        add_text(body, sr("DeviceType"), str(details.get("device_type", "PPMID")))
        add_text(body, sr("FirmwareVersionSMI"), _version_detail(details, "previous_version", code))
        add_text(body, sr("FirmwareVersionDevice"), _version_detail(details, "firmware_version", code))
    elif body_name == "FirmwareUpgradeRequested":
        add_text(body, sr("DeviceType"), str(details.get("device_type", "")))
        add_text(body, sr("FirmwareVersion"), _version_detail(details, "firmware_version", code))
        add_text(body, sr("DeviceList"), _devices_detail(details, device))
    elif body_name == "CSPFirmwareDeliveryStatus":
        add_text(body, sr("UpdateFirmwareRequestID"), _required(request_id, code))
        add_text(body, sr("CommsHubDeviceID"), _eui_detail(details, "comms_hub", None))
        add_text(body, sr("TargetDeviceID"), _eui_detail(details, "device", device))
        add_text(body, sr("FirmwareVersion"), _version_detail(details, "firmware_version", code))
        add_text(body, sr("TimeStamp"), format_datetime(at))
        add_text(body, sr("CommsHubTransferStatus"), "Success" if code == "N61" else "Failure")
    else:  # CommsHubAlert (N62)
        add_text(body, sr("CommsHubDeviceID"), _eui_detail(details, "comms_hub", None))
        add_text(body, sr("AlertCode"), _alert_code(str(details.get("alert_code", "8F8A"))))
        add_text(body, sr("TimeStamp"), format_datetime(at))
        transfer = etree.SubElement(body, sr("FirmwareTransferAlert"))
        if request_id:
            add_text(transfer, sr("UpdateFirmwareRequestID"), request_id)
        add_text(transfer, sr("OtherDeviceID"), _eui_detail(details, "device", device))
        add_text(transfer, sr("FirmwareVersion"), _version_detail(details, "firmware_version", code))
        result = details.get("result", 0)
        index = result if isinstance(result, int) and 0 <= result < len(TRANSFER_RESPONSE_CODES) else 3
        add_text(transfer, sr("TransferResponseCode"), TRANSFER_RESPONSE_CODES[index])


def _required(request_id: str | None, code: str) -> str:
    """The 11.1/11.4's RequestID; an alert whose request had none that DUIS can carry (only
    in-process scenarios make such requests) names the DCC's own zero request."""
    if request_id:
        return request_id
    _LOGGER.warning("DCC alert %s has no DUIS RequestID; 90-B3-D5-1F-30-00-00-02 counter 0 written", code)
    dcc = format_eui64(DEFAULT_DCC_ID)
    return f"{dcc}:{dcc}:0"


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
