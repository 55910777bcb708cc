"""sect283k1 ECQV and ECDSA against independent results: Certicom's public TESTSECA certificate
(shared/vectors/cbke) and a signature made by OpenSSL with that certificate's TEST ONLY key."""

from __future__ import annotations

import json

import pytest
from certify_paths import shared_dir

from emulator.certify import sect283k1 as curve

VECTOR = json.loads((shared_dir() / "vectors" / "cbke" / "certicom-test-certificates.json")
                    .read_text())["suite2_sect283k1"]
PUBLIC_KEY = bytes.fromhex(VECTOR["public_key"])

# `openssl pkeyutl -sign` (OpenSSL 3.0, curve sect283k1) with the vector's private key over this
# 16-byte digest; DER decoded to r ‖ s.
OPENSSL_DIGEST = bytes.fromhex("00112233445566778899aabbccddeeff")
OPENSSL_SIGNATURE = (
    int("018E840676A4605419EB1B693FED5AB12790D4309859A227C06E59F2D618731B0A2A7555", 16).to_bytes(36, "big")
    + int("98D2C3887436A60944B0F3B178D47F9B02F3FC3F509B2CAF92C11BBA695F74FE450132", 16).to_bytes(36, "big")
)


def test_ecqv_reconstruction_gives_the_certificates_public_key() -> None:
    certificate = curve.ImplicitCertificate(bytes.fromhex(VECTOR["certificate"]))
    reconstructed = certificate.public_key(bytes.fromhex(VECTOR["ca_public_key"]))
    assert curve.compress(reconstructed) == PUBLIC_KEY
    assert certificate.subject.hex() == "0022080000000001"


def test_private_key_times_generator_is_the_public_key() -> None:
    assert curve.multiply(int(VECTOR["private_key"], 16), curve.G) == curve.decompress(PUBLIC_KEY)
    assert curve.multiply(curve.N, curve.G) is None  # G has order n


def test_an_openssl_signature_verifies_and_a_changed_digest_does_not() -> None:
    public_key = curve.decompress(PUBLIC_KEY)
    assert curve.verify_digest(OPENSSL_DIGEST, OPENSSL_SIGNATURE, public_key)
    assert not curve.verify_digest(bytes(16), OPENSSL_SIGNATURE, public_key)
    flipped = OPENSSL_SIGNATURE[:-1] + bytes([OPENSSL_SIGNATURE[-1] ^ 1])
    assert not curve.verify_digest(OPENSSL_DIGEST, flipped, public_key)


def test_our_signature_verifies() -> None:
    signature = curve.sign_digest(OPENSSL_DIGEST, int(VECTOR["private_key"], 16), nonce=0xC0FFEE1234567)
    assert curve.verify_digest(OPENSSL_DIGEST, signature, curve.decompress(PUBLIC_KEY))


@pytest.mark.parametrize("data", [b"\x04" + bytes(36), b"\x02" + bytes(35), b"\x02" + b"\xff" * 36])
def test_bad_points_are_refused(data: bytes) -> None:
    with pytest.raises(ValueError):
        curve.decompress(data)
