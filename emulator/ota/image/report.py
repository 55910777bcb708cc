"""What ``image inspect`` shows: one JSON-ready dict, and the same facts as readable text."""

from __future__ import annotations

from typing import Any

from emulator.ota.image import format as fmt
from emulator.ota.image.model import OtaImage


def inspect_dict(image: OtaImage) -> dict[str, Any]:
    """The ``image inspect --json`` object: integers as numbers, absent fields as ``None``."""
    header = image.header
    digest = image.manufacturer_image_sha256
    return {
        "identifier_offset": image.identifier_offset,
        "header_version": header.header_version,
        "header_length": header.header_length,
        "field_control": header.field_control,
        "manufacturer_code": header.manufacturer_code,
        "image_type": header.image_type,
        "file_version": header.file_version,
        "stack_version": header.stack_version,
        "header_string": header.header_string,
        "total_image_size": header.total_image_size,
        "security_credential_version": header.security_credential_version,
        "upgrade_file_destination": header.upgrade_file_destination,
        "min_hardware_version": header.min_hardware_version,
        "max_hardware_version": header.max_hardware_version,
        "layout": image.layout,
        "elements": [
            {"tag": element.tag, "offset": element.offset, "length": element.length}
            for element in image.elements
        ],
        "manufacturer_image_length": (
            None if image.manufacturer_image is None else len(image.manufacturer_image)
        ),
        "manufacturer_image_sha256": None if digest is None else digest.hex(),
        "signature": None if image.signature is None else image.signature.hex(),
        "warnings": [str(warning) for warning in image.warnings],
    }


def _hex(value: int | None, width: int) -> str:
    return "absent" if value is None else f"0x{value:0{width}X}"


def format_text(image: OtaImage, source: str) -> str:
    """A human-readable summary, hex where engineers expect hex."""
    header = image.header
    rows = [
        ("file", source),
        ("identifier offset", str(image.identifier_offset)),
        ("layout", image.layout),
        ("header version", _hex(header.header_version, 4)),
        ("header length", str(header.header_length)),
        ("field control", _hex(header.field_control, 4)),
        ("manufacturer code", _hex(header.manufacturer_code, 4)),
        ("image type", _hex(header.image_type, 4)),
        ("file version", _hex(header.file_version, 8)),
        ("stack version", _hex(header.stack_version, 4)),
        ("header string", repr(header.header_string)),
        ("total image size", str(header.total_image_size)),
        ("security credential", _hex(header.security_credential_version, 2)),
        ("upgrade destination", _hex(header.upgrade_file_destination, 16)),
        ("min hardware version", _hex(header.min_hardware_version, 4)),
        ("max hardware version", _hex(header.max_hardware_version, 4)),
    ]
    if image.manufacturer_image is not None:
        digest = image.manufacturer_image_sha256
        assert digest is not None
        rows.append(("manufacturer image", f"{len(image.manufacturer_image)} bytes"))
        rows.append(("manufacturer image SHA-256", digest.hex()))
    if image.signature is not None:
        rows.append(("signature (r||s)", image.signature.hex()))
    width = max(len(label) for label, _ in rows)
    lines = [f"{label:<{width}}  {value}" for label, value in rows]
    if image.layout == "standard":
        lines.append(f"sub-elements ({len(image.elements)}):")
        for element in image.elements:
            lines.append(
                f"  tag 0x{element.tag:04X} {fmt.tag_name(element.tag):<36} "
                f"offset {element.offset:>8}  length {element.length:>8}"
            )
    if image.warnings:
        lines.append(f"warnings ({len(image.warnings)}):")
        lines.extend(f"  {warning}" for warning in image.warnings)
    else:
        lines.append("warnings: none")
    return "\n".join(lines)
