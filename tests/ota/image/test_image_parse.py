"""Parsing hand-built and mutated OTA files: every error names offset and field, every deviation
is a named warning at the right offset."""

from __future__ import annotations

import hashlib
import struct

import pytest
from ota_image_builders import element, ota_file

from emulator.ota.image import ImageError, parse_image


def codes(image) -> list[str]:
    return [w.code for w in image.warnings]


def warning(image, code: str):
    (found,) = [w for w in image.warnings if w.code == code]
    return found


# --- clean files -------------------------------------------------------------------------------


def test_standard_file_parses_without_warnings(standard_file: bytes) -> None:
    image = parse_image(standard_file)
    assert image.layout == "standard"
    assert image.warnings == ()
    assert image.header.manufacturer_code == 0x1234
    assert image.header.image_type == 0x0042
    assert image.header.file_version == 0x01020304
    assert image.header.header_string == "test"
    assert [(e.tag, e.offset, e.length) for e in image.elements] == [
        (0x0000, 56, 200),
        (0xF001, 56 + 6 + 200, 6),
    ]
    assert image.element_data(image.elements[0]) == bytes(range(200))
    assert image.manufacturer_image is None and image.manufacturer_image_sha256 is None


def test_optional_header_fields_are_read() -> None:
    optional = struct.pack("<BQHH", 0x02, 0x00DB123456789001, 0x0101, 0x0205)
    data = ota_file(element(0, b"x" * 10), field_control=0x0007, optional=optional)
    header = parse_image(data).header
    assert header.header_length == 56 + 13
    assert header.security_credential_version == 0x02
    assert header.upgrade_file_destination == 0x00DB123456789001
    assert (header.min_hardware_version, header.max_hardware_version) == (0x0101, 0x0205)
    assert header.accepts_hardware_version(0x0101) and header.accepts_hardware_version(0x0205)
    assert not header.accepts_hardware_version(0x0100)
    assert not header.accepts_hardware_version(0x0206)


# --- errors ------------------------------------------------------------------------------------


def test_empty_input_is_an_error() -> None:
    with pytest.raises(ImageError, match="empty"):
        parse_image(b"", source="empty.ota")


def test_missing_identifier_is_an_error_naming_the_field() -> None:
    with pytest.raises(ImageError) as caught:
        parse_image(b"\x7fELF" + bytes(300), source="firmware.elf")
    assert caught.value.field == "file_identifier"
    assert str(caught.value).startswith("firmware.elf: offset 0 (file_identifier)")
    assert "7f 45 4c 46" in str(caught.value)


@pytest.mark.parametrize(
    ("cut", "field", "offset"),
    [(4, "header_version", 4), (9, "field_control", 8), (30, "header_string", 20), (55, "total_image_size", 52)],
)
def test_truncated_header_names_the_cut_field(standard_file: bytes, cut: int, field: str, offset: int) -> None:
    with pytest.raises(ImageError) as caught:
        parse_image(standard_file[:cut], source="cut.ota")
    assert (caught.value.field, caught.value.offset) == (field, offset)
    assert "truncated" in str(caught.value)


def test_truncated_header_offsets_count_from_the_input_start(standard_file: bytes) -> None:
    with pytest.raises(ImageError) as caught:
        parse_image(b"PREFIX" + standard_file[:30])
    assert (caught.value.field, caught.value.offset) == ("header_string", 6 + 20)


def test_header_length_below_the_mandatory_fields_is_an_error() -> None:
    with pytest.raises(ImageError) as caught:
        parse_image(ota_file(element(0, b"abc"), header_length=40, total=62))
    assert (caught.value.field, caught.value.offset) == ("header_length", 6)


def test_field_control_claiming_fields_the_header_lacks_is_an_error() -> None:
    # bit 2 says hardware versions follow, but the header length leaves no room for them
    data = ota_file(element(0, b"abcdefgh"), field_control=0x0004, header_length=56)
    with pytest.raises(ImageError) as caught:
        parse_image(data)
    assert (caught.value.field, caught.value.offset) == ("min_hardware_version", 56)
    assert "field control 0x0004" in str(caught.value)


def test_optional_field_cut_by_end_of_file_is_an_error() -> None:
    data = ota_file(b"", field_control=0x0004, optional=b"\x01\x00\x02\x00")[:58]
    with pytest.raises(ImageError) as caught:
        parse_image(data)
    assert (caught.value.field, caught.value.offset) == ("max_hardware_version", 58)


