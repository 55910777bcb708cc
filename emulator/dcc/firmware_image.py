"""What the DSP needs to know about a firmware image in an SR: who it is for.

The DSP checks applicability (manufacturer, image type, hardware range) from the OTA header of the
``FirmwareImage``. The project's image parser (:func:`emulator.ota.image.parse_image`) is used when
it is installed; until then a minimal header reader stands in, behind this one function.
"""

from __future__ import annotations

import hashlib
import logging
import struct
from dataclasses import dataclass

_LOGGER = logging.getLogger(__name__)

OTA_FILE_IDENTIFIER = 0x0BEEF11E
_FIXED_HEADER = struct.Struct("<IHHHHHIH32sI")  # up to and including total image size: 56 bytes
_FC_SECURITY_CREDENTIAL = 0x0001
_FC_DESTINATION = 0x0002
_FC_HARDWARE_VERSIONS = 0x0004
_GBCS_SIGNATURE_TRAILER = b"\x00\x40"
_GBCS_SIGNATURE_LENGTH = 64


@dataclass(frozen=True, slots=True)
class ImageIdentity:
    manufacturer_code: int
    image_type: int
    file_version: int
    min_hardware_version: int | None
    max_hardware_version: int | None
    manufacturer_image_sha256: bytes | None


class FirmwareImageError(ValueError):
    """The image cannot be read; the message names the source, offset and field."""


def read_image_identity(data: bytes, *, source: str = "FirmwareImage") -> ImageIdentity:
    """Identify ``data`` (a whole OTA file); raises :class:`FirmwareImageError` if it cannot."""
    try:
        from emulator.ota.image import parse_image  # type: ignore[attr-defined]
    except ImportError:
        return _read_header(data, source)
    try:
        image = parse_image(data, source=source)
    except ValueError as exc:  # the parser's ImageError names offset and field already
        raise FirmwareImageError(str(exc)) from exc
    header = image.header
    return ImageIdentity(
        manufacturer_code=header.manufacturer_code,
        image_type=header.image_type,
        file_version=header.file_version,
        min_hardware_version=header.min_hardware_version,
        max_hardware_version=header.max_hardware_version,
        manufacturer_image_sha256=getattr(image, "manufacturer_image_sha256", None),
    )


def _read_header(data: bytes, source: str) -> ImageIdentity:
    """Minimal OTA header reader (no vendor prefixes, no sub-element walk)."""
    if len(data) < _FIXED_HEADER.size:
        raise FirmwareImageError(
            f"{source}: offset {len(data)} (header): image is {len(data)} bytes, "
            f"shorter than the {_FIXED_HEADER.size}-byte OTA header"
        )
    (ident, _hdr_version, hdr_length, field_control, mfr, image_type, file_version, _stack, _string,
     _total) = _FIXED_HEADER.unpack_from(data)
    if ident != OTA_FILE_IDENTIFIER:
        raise FirmwareImageError(
            f"{source}: offset 0 (file identifier): {ident:#010x} is not the OTA file identifier 0x0BEEF11E"
        )
    offset = _FIXED_HEADER.size
    if field_control & _FC_SECURITY_CREDENTIAL:
        offset += 1
    if field_control & _FC_DESTINATION:
        offset += 8
    min_hw = max_hw = None
    if field_control & _FC_HARDWARE_VERSIONS:
        if len(data) < offset + 4:
            raise FirmwareImageError(f"{source}: offset {offset} (hardware versions): image ends inside the header")
        min_hw, max_hw = struct.unpack_from("<HH", data, offset)
        offset += 4
    if hdr_length < offset or hdr_length > len(data):
        raise FirmwareImageError(
            f"{source}: offset 6 (header length): {hdr_length} does not fit fields of {offset} bytes "
            f"in an image of {len(data)} bytes"
        )
    body = data[hdr_length:]
    # GBCS images: Manufacturer Image || 0x00 0x40 || 64-byte signature (meters); PPMID: no trailer.
    trailer = _GBCS_SIGNATURE_LENGTH + len(_GBCS_SIGNATURE_TRAILER)
    if len(body) > trailer and body[-trailer:-_GBCS_SIGNATURE_LENGTH] == _GBCS_SIGNATURE_TRAILER:
        body = body[:-trailer]
    return ImageIdentity(mfr, image_type, file_version, min_hw, max_hw, hashlib.sha256(body).digest())
