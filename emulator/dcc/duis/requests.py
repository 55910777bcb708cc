"""DUIS request XML -> :mod:`emulator.dcc.service_requests` records (SR 11.1-11.4).

Follows DUIS V5.4 and DCC's published sample requests (``@smartdcc/duis-templates``): the target
device of 11.2/11.3 is the target part of the RequestID; 11.1/11.4 list their devices in a
comma-separated ``DeviceIDList`` (at most 50,000). The enveloped ``ds:Signature`` is checked by
:mod:`.signing`, not here. Every refusal is a :class:`DuisError` carrying the DUIS code to answer
with and what could be read of the header.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

from lxml import etree

from ..messages import ResponseCode
from ..service_requests import (
    ActivateFirmware,
    ReadFirmwareVersion,
    RequestHeader,
    ServiceReferenceVariant,
    ServiceRequest,
    UpdateFirmware,
    UpdateHanDeviceLog,
    UpdatePPMIDFirmware,
)
from .errors import DuisError
from .eui import parse_eui64
from .names import DS_NS, SR_NS, sr
from .xmlsafe import DEFAULT_MAX_DOCUMENT, parse_document

_LOGGER = logging.getLogger(__name__)

_HEX = re.compile(r"[0-9A-Fa-f]{1,8}")
_HEX64 = re.compile(r"[0-9A-Fa-f]{64}")
_COUNTER = re.compile(r"[0-9]{1,20}")
_DECIMAL = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3})?")
_VARIANT = re.compile(r"[0-9]{1,2}\.[0-9]{1,2}(?:\.[0-9]{1,2})?")
_EUI_TOKEN = re.compile(r"[0-9A-Fa-f]{2}(?:-[0-9A-Fa-f]{2}){7}")

MAX_DEVICE_IDS = 50_000
"""DUIS: an UpdateFirmware / UpdatePPMIDFirmware names at most 50,000 devices."""
MAX_FIRMWARE_IMAGE = 10_240_000
"""Octets, the schema's maxLength for FirmwareImage (l.3283)."""


@dataclass(frozen=True, slots=True)
class _Variant:
    body: str
    allowed: frozenset[int]  # CommandVariants DUIS allows (V5.4 l.2373-2378)
    served: frozenset[int] | None = None  # those the emulator carries out (None: all it allows)


VARIANTS: dict[str, _Variant] = {
    ServiceReferenceVariant.UPDATE_FIRMWARE.value: _Variant("UpdateFirmware", frozenset({8})),
    ServiceReferenceVariant.READ_FIRMWARE_VERSION.value: _Variant(
        "ReadFirmwareVersion", frozenset({1, 2, 3})),
    ServiceReferenceVariant.ACTIVATE_FIRMWARE.value: _Variant(
        "ActivateFirmware", frozenset({4, 5, 6, 7})),
    ServiceReferenceVariant.UPDATE_PPMID_FIRMWARE.value: _Variant(
        "UpdatePPMIDFirmware", frozenset({8})),
    ServiceReferenceVariant.UPDATE_HAN_DEVICE_LOG.value: _Variant(
        "UpdateHANDeviceLog", frozenset({1, 2, 3})),
}
"""SRV -> body element and CommandVariants: 11.1/11.4 non-device (CV 8), 11.2 non-critical
(CV 1 over the WAN; 2 returns the command for local delivery; 3 both), 11.3 critical (CV 4
transform: the pre-command; 5, 6, 7 carry the SignedPreCommand, delivered as 1, 2, 3), 8.11
(CV 1: CCS01/CCS02 to the Comms Hub; 2 returns it for local delivery; 3 both)."""


def _local(element: etree._Element) -> str:
    return etree.QName(element).localname


def _children(parent: etree._Element, path: str) -> list[etree._Element]:
    """Element children only; anything outside the DUIS namespace is an error."""
    kids = [child for child in parent if isinstance(child.tag, str)]
    for child in kids:
        if etree.QName(child).namespace != SR_NS:
            raise DuisError(
                f"unexpected element {_shown_tag(child)}; expected elements in namespace {SR_NS}",
                element=path,
            )
    return kids