def test_total_size_beyond_the_data_is_an_error(standard_file: bytes) -> None:
    with pytest.raises(ImageError) as caught:
        parse_image(standard_file[:-10], source="short.ota")
    assert (caught.value.field, caught.value.offset) == ("total_image_size", 52)
    assert f"{len(standard_file)} bytes announced" in str(caught.value)
    assert f"only {len(standard_file) - 10} bytes follow" in str(caught.value)


def test_total_size_below_header_length_is_an_error() -> None:
    with pytest.raises(ImageError) as caught:
        parse_image(ota_file(b"", total=20))
    assert caught.value.field == "total_image_size"


def test_identifier_in_a_prefix_with_broken_header_reports_that_header() -> None:
    data = b"junk" + bytes.fromhex("1ef1ee0b") + b"\x00" * 10
    with pytest.raises(ImageError) as caught:
        parse_image(data)
    assert caught.value.offset > 4 and "truncated" in str(caught.value)


def test_forced_gbcs_without_trailer_is_an_error(standard_file: bytes) -> None:
    with pytest.raises(ImageError) as caught:
        parse_image(standard_file, layout="gbcs")
    assert caught.value.field == "signature_length"
    assert caught.value.offset == len(standard_file) - 66


def test_unknown_forced_layout_is_rejected(standard_file: bytes) -> None:
    with pytest.raises(ValueError, match="unknown layout 'gbcs2'"):
        parse_image(standard_file, layout="gbcs2")


# --- warnings ----------------------------------------------------------------------------------


def test_vendor_prefix(standard_file: bytes) -> None:
    image = parse_image(b"\x00" * 33 + standard_file)
    assert image.identifier_offset == 33
    assert image.data == standard_file
    assert (warning(image, "vendor-prefix").offset) == 0
    assert image.elements[0].offset == 56  # element offsets count from the OTA file


@pytest.mark.parametrize(("fill", "kind"), [(b"\x00", "0x00"), (b"\xff", "0xFF"), (b"\x12", "not padding")])
def test_trailing_data(standard_file: bytes, fill: bytes, kind: str) -> None:
    image = parse_image(standard_file + fill * 40)
    found = warning(image, "trailing-data")
    assert found.offset == len(standard_file)
    assert "40 bytes" in found.message and kind in found.message
    assert image.data == standard_file


def test_telink_quirk_before_another_element() -> None:
    telink = struct.pack("<HIH", 0xF000, 20, 0x0C01) + bytes(range(20))
    data = ota_file(telink + element(0x0000, b"fw" * 8))
    image = parse_image(data)
    assert image.layout == "standard"
    assert warning(image, "telink-length-quirk").offset == 56
    assert [(e.tag, e.length) for e in image.elements] == [(0xF000, 22), (0x0000, 16)]


def test_header_length_longer_than_its_fields_skips_unknown_bytes() -> None:
    data = ota_file(element(0, b"payload!"), header_length=64)
    image = parse_image(data)
    assert warning(image, "header-length-mismatch").offset == 6
    assert image.elements[0].offset == 64
    assert image.element_data(image.elements[0]) == b"payload!"


def test_element_overrun_is_truncated_and_reported() -> None:
    body = element(0x0000, b"a" * 30) + element(0x0001, b"b" * 10, length=500)
    image = parse_image(ota_file(body))
    found = warning(image, "element-overrun")
    assert found.offset == 56 + 36
    assert "500" in found.message
    assert image.elements[1].length == 10


def test_leftover_bytes_too_short_for_an_element() -> None:
    image = parse_image(ota_file(element(0x0000, b"a" * 30) + b"\x01\x02\x03"))
    assert warning(image, "element-overrun").offset == 56 + 36
    assert len(image.elements) == 1


def test_reserved_tag() -> None:
    image = parse_image(ota_file(element(0x0000, b"a" * 8) + element(0x0100, b"r" * 4)))
    assert warning(image, "reserved-tag").offset == 56 + 14


def test_header_version_and_reserved_field_control_bits() -> None:
    image = parse_image(ota_file(element(0, b"a" * 8), header_version=0x0200, field_control=0x0008))
    assert warning(image, "header-version").offset == 4
    assert warning(image, "field-control-reserved").offset == 8


def test_header_string_oddities() -> None:
    padded = parse_image(ota_file(element(0, b"a" * 8), header_string=b"name\x00junk"))
    assert padded.header.header_string == "name"
    assert warning(padded, "header-string-padding").offset == 20
    latin = parse_image(ota_file(element(0, b"a" * 8), header_string=b"caf\xe9"))
    assert latin.header.header_string == "café"
    assert warning(latin, "header-string-encoding").offset == 20


