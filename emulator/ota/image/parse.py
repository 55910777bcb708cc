"""Parse OTA files as vendors really ship them.

The parser finds the OTA file inside whatever wraps it, reads the header field by field, decides
the body layout and walks it. Every tolerated deviation becomes a named :class:`ImageWarning` with
its byte offset in the input; anything that leaves the file unusable is an :class:`ImageError`.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

from emulator.ota.image import format as fmt
from emulator.ota.image.errors import ImageError, ImageWarning
from emulator.ota.image.integrity import aes_mmo_hash
from emulator.ota.image.model import OtaHeader, OtaImage, SubElement

_LOGGER = logging.getLogger(__name__)

INTEGRITY_CODE_LENGTH = 16


@dataclass
class _Findings:
    """Warnings collected while parsing one input."""

    warnings: list[ImageWarning] = field(default_factory=list)

    def warn(self, code: str, offset: int, message: str) -> None:
        self.warnings.append(ImageWarning(code, offset, message))


def load_image(path: str | os.PathLike[str], *, layout: str | None = None) -> OtaImage:
    """Read and parse an OTA file; an unreadable file is an :class:`ImageError` too."""
    source = os.fspath(path)
    try:
        with open(source, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise ImageError(source, 0, "file", f"cannot read: {exc.strerror or exc}") from None
    return parse_image(data, source=source, layout=layout)


# The images parsed last in this process: a fleet parses the same image for every premises (its
# plan, the hub's catalogue, the device's verifier), and an OtaImage is immutable.
_PARSED: dict[tuple[bytes, str, str | None], OtaImage] = {}
_PARSED_MAX = 16


def parse_image(data: bytes, *, source: str = "<bytes>", layout: str | None = None) -> OtaImage:
    """Parse an OTA file, locating it inside a vendor container if need be.

    ``layout`` forces "standard", "gbcs" or "gbcs-ppmid"; ``None`` detects it (see docs/image.md).
    The same bytes parsed again (with the same ``source`` and ``layout``) give the same object.
    """
    key = (data, source, layout) if type(data) is bytes else None
    if key is not None:
        parsed = _PARSED.get(key)
        if parsed is not None:
            return parsed
    image = _parse_image(data, source=source, layout=layout)
    if key is not None:
        if len(_PARSED) >= _PARSED_MAX:
            del _PARSED[next(iter(_PARSED))]
        _PARSED[key] = image
    return image


def _parse_image(data: bytes, *, source: str, layout: str | None) -> OtaImage:
    if layout is not None and layout not in fmt.LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; expected one of {', '.join(fmt.LAYOUTS)}")
    data = bytes(data)
    if not data:
        raise ImageError(source, 0, "file_identifier", "the input is empty, not an OTA file")

    candidates = _identifier_candidates(data)
    if not candidates:
        raise ImageError(
            source, 0, "file_identifier",
            f"not an OTA file: the identifier 0x{fmt.FILE_IDENTIFIER:08X} (bytes 1E F1 EE 0B) "
            f"occurs nowhere in the {len(data)} bytes (they start with {data[:4].hex(' ')})",
        )
    if candidates[0] == 0:
        candidates = [0]  # a file that starts right is never second-guessed
    errors: list[ImageError] = []
    for start in candidates:
        try:
            return _parse_at(data, start, source, layout, _Findings())
        except ImageError as exc:
            _LOGGER.debug("%s: no usable OTA header at offset %d: %s", source, start, exc)
            errors.append(exc)
    raise errors[0]


def _identifier_candidates(data: bytes) -> list[int]:
    found: list[int] = []
    position = data.find(fmt.FILE_IDENTIFIER_BYTES)
    while position >= 0:
        found.append(position)
        position = data.find(fmt.FILE_IDENTIFIER_BYTES, position + 1)
    return found


def _parse_at(
    data: bytes, start: int, source: str, layout: str | None, findings: _Findings
) -> OtaImage:
    header = _parse_header(data, start, source, findings)
    end = start + header.total_image_size
    if start:
        container = " (IKEA 'NGIS' container)" if data.startswith(b"NGIS") else ""
        findings.warn(
            "vendor-prefix", 0,
            f"{start} bytes{container} precede the OTA file identifier; the OTA file starts at "
            f"offset {start}",
        )
    if len(data) > end:
        findings.warn("trailing-data", end, _describe_trailing(data[end:]))

    ota = data[start:end]
    body = ota[header.header_length :]
    chosen = layout or detect_layout(body)
    body_offset = start + header.header_length  # in the input
    elements: tuple[SubElement, ...] = ()
    manufacturer_image: bytes | None = None
    signature: bytes | None = None
    if chosen == "standard":
        elements = _walk_elements(ota, header.header_length, start, findings)
        _check_elements(ota, elements, start, findings)
    elif chosen == "gbcs":
        manufacturer_image, signature = _split_gbcs(body, body_offset, source)
        if not any(signature):
            findings.warn("unsigned", end - fmt.GBCS_SIGNATURE_LENGTH,
                          "the GBCS signature is all zeros (image built without a signing key)")
    else:
        manufacturer_image = body
    if chosen != "standard":
        _check_gbcs_header(header, start, findings)
        if not manufacturer_image:
            findings.warn("empty-manufacturer-image", body_offset, "the Manufacturer Image is empty")

    image = OtaImage(
        header=header,
        identifier_offset=start,
        data=ota,
        layout=chosen,
        elements=elements,
        manufacturer_image=manufacturer_image,
        signature=signature,
        warnings=tuple(sorted(findings.warnings, key=lambda w: w.offset)),  # file order
    )
    for warning in image.warnings:
        _LOGGER.info("%s: %s", source, warning)
    return image


def _parse_header(data: bytes, start: int, source: str, findings: _Findings) -> OtaHeader:
    available = len(data) - start
    offset = 0
    for name, size in fmt.FIXED_HEADER_FIELDS:
        if offset + size > available:
            raise ImageError(
                source, start + offset, name,
                f"truncated OTA header: the field needs {size} bytes but the input ends at "
                f"offset {len(data)}",
            )
        offset += size
    fixed = fmt.FixedHeader.parse(data[start : start + fmt.FIXED_HEADER_LENGTH])

    def at(name: str) -> int:
        return start + fmt.field_offset(name)

    if fixed.header_version != fmt.HEADER_VERSION:
        findings.warn("header-version", at("header_version"),
                      f"header version 0x{fixed.header_version:04X}, expected 0x0100")
    header_length = fixed.header_length
    if header_length < fmt.FIXED_HEADER_LENGTH:
        raise ImageError(source, at("header_length"), "header_length",
                         f"{header_length} is shorter than the {fmt.FIXED_HEADER_LENGTH}-byte "
                         "mandatory header")
    field_control = fixed.field_control
    if field_control & ~fmt.FC_KNOWN_BITS:
        findings.warn("field-control-reserved", at("field_control"),
                      f"field control 0x{field_control:04X} sets reserved bits "
                      f"0x{field_control & ~fmt.FC_KNOWN_BITS:04X}")

    optional: dict[str, int | None] = {name: None for name, _, _ in fmt.OPTIONAL_HEADER_FIELDS}
    offsets: dict[str, int] = {}
    position = fmt.FIXED_HEADER_LENGTH
    for name, size, bit in fmt.OPTIONAL_HEADER_FIELDS:
        if not field_control & bit:
            continue
        if position + size > header_length:
            raise ImageError(
                source, start + position, name,
                f"field control 0x{field_control:04X} says this field is present but the header "
                f"length {header_length} ends before it",
            )
        if position + size > available:
            raise ImageError(
                source, start + position, name,
                f"truncated OTA header: the field needs {size} bytes but the input ends at "
                f"offset {len(data)}",
            )
        offsets[name] = start + position
        optional[name] = fmt.OPTIONAL_FIELD_CODECS[name].parse(
            data[start + position : start + position + size]
        )
        position += size
    if header_length > position:
        findings.warn(
            "header-length-mismatch", at("header_length"),
            f"header length {header_length} but the fields field control 0x{field_control:04X} "
            f"announces take {position}; {header_length - position} unknown header bytes skipped",
        )

    total = fixed.total_image_size
    if total < header_length:
        raise ImageError(source, at("total_image_size"), "total_image_size",
                         f"{total} is smaller than the header length {header_length}")
    if total > available:
        raise ImageError(
            source, at("total_image_size"), "total_image_size",
            f"{total} bytes announced but only {available} bytes follow the identifier at offset "
            f"{start} (file truncated?)",
        )
    low, high = optional["min_hardware_version"], optional["max_hardware_version"]
    if low is not None and high is not None and low > high:
        findings.warn("hardware-range-inverted", offsets["min_hardware_version"],
                      f"minimum hardware version 0x{low:04X} is above maximum 0x{high:04X}; "
                      "no device can accept the image")

    return OtaHeader(
        header_version=fixed.header_version,
        header_length=header_length,
        field_control=field_control,
        manufacturer_code=fixed.manufacturer_code,
        image_type=fixed.image_type,
        file_version=fixed.file_version,
        stack_version=fixed.stack_version,
        header_string=_decode_header_string(fixed.header_string, at("header_string"), findings),
        total_image_size=total,
        security_credential_version=optional["security_credential_version"],
        upgrade_file_destination=optional["upgrade_file_destination"],
        min_hardware_version=low,
        max_hardware_version=high,
    )


def _decode_header_string(raw: bytes, offset: int, findings: _Findings) -> str:
    text, _, rest = raw.partition(b"\x00")
    if rest.strip(b"\x00"):
        findings.warn("header-string-padding", offset,
                      "header string has non-zero bytes after its terminating 0x00; ignored")
    try:
        return text.decode("utf-8")
    except UnicodeDecodeError:
        findings.warn("header-string-encoding", offset,
                      "header string is not UTF-8; shown decoded as Latin-1")
        return text.decode("latin-1")


def _describe_trailing(trailing: bytes) -> str:
    if not trailing.strip(b"\x00"):
        kind = "all 0x00 (padding)"
    elif not trailing.strip(b"\xff"):
        kind = "all 0xFF (padding)"
    else:
        kind = "not padding (a vendor signature or container data?)"
    return (f"{len(trailing)} bytes after the total image size, {kind}; not part of the OTA file "
            "and never served")


def _element_fits(body: bytes, position: int) -> bool:
    """Whether a complete sub-element (tag, length and data) starts at ``position``."""
    if position + fmt.ELEMENT_HEADER_LENGTH > len(body):
        return False
    length = int.from_bytes(body[position + 2 : position + 6], "little")
    return position + fmt.ELEMENT_HEADER_LENGTH + length <= len(body)


def _is_boundary(body: bytes, position: int) -> bool:
    return position == len(body) or _element_fits(body, position)


def _telink_quirk(body: bytes, position: int, tag: int, length: int) -> bool:
    """Telink's 0xF000 element carries 2 bytes of tag info its length field does not count."""
    after = position + fmt.ELEMENT_HEADER_LENGTH + length
    return tag == fmt.TELINK_TAG and not _is_boundary(body, after) and _is_boundary(body, after + 2)