def _text(parent: etree._Element, name: str, path: str, *, required: bool = True) -> str | None:
    found = parent.findall(sr(name))
    where = f"{path}/{name}"
    if not found:
        if required:
            raise DuisError("missing", element=where)
        return None
    if len(found) > 1:
        raise DuisError(f"appears {len(found)} times; expected once", element=where)
    element = found[0]
    if any(isinstance(child.tag, str) for child in element):
        raise DuisError("must hold text, not child elements", element=where)
    text = (element.text or "").strip()
    if not text and required:
        raise DuisError("is empty", element=where)
    return text


def _parse_request_id(text: str, where: str) -> tuple[int, int, int]:
    parts = text.split(":")
    if len(parts) != 3:
        raise DuisError(
            f"{text!r} is not <originator EUI-64>:<target EUI-64>:<counter>", element=where
        )
    originator = parse_eui64(parts[0], element=f"{where} (originator)")
    target = parse_eui64(parts[1], element=f"{where} (target)")
    if not _COUNTER.fullmatch(parts[2]) or int(parts[2]) >= 1 << 64:
        raise DuisError(f"counter {parts[2]!r} is not an unsigned 64-bit decimal", element=where)
    return originator, target, int(parts[2])


@dataclass(slots=True)
class _Context:
    """What has been read so far, for the answer to a request refused part-way."""

    request_id: str | None = None
    variant: str | None = None
    schema_version: str | None = None


def _parse_header(root: etree._Element, context: _Context) -> RequestHeader:
    headers = root.findall(sr("Header"))
    if len(headers) != 1:
        raise DuisError("missing" if not headers else "appears more than once", element="Header")
    header = headers[0]
    _only(header, "Header", {"RequestID", "FirstInSequence", "PrecedingServiceRequestID", "CommandVariant",
                             "ServiceReference", "ServiceReferenceVariant"})
    variant = _text(header, "ServiceReferenceVariant", "Header", required=False)
    if variant and _VARIANT.fullmatch(variant):
        context.variant = variant
    request_id = _text(header, "RequestID", "Header")
    assert request_id is not None
    originator, target, counter = _parse_request_id(request_id, "Header/RequestID")
    context.request_id = request_id
    cv_text = _text(header, "CommandVariant", "Header")
    assert cv_text is not None
    if not cv_text.isdigit() or not 1 <= int(cv_text) <= 8:
        raise DuisError(f"{cv_text!r} is not a CommandVariant 1-8", element="Header/CommandVariant")
    service_reference = _text(header, "ServiceReference", "Header")
    assert service_reference is not None
    if not variant:
        raise DuisError("missing", element="Header/ServiceReferenceVariant")
    if variant not in VARIANTS:
        raise DuisError(
            f"{variant!r} is not served; this emulator serves {', '.join(VARIANTS)}",
            element="Header/ServiceReferenceVariant",
        )
    if service_reference != variant:
        raise DuisError(
            f"{service_reference!r} does not match ServiceReferenceVariant {variant!r}",
            element="Header/ServiceReference",
        )
    command_variant = int(cv_text)
    allowed = VARIANTS[variant].allowed
    if command_variant not in allowed:
        raise DuisError(
            f"{command_variant} is not allowed for {variant} by DUIS "
            f"(allowed: {', '.join(map(str, sorted(allowed)))})",
            element="Header/CommandVariant", code=ResponseCode.COMMAND_VARIANT_NOT_ALLOWED,
        )
    served = VARIANTS[variant].served
    if served is not None and command_variant not in served:
        raise DuisError(
            f"{command_variant} for {variant} is not served by the emulator (docs/duis.md, "
            "'CommandVariants')",
            element="Header/CommandVariant", code=ResponseCode.COMMAND_VARIANT_NOT_ALLOWED,
        )
    return RequestHeader(
        request_id=request_id,
        command_variant=command_variant,
        service_reference=service_reference,
        service_reference_variant=variant,
        originator=originator,
        target=target,
        counter=counter,
        schema_version=context.schema_version,
    )


