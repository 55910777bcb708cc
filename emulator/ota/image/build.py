"""Build OTA files: GBCS meter and PPMID layouts for the emulator's own images, standard for others."""

from __future__ import annotations

import logging

from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey

from emulator.ota.image import format as fmt
from emulator.ota.image.parse import detect_layout
from emulator.ota.image.signing import sign_manufacturer_image

_LOGGER = logging.getLogger(__name__)

U16 = 0xFFFF
U32 = 0xFFFFFFFF


def build_image(
    payload: bytes,
    *,
    manufacturer_code: int,
    image_type: int,
    file_version: int,
    stack_version: int = fmt.STACK_VERSION_ZIGBEE_PRO,
    header_string: str = "",
    min_hardware_version: int | None = None,
    max_hardware_version: int | None = None,
    layout: str = "gbcs",
    signing_key: EllipticCurvePrivateKey | None = None,
) -> bytes:
    """Wrap ``payload`` in an OTA file.

    ``payload`` is the Manufacturer Image for the GBCS layouts and the Upgrade Image element's data
    for "standard". A "gbcs" image without ``signing_key`` gets an all-zero signature (it will
    never verify). Bad arguments raise ``ValueError`` naming the parameter.
    """
    _check_range("manufacturer_code", manufacturer_code, U16)
    _check_range("image_type", image_type, U16)
    _check_range("file_version", file_version, U32)
    _check_range("stack_version", stack_version, U16)
    if layout not in fmt.LAYOUTS:
        raise ValueError(f"layout: {layout!r} is not one of {', '.join(fmt.LAYOUTS)}")
    if (min_hardware_version is None) != (max_hardware_version is None):
        raise ValueError("min_hardware_version and max_hardware_version: give both or neither")
    field_control = 0
    optional = b""
    if min_hardware_version is not None and max_hardware_version is not None:
        _check_range("min_hardware_version", min_hardware_version, U16)
        _check_range("max_hardware_version", max_hardware_version, U16)
        if min_hardware_version > max_hardware_version:
            raise ValueError(
                f"min_hardware_version 0x{min_hardware_version:04X} is above "
                f"max_hardware_version 0x{max_hardware_version:04X}"
            )
        field_control |= fmt.FC_HARDWARE_VERSIONS
        optional = min_hardware_version.to_bytes(2, "little") + max_hardware_version.to_bytes(2, "little")
    encoded_string = header_string.encode("utf-8")
    if len(encoded_string) > fmt.HEADER_STRING_LENGTH or b"\x00" in encoded_string:
        raise ValueError(
            f"header_string: {len(encoded_string)} bytes in UTF-8 without NUL allowed at most "
            f"{fmt.HEADER_STRING_LENGTH}"
        )
    if signing_key is not None and layout != "gbcs":
        raise ValueError(f"signing_key: layout {layout!r} carries no signature; only 'gbcs' does")

    payload = bytes(payload)
    body = _body(payload, layout, signing_key)
    header_length = fmt.FIXED_HEADER_LENGTH + len(optional)
    total = header_length + len(body)
    if total > U32:
        raise ValueError(f"payload: {len(payload)} bytes make an image larger than 4 GiB")
    header = fmt.FixedHeader.build(
        dict(
            file_identifier=fmt.FILE_IDENTIFIER,
            header_version=fmt.HEADER_VERSION,
            header_length=header_length,
            field_control=field_control,
            manufacturer_code=manufacturer_code,
            image_type=image_type,
            file_version=file_version,
            stack_version=stack_version,
            header_string=encoded_string.ljust(fmt.HEADER_STRING_LENGTH, b"\x00"),
            total_image_size=total,
        )
    )
    return header + optional + body


def _body(payload: bytes, layout: str, signing_key: EllipticCurvePrivateKey | None) -> bytes:
    if layout == "standard":
        return fmt.ElementHeader.build(dict(tag=fmt.ElementTag.UPGRADE_IMAGE, length=len(payload))) + payload
    if layout == "gbcs":
        if signing_key is None:
            _LOGGER.warning("building an unsigned GBCS image: its signature is all zeros")
            signature = bytes(fmt.GBCS_SIGNATURE_LENGTH)
        else:
            signature = sign_manufacturer_image(payload, signing_key)
        return payload + fmt.GbcsTrailer.build(dict(signature=signature))
    detected = detect_layout(payload)
    if detected != "gbcs-ppmid":
        _LOGGER.warning(
            "layout detection would read this PPMID image as %r: readers must force gbcs-ppmid",
            detected,
        )
    return payload


def _check_range(name: str, value: int, maximum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name}: expected an integer, got {value!r}")
    if not 0 <= value <= maximum:
        width = 4 if maximum == U16 else 8
        raise ValueError(f"{name}: {value} is outside 0..{maximum} (0x{maximum:0{width}X})")
