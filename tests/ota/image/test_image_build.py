"""Building and signing images, checked against zigpy's independent header and element decoder."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st
from zigpy.ota.image import OTAImage, OTAImageHeader

from emulator.ota.image import (
    build_image,
    generate_keypair,
    load_private_key,
    load_public_key,
    parse_image,
    save_private_key,
    save_public_key,
    verify_image,
)

COMMON = dict(manufacturer_code=0x121D, image_type=0x0084, file_version=0xACDCACDD)
HW = dict(min_hardware_version=0x1111, max_hardware_version=0x1211)


@pytest.fixture(scope="module")
def keypair():
    return generate_keypair()


def test_gbcs_header_decodes_the_same_in_zigpy(keypair) -> None:
    data = build_image(b"firmware" * 100, header_string="ESME fw", signing_key=keypair[0], **COMMON, **HW)
    header, rest = OTAImageHeader.deserialize(data)
    assert header.header_length == 60 and int(header.field_control) == 0x0004
    assert (header.manufacturer_id, header.image_type, header.file_version) == (0x121D, 0x0084, 0xACDCACDD)
    assert header.stack_version == 0x0002
    assert bytes(header.header_string).rstrip(b"\x00") == b"ESME fw"
    assert header.image_size == len(data)
    assert (header.minimum_hardware_version, header.maximum_hardware_version) == (0x1111, 0x1211)
    assert rest == b"firmware" * 100 + b"\x00\x40" + parse_image(data).signature


def test_standard_image_decodes_the_same_in_zigpy() -> None:
    payload = bytes(range(256)) * 3
    data = build_image(payload, layout="standard", **COMMON)
    theirs, rest = OTAImage.deserialize(data)
    assert rest == b""
    assert [(int(s.tag_id), s.data) for s in theirs.subelements] == [(0x0000, payload)]
    assert theirs.header.header_length == 56


def test_signature_verifies_only_with_the_right_key_and_bytes(keypair) -> None:
    private_key, public_key = keypair
    data = bytearray(build_image(b"\x10" * 5000, signing_key=private_key, **COMMON, **HW))
    image = parse_image(bytes(data))
    assert image.layout == "gbcs"
    assert verify_image(image, public_key)
    assert not verify_image(image, generate_keypair()[1])
    data[100] ^= 0x80  # tamper with the Manufacturer Image
    assert not verify_image(parse_image(bytes(data)), public_key)


def test_unsigned_and_unsignable_layouts_never_verify(keypair) -> None:
    unsigned = parse_image(build_image(b"\x10" * 500, **COMMON, **HW))
    assert unsigned.signature == bytes(64)
    assert not verify_image(unsigned, keypair[1])
    ppmid = parse_image(build_image(b"\x10" * 500, layout="gbcs-ppmid", **COMMON, **HW))
    assert ppmid.signature is None and not verify_image(ppmid, keypair[1])


def test_signing_is_deterministic(keypair) -> None:
    first = build_image(b"same" * 64, signing_key=keypair[0], **COMMON, **HW)
    assert build_image(b"same" * 64, signing_key=keypair[0], **COMMON, **HW) == first


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (dict(manufacturer_code=0x10000), "manufacturer_code"),
        (dict(image_type=-1), "image_type"),
        (dict(file_version=1 << 32), "file_version"),
        (dict(file_version="1"), "file_version"),
        (dict(header_string="x" * 33), "header_string"),
        (dict(header_string="é" * 17), "header_string"),
        (dict(min_hardware_version=1), "give both or neither"),
        (dict(min_hardware_version=3, max_hardware_version=2), "above"),
        (dict(layout="gbcs3"), "layout"),
    ],
)
def test_bad_arguments_name_the_parameter(change: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_image(b"x", **{**COMMON, **change})


def test_signing_key_only_for_the_signed_layout(keypair) -> None:
    with pytest.raises(ValueError, match="signing_key"):
        build_image(b"x", layout="gbcs-ppmid", signing_key=keypair[0], **COMMON)


def test_signing_key_must_be_p256() -> None:
    with pytest.raises(ValueError, match="P-256"):
        build_image(b"x", signing_key=ec.generate_private_key(ec.SECP384R1()), **COMMON)


def test_pem_round_trip_and_bad_files(tmp_path: Path, keypair) -> None:
    private_path, public_path = tmp_path / "k.pem", tmp_path / "p.pem"
    save_private_key(keypair[0], private_path)
    save_public_key(keypair[1], public_path)
    data = build_image(b"abc" * 50, signing_key=load_private_key(private_path), **COMMON, **HW)
    assert verify_image(parse_image(data), load_public_key(public_path))
    assert private_path.stat().st_mode & 0o077 == 0
    with pytest.raises(ValueError, match="p.pem: not an unencrypted PEM private key"):
        load_private_key(public_path)
    with pytest.raises(ValueError, match="k.pem: not a PEM public key"):
        load_public_key(private_path)


@settings(max_examples=60, deadline=None)
@given(
    payload=st.binary(max_size=600),
    manufacturer=st.integers(0, 0xFFFF),
    image_type=st.integers(0, 0xFFFF),
    version=st.integers(0, 0xFFFFFFFF),
    hw=st.one_of(st.none(), st.tuples(st.integers(0, 0x7FFF), st.integers(0x8000, 0xFFFF))),
    text=st.text(alphabet=st.characters(min_codepoint=1, max_codepoint=0x7F), max_size=32),
    layout=st.sampled_from(["standard", "gbcs", "gbcs-ppmid"]),
)
def test_build_then_parse_round_trips(payload, manufacturer, image_type, version, hw, text, layout) -> None:
    data = build_image(
        payload, manufacturer_code=manufacturer, image_type=image_type, file_version=version,
        header_string=text, min_hardware_version=hw and hw[0], max_hardware_version=hw and hw[1],
        layout=layout,
    )
    image = parse_image(data, layout=layout)
    assert image.data == data
    header = image.header
    assert (header.manufacturer_code, header.image_type, header.file_version) == (manufacturer, image_type, version)
    assert header.header_string == text
    assert (header.min_hardware_version, header.max_hardware_version) == (hw or (None, None))
    assert header.total_image_size == len(data)
    if layout == "standard":
        assert [image.element_data(e) for e in image.elements] == [payload]
    else:
        assert image.manufacturer_image == payload
        assert image.manufacturer_image_sha256 == hashlib.sha256(payload).digest()