def _firmware_image(body: etree._Element, path: str) -> bytes:
    text = _text(body, "FirmwareImage", path)
    assert text is not None
    compact = "".join(text.split())
    try:
        image = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DuisError(f"not valid base64 ({exc})", element=f"{path}/FirmwareImage") from None
    if not image:
        raise DuisError("decodes to no bytes", element=f"{path}/FirmwareImage")
    if len(image) > MAX_FIRMWARE_IMAGE:
        raise DuisError(f"decodes to {len(image)} bytes, over the schema's {MAX_FIRMWARE_IMAGE}",
                        element=f"{path}/FirmwareImage")
    return image


def _firmware_version(body: etree._Element, path: str) -> int | None:
    """DUIS FirmwareVersion: 1-8 characters. Read as hex when it is (DCC's samples write 8 hex
    digits); any other text is kept out of the comparison with the image header."""
    element = body.find(sr("FirmwareVersion"))
    text = _text(body, "FirmwareVersion", path)
    assert text is not None and element is not None
    raw = element.text or ""
    if not 1 <= len(raw) <= 8:
        raise DuisError(f"{raw[:20]!r} is {len(raw)} characters; DUIS allows 1-8", element=f"{path}/FirmwareVersion")
    return int(text, 16) if _HEX.fullmatch(text) else None


def _device_id_list(body: etree._Element, path: str) -> tuple[int, ...]:
    """DUIS DeviceIDList: EUI-64s joined by commas, no spaces (pattern ``(EUI,)*EUI``), at most
    50,000; checked in one pass (a set for duplicates)."""
    where = f"{path}/DeviceIDList"
    lists = body.findall(sr("DeviceIDList"))
    if len(lists) != 1:
        raise DuisError("missing" if not lists else "appears more than once", element=where)
    element = lists[0]
    if any(isinstance(child.tag, str) for child in element):
        raise DuisError("must hold comma-separated EUI-64s as text, not child elements", element=where)
    text = element.text or ""
    if not text.strip():
        raise DuisError("lists no device", element=where)
    if text.count(",") >= MAX_DEVICE_IDS:
        raise DuisError(f"lists {text.count(',') + 1} devices; DUIS allows at most {MAX_DEVICE_IDS}", element=where)
    devices: list[int] = []
    seen: set[int] = set()
    for index, token in enumerate(text.split(","), start=1):
        if not _EUI_TOKEN.fullmatch(token):
            shown = token if len(token) <= 40 else token[:40] + "..."
            hint = " (DUIS separates devices with commas, no spaces)" if " " in token.strip() or "\n" in token else ""
            raise DuisError(f"entry {index} {shown!r} is not an EUI-64{hint}", element=where)
        device = int(token.replace("-", ""), 16)
        if device in seen:
            raise DuisError(f"lists {token.upper()} more than once", element=where)
        seen.add(device)
        devices.append(device)
    return tuple(devices)


def _execution_datetime(body: etree._Element, path: str) -> datetime | None:
    text = _text(body, "ExecutionDateTime", path, required=False)
    if text is None:
        return None
    where = f"{path}/ExecutionDateTime"
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise DuisError(f"{text!r} is not an xs:dateTime", element=where) from None
    # DUIS times are UTC; a time without a zone is read as UTC rather than the host's zone.
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _firmware_hash(body: etree._Element, path: str) -> bytes:
    text = _text(body, "FirmwareHash", path)
    assert text is not None
    if not _HEX64.fullmatch(text):
        raise DuisError(
            f"{text[:80]!r} is not 64 hex digits (a SHA-256 hash)", element=f"{path}/FirmwareHash"
        )
    return bytes.fromhex(text)


def _only(body: etree._Element, path: str, allowed: set[str]) -> None:
    for child in _children(body, path):
        if _local(child) not in allowed:
            raise DuisError(f"unexpected element {_shown_tag(child)}", element=path)


def _update_firmware(header: RequestHeader, body: etree._Element, path: str) -> UpdateFirmware:
    _only(body, path, {"FirmwareImage", "FirmwareVersion", "DeviceIDList"})
    return UpdateFirmware(
        header, _firmware_image(body, path), _firmware_version(body, path), _device_id_list(body, path)
    )


def _update_ppmid_firmware(header: RequestHeader, body: etree._Element, path: str) -> UpdatePPMIDFirmware:
    _only(body, path, {"FirmwareImage", "FirmwareVersion", "DeviceIDList"})
    return UpdatePPMIDFirmware(
        header, _firmware_image(body, path), _firmware_version(body, path), _device_id_list(body, path)
    )


