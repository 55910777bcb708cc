"""ECDSA on sect283k1 against an independent signer: OpenSSL, with the TEST ONLY private key of
Certicom's public suite-2 test certificate (shared/vectors/cbke)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emulator.han.security import ecdsa
from emulator.han.security.curves import SECT163K1, SECT283K1, InvalidPoint

_BESIDE = Path(__file__).resolve().parents[3].parent / "shared" / "vectors" / "cbke"
VECTORS = _BESIDE if _BESIDE.is_dir() else Path("/work/shared/vectors/cbke")
VECTOR = json.loads((VECTORS / "certicom-test-certificates.json").read_text())["suite2_sect283k1"]
PUBLIC_KEY = SECT283K1.decompress(bytes.fromhex(VECTOR["public_key"]))
PRIVATE_KEY = int(VECTOR["private_key"], 16)

# `openssl pkeyutl -sign` (OpenSSL 3.0, curve sect283k1) with the vector's private key over this
# 16-byte digest; DER decoded to r ‖ s.
OPENSSL_DIGEST = bytes.fromhex("00112233445566778899aabbccddeeff")
OPENSSL_SIGNATURE = (
    int("018E840676A4605419EB1B693FED5AB12790D4309859A227C06E59F2D618731B0A2A7555", 16).to_bytes(36, "big")
    + int("98D2C3887436A60944B0F3B178D47F9B02F3FC3F509B2CAF92C11BBA695F74FE450132", 16).to_bytes(36, "big")
)


def test_an_openssl_signature_verifies_and_a_changed_digest_or_signature_does_not() -> None:
    assert ecdsa.verify_digest(SECT283K1, OPENSSL_DIGEST, OPENSSL_SIGNATURE, PUBLIC_KEY)
    assert not ecdsa.verify_digest(SECT283K1, bytes(16), OPENSSL_SIGNATURE, PUBLIC_KEY)
    flipped = OPENSSL_SIGNATURE[:-1] + bytes([OPENSSL_SIGNATURE[-1] ^ 1])
    assert not ecdsa.verify_digest(SECT283K1, OPENSSL_DIGEST, flipped, PUBLIC_KEY)
    assert not ecdsa.verify_digest(SECT283K1, OPENSSL_DIGEST, OPENSSL_SIGNATURE[:-1], PUBLIC_KEY)


@pytest.mark.parametrize("curve", [SECT163K1, SECT283K1], ids=lambda c: c.name)
def test_our_signature_verifies_only_under_its_own_key(curve) -> None:
    private = 0xC0FFEE % curve.order
    signature = ecdsa.sign_digest(curve, OPENSSL_DIGEST, private, nonce=0x1234567)
    assert len(signature) == ecdsa.signature_length(curve)
    assert ecdsa.verify_digest(curve, OPENSSL_DIGEST, signature, curve.public_key(private))
    assert not ecdsa.verify_digest(curve, OPENSSL_DIGEST, signature, curve.public_key(private + 1))


def test_a_nonce_outside_the_group_is_refused() -> None:
    with pytest.raises(ValueError, match="nonce"):
        ecdsa.sign_digest(SECT283K1, OPENSSL_DIGEST, PRIVATE_KEY, nonce=0)


@pytest.mark.parametrize("data", [b"\x04" + bytes(36), b"\x02" + bytes(35), b"\x02" + b"\xff" * 36])
def test_bad_points_are_refused(data: bytes) -> None:
    with pytest.raises(InvalidPoint):
        SECT283K1.decompress(data)
