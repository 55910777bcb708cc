"""The five real vendor files: same header and elements as zigpy's parser, deviations named."""

from __future__ import annotations

from pathlib import Path

import pytest
from ota_image_builders import VECTOR_FILES, VECTORS
from zigpy.ota.image import TelinkEncryptedSubElement, parse_ota_image

from emulator.ota.image import inspect_dict, load_image, parse_image

pytestmark = pytest.mark.skipif(len(VECTOR_FILES) != 5, reason="vendor vectors not present")


def _vector(prefix: str) -> Path:
    (path,) = [p for p in VECTOR_FILES if p.name.startswith(prefix)]
    return path


@pytest.mark.parametrize("path", VECTOR_FILES, ids=lambda p: p.name.split("-")[0][:12])
def test_header_matches_zigpy_field_by_field(path: Path) -> None:
    theirs, _ = parse_ota_image(path.read_bytes())
    expected = theirs.header
    report = inspect_dict(load_image(path))  # what `image inspect --json` prints
    assert report["header_version"] == expected.header_version
    assert report["header_length"] == expected.header_length
    assert report["field_control"] == int(expected.field_control)
    assert report["manufacturer_code"] == expected.manufacturer_id
    assert report["image_type"] == expected.image_type
    assert report["file_version"] == expected.file_version
    assert report["stack_version"] == expected.stack_version
    assert report["header_string"] == bytes(expected.header_string).rstrip(b"\x00").decode()
    assert report["total_image_size"] == expected.image_size
    assert report["security_credential_version"] == expected.security_credential_version
    assert report["upgrade_file_destination"] == (
        None if expected.upgrade_file_destination is None
        else int.from_bytes(expected.upgrade_file_destination.serialize(), "little")
    )
    assert report["min_hardware_version"] == expected.minimum_hardware_version
    assert report["max_hardware_version"] == expected.maximum_hardware_version


@pytest.mark.parametrize("path", VECTOR_FILES, ids=lambda p: p.name.split("-")[0][:12])
def test_elements_match_zigpy(path: Path) -> None:
    theirs, _ = parse_ota_image(path.read_bytes())
    ours = load_image(path)
    assert ours.layout == "standard"
    assert [e.tag for e in ours.elements] == [int(s.tag_id) for s in theirs.subelements]
    for mine, their in zip(ours.elements, theirs.subelements):
        if isinstance(their, TelinkEncryptedSubElement):
            # zigpy splits the 2 uncounted bytes off as tag info; we keep them in the element data
            assert ours.element_data(mine) == their.tag_info.serialize() + their.data
        else:
            assert ours.element_data(mine) == their.data


@pytest.mark.parametrize("path", VECTOR_FILES, ids=lambda p: p.name.split("-")[0][:12])
def test_served_bytes_are_the_ota_file_alone(path: Path) -> None:
    raw = path.read_bytes()
    image = load_image(path)
    assert image.data[:4] == bytes.fromhex("1ef1ee0b")
    assert len(image.data) == image.header.total_image_size
    assert raw[image.identifier_offset : image.identifier_offset + len(image.data)] == image.data


def test_clean_vendor_files_have_no_warnings() -> None:
    for prefix in ("integrity-code", "manuf-tags", "zbminir2"):
        assert load_image(_vector(prefix)).warnings == ()


def test_ikea_container_prefix_and_padding_are_reported() -> None:
    path = _vector("padded")
    raw = path.read_bytes()
    image = load_image(path)
    assert image.identifier_offset == 616  # README: header starts at byte 616
    end = 616 + image.header.total_image_size
    assert len(raw) - end == 512  # README: 512 bytes follow the image
    assert [(w.code, w.offset) for w in image.warnings] == [("vendor-prefix", 0), ("trailing-data", end)]
    assert "616 bytes" in image.warnings[0].message
    assert "512 bytes" in image.warnings[1].message


def test_telink_length_quirk_is_reported_with_its_offset() -> None:
    image = load_image(_vector("telink"))
    codes = {w.code: w for w in image.warnings}
    assert codes["telink-length-quirk"].offset == image.header.header_length
    (element,) = image.elements
    assert element.tag == 0xF000
    declared = int.from_bytes(image.data[element.offset + 2 : element.offset + 6], "little")
    assert element.length == declared + 2
    assert element.offset + 6 + element.length == image.header.total_image_size
    assert "no-upgrade-image" in codes


def test_integrity_code_is_checked() -> None:
    path = _vector("integrity-code")
    raw = bytearray(path.read_bytes())
    image = parse_image(bytes(raw))
    assert [e.tag for e in image.elements] == [0x0000, 0x0003]
    raw[1000] ^= 0x01  # one flipped bit in the upgrade image
    damaged = parse_image(bytes(raw), source="damaged.zigbee")
    (warning,) = damaged.warnings
    assert warning.code == "integrity-code-mismatch"
    assert warning.offset == image.elements[1].offset
    assert "integrity-code-mismatch at offset" in str(warning)


def test_vectors_readme_is_not_an_ota_file() -> None:
    from emulator.ota.image import ImageError

    with pytest.raises(ImageError, match="file_identifier"):
        load_image(VECTORS / "README.md")