def _read_firmware_version(header: RequestHeader, body: etree._Element, path: str) -> ReadFirmwareVersion:
    _only(body, path, {"ExecutionDateTime"})
    if _text(body, "ExecutionDateTime", path, required=False) is not None:
        raise DuisError("a future-dated 11.2 is not served by the emulator",
                        element=f"{path}/ExecutionDateTime", code=ResponseCode.COMMAND_VARIANT_NOT_ALLOWED)
    assert header.target is not None
    return ReadFirmwareVersion(header, header.target)


def _activate_firmware(header: RequestHeader, body: etree._Element, path: str) -> ActivateFirmware:
    _only(body, path, {"ExecutionDateTime", "FirmwareHash"})
    assert header.target is not None
    return ActivateFirmware(
        header, header.target, _firmware_hash(body, path), _execution_datetime(body, path)
    )


def _signed_precommand(header: RequestHeader, body: etree._Element, path: str) -> ActivateFirmware:
    """11.3 CV 5/6/7: the GBCSPayload (base64) is checked against the issued pre-command by the DSP."""
    _only(body, path, {"ExecutionDateTime", "GBCSPayload"})
    assert header.target is not None
    text = _text(body, "GBCSPayload", path)
    assert text is not None
    try:
        payload = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise DuisError("not base64", element=f"{path}/GBCSPayload") from None
    if not payload:
        raise DuisError("empty", element=f"{path}/GBCSPayload")
    return ActivateFirmware(header, header.target, b"", _execution_datetime(body, path), signed_precommand=payload)


_INSTALL_CODE = re.compile(r"(?:[0-9A-Fa-f]{2}){6,16}")
MAX_JOIN_TIME_PERIOD = 3600
"""DUIS ``JoinTimePeriod``: positiveInteger, at most 3600 (seconds)."""


def _update_han_device_log(header: RequestHeader, body: etree._Element, path: str) -> UpdateHanDeviceLog:
    """8.11 ``UpdateHANDeviceLog{DeviceID, RequestType Add|Remove, AddDeviceToCHFWhitelist?}``."""
    _only(body, path, {"ExecutionDateTime", "DeviceID", "RequestType", "AddDeviceToCHFWhitelist"})
    if _text(body, "ExecutionDateTime", path, required=False) is not None:
        raise DuisError("a future-dated 8.11 is not served by the emulator",
                        element=f"{path}/ExecutionDateTime", code=ResponseCode.COMMAND_VARIANT_NOT_ALLOWED)
    device_text = _text(body, "DeviceID", path)
    assert device_text is not None
    device = parse_eui64(device_text, element=f"{path}/DeviceID")
    kind = _text(body, "RequestType", path)
    if kind not in ("Add", "Remove"):
        raise DuisError(f"{kind!r} is neither Add nor Remove", element=f"{path}/RequestType")
    whitelist = body.findall(sr("AddDeviceToCHFWhitelist"))
    where = f"{path}/AddDeviceToCHFWhitelist"
    assert header.target is not None
    if kind == "Remove":
        if whitelist:
            raise DuisError("only an Add carries AddDeviceToCHFWhitelist", element=where)
        return UpdateHanDeviceLog(header, header.target, device, add=False)
    if len(whitelist) != 1:
        raise DuisError("missing (an Add carries JoinTimePeriod and InstallCode)" if not whitelist
                        else "appears more than once", element=where)
    entry = whitelist[0]
    _only(entry, where, {"JoinTimePeriod", "InstallCode", "ImportMPxN", "SecondaryImportMPAN", "ExportMPAN"})
    period_text = _text(entry, "JoinTimePeriod", where)
    assert period_text is not None
    if not period_text.isdigit() or not 1 <= int(period_text) <= MAX_JOIN_TIME_PERIOD:
        raise DuisError(f"{period_text[:20]!r} is not a whole number of seconds 1-{MAX_JOIN_TIME_PERIOD}",
                        element=f"{where}/JoinTimePeriod")
    code_text = _text(entry, "InstallCode", where)
    assert code_text is not None
    if not _INSTALL_CODE.fullmatch(code_text):
        raise DuisError(f"{code_text[:40]!r} is not 6-16 octets of hex (DUIS InstallCode, without its CRC)",
                        element=f"{where}/InstallCode")
    code = bytes.fromhex(code_text)
    if len(code) not in (6, 8, 12, 16):
        raise DuisError(f"{len(code)} octets: a ZigBee install code has 6, 8, 12 or 16 (without its CRC)",
                        element=f"{where}/InstallCode")
    return UpdateHanDeviceLog(header, header.target, device, add=True, install_code=code,
                              join_time_period=int(period_text))