def _plausible_element(body: bytes, position: int, tag: int, length: int) -> bool:
    """A sub-element a real file would contain: complete, non-empty, with a defined or
    manufacturer tag. Zero-filled or random bytes rarely pass, which is what detection needs."""
    return length > 0 and fmt.tag_name(tag) != "reserved" and _element_fits(body, position)


def _is_element_sequence(body: bytes) -> bool:
    """Whether the whole body is a clean run of plausible sub-elements (Telink quirk allowed)."""
    position = 0
    while position < len(body):
        if len(body) - position < fmt.ELEMENT_HEADER_LENGTH:
            return False
        tag = int.from_bytes(body[position : position + 2], "little")
        length = int.from_bytes(body[position + 2 : position + 6], "little")
        if _telink_quirk(body, position, tag, length):
            length += 2
        elif not _plausible_element(body, position, tag, length):
            return False
        position += fmt.ELEMENT_HEADER_LENGTH + length
    return True


def detect_layout(body: bytes) -> str:
    """The body layout the heuristic in docs/image.md picks for an OTA body."""
    if _is_element_sequence(body):
        return "standard"
    if len(body) >= fmt.GBCS_TRAILER_LENGTH and body[-fmt.GBCS_TRAILER_LENGTH :].startswith(
        fmt.GBCS_TRAILER_MARK
    ):
        return "gbcs"
    if len(body) >= fmt.ELEMENT_HEADER_LENGTH:
        tag = int.from_bytes(body[0:2], "little")
        length = int.from_bytes(body[2:6], "little")
        if _plausible_element(body, 0, tag, length):
            return "standard"  # starts as sub-elements, goes wrong later: report element by element
        if length > 0 and _defined_tag(tag):
            # A defined tag (0x0000-0x0006) whose length overruns the image: a damaged or truncated
            # standard file, reported as element-overrun. Random bytes start like this about once
            # in 9,000 images; manufacturer tags (one in 16) are not taken as evidence.
            return "standard"
    return "gbcs-ppmid"


