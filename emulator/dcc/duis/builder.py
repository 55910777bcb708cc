"""DUIS requests for SR 11.1-11.4 and 8.11 as a User writes them: schema-valid, optionally signed.

What the builder fills in for the User: the RequestID (``<user>:<target>:<counter>``, the target
being the DCC for 11.1/11.4 and the device for 11.2/11.3; the counter milliseconds since the Unix
epoch, as DCC Boxed's tooling makes it, so each new request is greater than the last), the
CommandVariant the emulator serves (8 for 11.1/11.4, 1 for 11.2, 4 for 11.3), the image in base64,
its FirmwareVersion (from the OTA header) and, for 11.3, the SHA-256 of its Manufacturer Image.
8.11 (CommandVariant 1) targets the Comms Hub and names the device to add (with its install code,
without the CRC, and JoinTimePeriod) or remove.
"""

from __future__ import annotations

import base64
import hashlib
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from lxml import etree

from .envelope import add_text, format_datetime, serialise
from .eui import format_eui64
from .names import NSMAP, sr
from .signing import DuisSigner

DCC_ID = 0x90B3D51F30000002
DEFAULT_USER = 0x90B3D51F30010000
COMMAND_VARIANTS = {"11.1": 8, "11.2": 1, "11.3": 4, "11.4": 8, "8.11": 1}
ENDPOINTS = {"11.1": "/api/v1/serviceD", "11.4": "/api/v1/serviceD", "11.2": "/api/v1/serviceS",
             "11.3": "/api/v1/serviceT", "8.11": "/api/v1/serviceS"}
BODIES = {"11.1": "UpdateFirmware", "11.2": "ReadFirmwareVersion", "11.3": "ActivateFirmware",
          "11.4": "UpdatePPMIDFirmware", "8.11": "UpdateHANDeviceLog"}
_INSTALL_CODE_LENGTHS = (6, 8, 12, 16)


class BuildError(ValueError):
    """What the User asked for cannot be a valid request; the message says which option."""


@dataclass(frozen=True, slots=True)
class RequestOptions:
    variant: str
    devices: tuple[int, ...]
    user: int = DEFAULT_USER
    counter: int | None = None
    image: bytes | None = None
    firmware_version: str | None = None
    firmware_hash: bytes | None = None
    execution: datetime | None = None
    schema_version: str = "5.4"
    comms_hub: int | None = None  # 8.11: the RequestID's target
    install_code: bytes | None = None  # 8.11 Add: with or without its CRC (a label's CRC is dropped)
    join_time_period: int | None = None  # 8.11 Add: seconds, 1-3600
    remove: bool = False  # 8.11: RequestType Remove


def duis_install_code(code: bytes) -> bytes:
    """DUIS ``InstallCode`` is 6-16 octets without the CRC: a code printed with its CRC (as on a
    device label) loses it; anything else of a wrong length is refused."""
    from emulator.han.security.aes_mmo import install_code_crc

    if len(code) - 2 in _INSTALL_CODE_LENGTHS and install_code_crc(code[:-2]).to_bytes(2, "little") == code[-2:]:
        return code[:-2]
    if len(code) not in _INSTALL_CODE_LENGTHS:
        raise BuildError(f"--install-code: {len(code)} octets; an install code has 6, 8, 12 or 16 "
                         "(or 2 more with a matching CRC)")
    return code


def image_facts(image: bytes) -> tuple[str, bytes]:
    """(FirmwareVersion as 8 hex digits, Manufacturer Image SHA-256) of an OTA file; a file that is
    not a GBCS image is hashed whole, as the emulated devices do."""
    from emulator.ota.image import ImageError, parse_image

    try:
        parsed = parse_image(image, source="--image")
    except ImageError as exc:
        raise BuildError(f"--image: {exc}") from None
    digest = parsed.manufacturer_image_sha256 or hashlib.sha256(image).digest()
    return f"{parsed.header.file_version:08X}", digest


