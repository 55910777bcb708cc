"""Images the device checks serve, derived from the one under test.

Hardware-boundary images (B2) are the vendor's image with another hardware range in the header;
where the layout is signed (GBCS meter images) the Manufacturer Image is re-signed with the
project's TEST ONLY key, so only the header differs in meaning. A corrupted image (B11) has one
byte of its payload flipped and is *not* re-signed: a device must find out.
"""

from __future__ import annotations

import struct

from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey

from emulator.ota.image import format as fmt
from emulator.ota.image.build import build_image
from emulator.ota.image.model import OtaImage
from emulator.ota.image.parse import parse_image

_INTEGRITY_TAGS = (0xF000,)  # Image Integrity Code sub-element (AES-MMO)


def with_hardware_range(data: bytes, minimum: int, maximum: int, key: EllipticCurvePrivateKey | None) -> bytes:
    """``data`` bounded to hardware ``minimum..maximum`` (re-signed with ``key`` when signed)."""
    image = parse_image(data, source="image under test")
    header = image.header
    if image.layout in ("gbcs", "gbcs-ppmid") and image.manufacturer_image is not None:
        return build_image(
            image.manufacturer_image, manufacturer_code=header.manufacturer_code, image_type=header.image_type,
            file_version=header.file_version, stack_version=header.stack_version, header_string=header.header_string,
            min_hardware_version=minimum, max_hardware_version=maximum, layout=image.layout,
            signing_key=key if image.layout == "gbcs" else None,
        )
    if header.field_control & fmt.FC_HARDWARE_VERSIONS:
        # A standard file that has the fields: patch them where they are (the last four header bytes).
        out = bytearray(image.data)
        at = image.identifier_offset + header.header_length - 4
        struct.pack_into("<HH", out, at, minimum, maximum)
        return bytes(out)
    payload = b"".join(image.element_data(e) for e in image.elements if e.tag == 0x0000) or image.data[
        image.identifier_offset + header.header_length:]
    return build_image(payload, manufacturer_code=header.manufacturer_code, image_type=header.image_type,
                       file_version=header.file_version, stack_version=header.stack_version,
                       header_string=header.header_string, min_hardware_version=minimum,
                       max_hardware_version=maximum, layout="standard")


def corruption_detectable(image: OtaImage) -> bool:
    """Whether a flipped payload byte can be found: a signature (GBCS meter layout) or an
    integrity code covers it."""
    return image.layout == "gbcs" or any(e.tag in _INTEGRITY_TAGS for e in image.elements)


def corrupted(data: bytes) -> tuple[bytes, int]:
    """``data`` with one payload byte flipped (not re-signed), and the offset of that byte."""
    image = parse_image(data, source="image under test")
    start = image.identifier_offset + image.header.header_length
    end = len(image.data)
    if image.layout == "gbcs":
        end -= fmt.GBCS_TRAILER_LENGTH if hasattr(fmt, "GBCS_TRAILER_LENGTH") else 66
    offset = start + (end - start) // 2
    out = bytearray(image.data)
    out[offset] ^= 0x01
    return bytes(out), offset