def _defined_tag(tag: int) -> bool:
    return tag < fmt.MANUFACTURER_TAG_MIN and fmt.tag_name(tag) != "reserved"


def _walk_elements(
    ota: bytes, header_length: int, start: int, findings: _Findings
) -> tuple[SubElement, ...]:
    body = ota[header_length:]
    elements: list[SubElement] = []
    position = 0
    while position < len(body):
        where = start + header_length + position  # in the input
        remaining = len(body) - position
        if remaining < fmt.ELEMENT_HEADER_LENGTH:
            findings.warn("element-overrun", where,
                          f"{remaining} bytes left at the end of the image, too few for a "
                          "sub-element tag and length; ignored")
            break
        parsed = fmt.ElementHeader.parse(body[position : position + fmt.ELEMENT_HEADER_LENGTH])
        tag, length = parsed.tag, parsed.length
        room = remaining - fmt.ELEMENT_HEADER_LENGTH
        if _telink_quirk(body, position, tag, length):
            findings.warn("telink-length-quirk", where,
                          f"tag 0xF000 length field says {length} but the element occupies "
                          f"{length + 2} bytes (Telink tag info not counted)")
            length += 2
        elif length > room:
            findings.warn("element-overrun", where,
                          f"sub-element tag 0x{tag:04X} declares {length} bytes but only {room} "
                          "remain before the total image size; truncated to fit")
            length = room
        if fmt.tag_name(tag) == "reserved":
            findings.warn("reserved-tag", where, f"sub-element tag 0x{tag:04X} is reserved by ZCL")
        elements.append(SubElement(tag=tag, offset=header_length + position, length=length))
        position += fmt.ELEMENT_HEADER_LENGTH + length
    return tuple(elements)