_BUILDERS: dict[str, Callable[[RequestHeader, etree._Element, str], ServiceRequest]] = {
    "UpdateFirmware": _update_firmware,
    "UpdatePPMIDFirmware": _update_ppmid_firmware,
    "ReadFirmwareVersion": _read_firmware_version,
    "ActivateFirmware": _activate_firmware,
    "SignedPreCommand": _signed_precommand,
    "UpdateHANDeviceLog": _update_han_device_log,
}


def parse_request(data: bytes, *, max_size: int = DEFAULT_MAX_DOCUMENT) -> ServiceRequest:
    """Parse one DUIS request document into a Service Request record.

    Raises :class:`DuisError` naming the element at fault for anything malformed, hostile,
    oversized, or outside SR 11.1-11.4.
    """
    return parse_request_root(parse_document(data, max_size=max_size))


def parse_request_root(root: etree._Element) -> ServiceRequest:
    """:func:`parse_request` on an already parsed document (the signature check shares it)."""
    context = _Context()
    version = root.get("schemaVersion")
    if version is not None and _DECIMAL.fullmatch(version.strip()):
        context.schema_version = version.strip()
    try:
        return _parse_root(root, context)
    except DuisError as error:
        error.request_id = context.request_id
        error.variant = context.variant
        error.schema_version = context.schema_version
        raise


def _shown_tag(element: etree._Element) -> str:
    qname = etree.QName(element)
    name = qname.localname if len(qname.localname) <= 40 else qname.localname[:40] + "..."
    return f"{name!r}" + (" (in another namespace)" if qname.namespace != SR_NS else "")


def _parse_root(root: etree._Element, context: _Context) -> ServiceRequest:
    if root.tag != sr("Request"):
        qname = etree.QName(root)
        if qname.localname == "Request":
            raise DuisError(
                f"root element is in namespace {(qname.namespace or '(none)')[:80]!r}; expected {SR_NS!r}",
                element="Request",
            )
        raise DuisError(f"root element is {_shown_tag(root)}; expected sr:Request")
    if context.schema_version is None:
        raise DuisError("schemaVersion attribute missing or not a decimal (e.g. 5.4)", element="Request")
    signature_seen = False
    for child in root:
        if not isinstance(child.tag, str):
            continue
        if child.tag == f"{{{DS_NS}}}Signature":
            signature_seen = True
        elif child.tag not in (sr("Header"), sr("Body")):
            raise DuisError(f"unexpected element {_shown_tag(child)}", element="Request")
    header = _parse_header(root, context)
    bodies = root.findall(sr("Body"))
    if len(bodies) != 1:
        raise DuisError("missing" if not bodies else "appears more than once", element="Body")
    items = _children(bodies[0], "Body")
    if len(items) != 1:
        raise DuisError(f"holds {len(items)} elements; expected exactly one", element="Body")
    item = items[0]
    expected = VARIANTS[header.service_reference_variant].body
    if header.service_reference_variant == ServiceReferenceVariant.ACTIVATE_FIRMWARE.value and header.command_variant != 4:
        expected = "SignedPreCommand"
    if _local(item) != expected:
        raise DuisError(
            f"{_shown_tag(item)} does not match ServiceReferenceVariant "
            f"{header.service_reference_variant} (expected {expected})",
            element="Body",
        )
    request = _BUILDERS[expected](header, item, f"Body/{expected}")
    _LOGGER.debug(
        "parsed DUIS %s %s (signature %s)",
        header.service_reference_variant,
        header.request_id,
        "present" if signature_seen else "absent",
    )
    return request
