"""The ZigBee OTA file format (ZCL 11.4) and the GBCS Upgrade Image trailer, as ``construct`` structs.

Only the wire layout lives here; what to do with a deviation is the parser's business.
All integers are little-endian except the GBCS signature length, which GBCS writes big-endian.
"""

from __future__ import annotations

import enum

from construct import Bytes, Const, Int8ul, Int16ub, Int16ul, Int32ul, Int64ul, Struct

FILE_IDENTIFIER = 0x0BEEF11E
FILE_IDENTIFIER_BYTES = FILE_IDENTIFIER.to_bytes(4, "little")
HEADER_VERSION = 0x0100
STACK_VERSION_ZIGBEE_PRO = 0x0002
HEADER_STRING_LENGTH = 32

# Field control bits (ZCL 11.4.2.4)
FC_SECURITY_CREDENTIAL_VERSION = 0x0001
FC_DEVICE_SPECIFIC_FILE = 0x0002
FC_HARDWARE_VERSIONS = 0x0004
FC_KNOWN_BITS = FC_SECURITY_CREDENTIAL_VERSION | FC_DEVICE_SPECIFIC_FILE | FC_HARDWARE_VERSIONS

# The mandatory header fields in wire order: (name, size). Offsets of each field follow from it,
# which lets the parser say exactly which field a truncated file cuts off.
FIXED_HEADER_FIELDS: tuple[tuple[str, int], ...] = (
    ("file_identifier", 4),
    ("header_version", 2),
    ("header_length", 2),
    ("field_control", 2),
    ("manufacturer_code", 2),
    ("image_type", 2),
    ("file_version", 4),
    ("stack_version", 2),
    ("header_string", HEADER_STRING_LENGTH),
    ("total_image_size", 4),
)
FIXED_HEADER_LENGTH = sum(size for _, size in FIXED_HEADER_FIELDS)  # 56

# Optional header fields: (name, size, field-control bit), in wire order.
OPTIONAL_HEADER_FIELDS: tuple[tuple[str, int, int], ...] = (
    ("security_credential_version", 1, FC_SECURITY_CREDENTIAL_VERSION),
    ("upgrade_file_destination", 8, FC_DEVICE_SPECIFIC_FILE),
    ("min_hardware_version", 2, FC_HARDWARE_VERSIONS),
    ("max_hardware_version", 2, FC_HARDWARE_VERSIONS),
)


def field_offset(name: str) -> int:
    """Offset of a mandatory header field from the start of the OTA file."""
    offset = 0
    for field, size in FIXED_HEADER_FIELDS:
        if field == name:
            return offset
        offset += size
    raise KeyError(name)


def header_length_for(field_control: int) -> int:
    """The header length the field control implies."""
    return FIXED_HEADER_LENGTH + sum(
        size for _, size, bit in OPTIONAL_HEADER_FIELDS if field_control & bit
    )


FixedHeader = Struct(
    "file_identifier" / Int32ul,
    "header_version" / Int16ul,
    "header_length" / Int16ul,
    "field_control" / Int16ul,
    "manufacturer_code" / Int16ul,
    "image_type" / Int16ul,
    "file_version" / Int32ul,
    "stack_version" / Int16ul,
    "header_string" / Bytes(HEADER_STRING_LENGTH),
    "total_image_size" / Int32ul,
)

OPTIONAL_FIELD_CODECS = {
    "security_credential_version": Int8ul,
    "upgrade_file_destination": Int64ul,  # IEEE address, little-endian on the wire
    "min_hardware_version": Int16ul,
    "max_hardware_version": Int16ul,
}


class ElementTag(enum.IntEnum):
    """Sub-element tags (ZCL 11.4.3); 0xF000-0xFFFF are manufacturer specific."""

    UPGRADE_IMAGE = 0x0000
    ECDSA_SIGNATURE_SUITE_1 = 0x0001
    ECDSA_SIGNING_CERTIFICATE_SUITE_1 = 0x0002
    IMAGE_INTEGRITY_CODE = 0x0003
    PICTURE_DATA = 0x0004
    ECDSA_SIGNATURE_SUITE_2 = 0x0005
    ECDSA_SIGNING_CERTIFICATE_SUITE_2 = 0x0006


MANUFACTURER_TAG_MIN = 0xF000
TELINK_TAG = 0xF000  # Telink SDK: a 2-byte "tag info" follows the length and is not counted in it

ElementHeader = Struct("tag" / Int16ul, "length" / Int32ul)
ELEMENT_HEADER_LENGTH = 6

# GBCS meter Upgrade Image: Manufacturer Image || signature length (0x0040, big-endian) || r || s
GBCS_SIGNATURE_LENGTH = 64
GbcsTrailer = Struct("signature_length" / Const(GBCS_SIGNATURE_LENGTH, Int16ub),
                     "signature" / Bytes(GBCS_SIGNATURE_LENGTH))
GBCS_TRAILER_LENGTH = 2 + GBCS_SIGNATURE_LENGTH
GBCS_TRAILER_MARK = GBCS_SIGNATURE_LENGTH.to_bytes(2, "big")

LAYOUTS = ("standard", "gbcs", "gbcs-ppmid")


def tag_name(tag: int) -> str:
    """A readable name for a sub-element tag."""
    try:
        return ElementTag(tag).name.lower().replace("_", "-")
    except ValueError:
        if tag >= MANUFACTURER_TAG_MIN:
            return "manufacturer-specific"
        return "reserved"