def _check_elements(
    ota: bytes, elements: tuple[SubElement, ...], start: int, findings: _Findings
) -> None:
    if not any(element.tag == fmt.ElementTag.UPGRADE_IMAGE for element in elements):
        findings.warn("no-upgrade-image", start + (elements[0].offset if elements else len(ota)),
                      "no Upgrade Image sub-element (tag 0x0000); only a device that knows the "
                      "other elements can use this file")
    for element in elements:
        if element.tag != fmt.ElementTag.IMAGE_INTEGRITY_CODE:
            continue
        where = start + element.offset
        if element.length != INTEGRITY_CODE_LENGTH:
            findings.warn("integrity-code-length", where,
                          f"image integrity code is {element.length} bytes, expected 16; not checked")
            continue
        stored = ota[element.data_offset : element.data_offset + element.length]
        computed = aes_mmo_hash(ota[: element.offset])
        if stored != computed:
            findings.warn("integrity-code-mismatch", where,
                          f"image integrity code {stored.hex()} does not match the AES-MMO hash "
                          f"{computed.hex()} of the preceding {element.offset} bytes")


def _split_gbcs(body: bytes, body_offset: int, source: str) -> tuple[bytes, bytes]:
    trailer_at = len(body) - fmt.GBCS_TRAILER_LENGTH
    if trailer_at < 0:
        raise ImageError(source, body_offset, "signature_length",
                         f"GBCS layout needs a 66-byte signature trailer but the body is only "
                         f"{len(body)} bytes")
    mark = body[trailer_at : trailer_at + 2]
    if mark != fmt.GBCS_TRAILER_MARK:
        raise ImageError(source, body_offset + trailer_at, "signature_length",
                         f"GBCS layout needs 00 40 before the 64-byte signature, found {mark.hex(' ')}")
    trailer = fmt.GbcsTrailer.parse(body[trailer_at:])
    return body[:trailer_at], bytes(trailer.signature)


def _check_gbcs_header(header: OtaHeader, start: int, findings: _Findings) -> None:
    if header.min_hardware_version is None:
        findings.warn("no-hardware-range", start + fmt.field_offset("field_control"),
                      "GBCS images carry a hardware version range (field control bit 2); this "
                      "one does not, so every hardware version accepts it")