def build_request(options: RequestOptions) -> etree._Element:
    variant = options.variant
    if variant not in COMMAND_VARIANTS:
        raise BuildError(f"service request {variant!r}: expected one of {', '.join(COMMAND_VARIANTS)}")
    if not options.devices:
        raise BuildError("--device: name at least one device")
    if variant in ("11.2", "11.3", "8.11") and len(options.devices) != 1:
        raise BuildError(f"--device: {variant} targets exactly one device, got {len(options.devices)}")
    if len(set(options.devices)) != len(options.devices):
        raise BuildError("--device: a device is named twice")
    if len(options.devices) > 50_000:
        raise BuildError("--device: DUIS allows at most 50,000 devices")
    counter = options.counter if options.counter is not None else time.time_ns() // 1_000_000
    if not 0 <= counter < 1 << 64:
        raise BuildError("--counter: must be an unsigned 64-bit number")
    target = DCC_ID if variant in ("11.1", "11.4") else options.devices[0]
    if variant == "8.11":
        if options.comms_hub is None:
            raise BuildError("--comms-hub: 8.11 is sent to the Comms Hub whose Device Log changes")
        target = options.comms_hub
    root = etree.Element(sr("Request"), nsmap=NSMAP)
    root.set("schemaVersion", options.schema_version)
    header = etree.SubElement(root, sr("Header"))
    add_text(header, sr("RequestID"), f"{format_eui64(options.user)}:{format_eui64(target)}:{counter}")
    add_text(header, sr("CommandVariant"), str(COMMAND_VARIANTS[variant]))
    add_text(header, sr("ServiceReference"), variant)
    add_text(header, sr("ServiceReferenceVariant"), variant)
    body = etree.SubElement(etree.SubElement(root, sr("Body")), sr(BODIES[variant]))
    if variant in ("11.1", "11.4"):
        if options.image is None:
            raise BuildError(f"--image: {variant} carries the firmware image")
        version = options.firmware_version or image_facts(options.image)[0]
        if not 1 <= len(version) <= 8:
            raise BuildError(f"--firmware-version: {version!r} is {len(version)} characters; DUIS allows 1-8")
        add_text(body, sr("FirmwareImage"), base64.b64encode(options.image).decode("ascii"))
        add_text(body, sr("FirmwareVersion"), version)
        add_text(body, sr("DeviceIDList"), ",".join(format_eui64(d) for d in options.devices))
    elif variant == "11.3":
        if options.execution is not None:
            add_text(body, sr("ExecutionDateTime"), format_datetime(options.execution))
        digest = options.firmware_hash
        if digest is None:
            if options.image is None:
                raise BuildError("--image or --hash: 11.3 carries the SHA-256 of the Manufacturer Image")
            digest = image_facts(options.image)[1]
        if len(digest) != 32:
            raise BuildError(f"--hash: {len(digest)} bytes; a SHA-256 hash is 32")
        add_text(body, sr("FirmwareHash"), digest.hex().upper())
    elif variant == "8.11":
        add_text(body, sr("DeviceID"), format_eui64(options.devices[0]))
        add_text(body, sr("RequestType"), "Remove" if options.remove else "Add")
        if not options.remove:
            if options.install_code is None or options.join_time_period is None:
                raise BuildError("--install-code and --join-time-period: an 8.11 Add carries both (or give --remove)")
            if not 1 <= options.join_time_period <= 3600:
                raise BuildError(f"--join-time-period: {options.join_time_period}; DUIS allows 1-3600 seconds")
            whitelist = etree.SubElement(body, sr("AddDeviceToCHFWhitelist"))
            add_text(whitelist, sr("JoinTimePeriod"), str(options.join_time_period))
            add_text(whitelist, sr("InstallCode"), duis_install_code(options.install_code).hex().upper())
    return root


def render_request(options: RequestOptions, signer: DuisSigner | None = None) -> bytes:
    root = build_request(options)
    return signer.sign_element(root) if signer is not None else serialise(root)


def parse_when(text: str) -> datetime:
    """``--execute-at``: ISO 8601; without a zone it is UTC. ``cancel`` = 3000-12-31 (DUIS' cancel date)."""
    if text == "cancel":
        return datetime(3000, 12, 31, tzinfo=timezone.utc)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise BuildError(f"--execute-at: {text!r} is not an ISO 8601 date and time (or 'cancel')") from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)
