"""A device refuses an image whose integrity code does not match its contents."""

from __future__ import annotations

from pathlib import Path

from emulator.devices.verification import make_verifier
from emulator.ota.image import parse_image

# shared/ lies beside the repository (a CI clone gets a copy there); /work/shared otherwise.
_BESIDE = Path(__file__).resolve().parents[2].parent / "shared" / "vectors" / "ota"
VECTORS = _BESIDE if _BESIDE.is_dir() else Path("/work/shared/vectors/ota")
NAME = "integrity-code-1166-012B-24031511-upgradeMe-RB_249_T.zigbee"


def _vector() -> bytes:
    return (VECTORS / NAME).read_bytes()


def test_intact_vendor_image_with_integrity_code_is_accepted():
    data = _vector()
    image = parse_image(data)
    verify = make_verifier(image.header.manufacturer_code, image.header.image_type)
    assert verify(image.data) is None


def test_one_flipped_byte_is_caught_by_the_integrity_code():
    image = parse_image(_vector())
    data = bytearray(image.data)
    data[200] ^= 0x01  # inside the upgrade image element
    verify = make_verifier(image.header.manufacturer_code, image.header.image_type)
    reason = verify(bytes(data))
    assert reason is not None and "integrity-code-mismatch" in reason