def test_inverted_hardware_range() -> None:
    data = ota_file(element(0, b"a" * 8), field_control=0x0004, optional=struct.pack("<HH", 0x0300, 0x0200))
    image = parse_image(data)
    assert warning(image, "hardware-range-inverted").offset == 56
    assert not image.header.accepts_hardware_version(0x0250)


def test_missing_upgrade_image_element() -> None:
    image = parse_image(ota_file(element(0xF001, b"vendor only")))
    assert warning(image, "no-upgrade-image").offset == 56


def test_integrity_code_of_wrong_length() -> None:
    image = parse_image(ota_file(element(0, b"a" * 8) + element(0x0003, b"short")))
    assert warning(image, "integrity-code-length").offset == 56 + 14


# --- GBCS layouts ------------------------------------------------------------------------------

HW_RANGE = struct.pack("<HH", 0x1111, 0x1211)


def gbcs_file(manufacturer_image: bytes, signature: bytes = b"\x5a" * 64) -> bytes:
    return ota_file(manufacturer_image + b"\x00\x40" + signature, field_control=0x0004, optional=HW_RANGE)


def test_gbcs_meter_layout_is_detected() -> None:
    manufacturer_image = bytes(range(256)) * 4
    image = parse_image(gbcs_file(manufacturer_image))
    assert image.layout == "gbcs"
    assert image.elements == ()
    assert image.manufacturer_image == manufacturer_image
    assert image.signature == b"\x5a" * 64
    assert image.manufacturer_image_sha256 == hashlib.sha256(manufacturer_image).digest()
    assert image.warnings == ()


def test_gbcs_zero_filled_image_is_still_gbcs() -> None:
    image = parse_image(gbcs_file(bytes(4096), signature=bytes(64)))
    assert image.layout == "gbcs"
    assert warning(image, "unsigned").offset == 60 + 4096 + 2


def test_gbcs_ppmid_layout_is_detected() -> None:
    manufacturer_image = b"\xff" * 2048  # tag 0xFFFF with a length far beyond the body
    image = parse_image(ota_file(manufacturer_image, field_control=0x0004, optional=HW_RANGE))
    assert image.layout == "gbcs-ppmid"
    assert image.manufacturer_image == manufacturer_image
    assert image.signature is None


def test_gbcs_without_hardware_range_is_reported() -> None:
    image = parse_image(ota_file(b"\x01" * 100 + b"\x00\x40" + b"\x22" * 64))
    assert image.layout == "gbcs"
    assert warning(image, "no-hardware-range").offset == 8


def test_forcing_standard_on_a_gbcs_body_reports_overruns() -> None:
    image = parse_image(gbcs_file(b"\x01" * 100), layout="standard")
    assert image.layout == "standard"
    assert "element-overrun" in codes(image)


def test_forcing_ppmid_keeps_a_trailer_as_part_of_the_manufacturer_image() -> None:
    data = gbcs_file(b"\x01" * 100)
    image = parse_image(data, layout="gbcs-ppmid")
    assert image.manufacturer_image == data[60:]


def test_empty_manufacturer_image() -> None:
    image = parse_image(gbcs_file(b""))
    assert image.layout == "gbcs"
    assert warning(image, "empty-manufacturer-image").offset == 60


def test_warning_text_format(standard_file: bytes) -> None:
    image = parse_image(standard_file + b"\x00\x00")
    assert str(image.warnings[0]) == f"trailing-data at offset {len(standard_file)}: {image.warnings[0].message}"


def test_first_element_overrunning_the_image_is_reported_not_taken_as_ppmid() -> None:
    # A standard file whose only element claims 5000 bytes but 200 remain (damaged or truncated):
    # it used to be read as a gbcs-ppmid image with no sub-elements and no warning.
    data = ota_file(element(0x0000, bytes(range(200)), length=5000))
    image = parse_image(data)
    assert image.layout == "standard"
    found = warning(image, "element-overrun")
    assert found.offset == 56
    assert "5000" in found.message and "200" in found.message
    assert image.elements[0].length == 200


def test_manufacturer_tag_overrun_at_the_start_is_still_a_ppmid_image() -> None:
    # One random Manufacturer Image in 16 starts with a manufacturer-range tag: no evidence.
    image = parse_image(ota_file(b"\x34\xf2" + b"\x01" * 300, field_control=0x0004, optional=HW_RANGE))
    assert image.layout == "gbcs-ppmid"
