"""GBCS image signatures: ECDSA P-256 with SHA-256 over the Manufacturer Image.

GBCS carries the signature as 64 raw bytes ``r || s`` (32 bytes each, big-endian), not DER.
Signing is deterministic (RFC 6979) so that rebuilding a sample gives identical bytes.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from emulator.ota.image.model import OtaImage

SCALAR_LENGTH = 32


def _algorithm() -> ec.ECDSA:
    return ec.ECDSA(hashes.SHA256(), deterministic_signing=True)


def generate_keypair() -> tuple[ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey]:
    """A fresh P-256 key pair: for tests only, never a manufacturer's real signing key."""
    private_key = ec.generate_private_key(ec.SECP256R1())
    return private_key, private_key.public_key()


def sign_manufacturer_image(manufacturer_image: bytes, private_key: ec.EllipticCurvePrivateKey) -> bytes:
    """The 64-byte ``r || s`` signature GBCS appends after the Manufacturer Image."""
    _require_p256(private_key.curve, "signing key")
    r, s = decode_dss_signature(private_key.sign(manufacturer_image, _algorithm()))
    return r.to_bytes(SCALAR_LENGTH, "big") + s.to_bytes(SCALAR_LENGTH, "big")


def verify_signature(manufacturer_image: bytes, signature: bytes, public_key: ec.EllipticCurvePublicKey) -> bool:
    if len(signature) != 2 * SCALAR_LENGTH:
        return False
    r = int.from_bytes(signature[:SCALAR_LENGTH], "big")
    s = int.from_bytes(signature[SCALAR_LENGTH:], "big")
    if not (r and s):
        return False
    try:
        public_key.verify(encode_dss_signature(r, s), manufacturer_image, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def verify_image(image: OtaImage, public_key: ec.EllipticCurvePublicKey) -> bool:
    """Whether a GBCS meter image's signature over its Manufacturer Image is valid for the key.

    Images without a signature (standard and PPMID layouts) are never valid.
    """
    _require_p256(public_key.curve, "public key")
    if image.signature is None or image.manufacturer_image is None:
        return False
    return verify_signature(image.manufacturer_image, image.signature, public_key)


def _require_p256(curve: ec.EllipticCurve, what: str) -> None:
    if not isinstance(curve, ec.SECP256R1):
        raise ValueError(f"the {what} is on curve {curve.name}; GBCS uses P-256 (secp256r1)")


# PEM helpers -------------------------------------------------------------------------------


def private_key_pem(private_key: ec.EllipticCurvePrivateKey) -> bytes:
    return private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def public_key_pem(public_key: ec.EllipticCurvePublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def save_private_key(private_key: ec.EllipticCurvePrivateKey, path: str | os.PathLike[str]) -> None:
    """Write an unencrypted PKCS#8 PEM, readable by the owner only."""
    descriptor = os.open(os.fspath(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(private_key_pem(private_key))


def save_public_key(public_key: ec.EllipticCurvePublicKey, path: str | os.PathLike[str]) -> None:
    with open(os.fspath(path), "wb") as handle:
        handle.write(public_key_pem(public_key))


def load_private_key(path: str | os.PathLike[str]) -> ec.EllipticCurvePrivateKey:
    """Load an unencrypted PEM P-256 private key; ``ValueError`` names the file if it is not one."""
    source = os.fspath(path)
    with open(source, "rb") as handle:
        data = handle.read()
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{source}: not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{source}: not an elliptic-curve private key")
    _require_p256_in(source, key.curve)
    return key


def load_public_key(path: str | os.PathLike[str]) -> ec.EllipticCurvePublicKey:
    """Load a PEM P-256 public key; ``ValueError`` names the file if it is not one."""
    source = os.fspath(path)
    with open(source, "rb") as handle:
        data = handle.read()
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{source}: not a PEM public key ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError(f"{source}: not an elliptic-curve public key")
    _require_p256_in(source, key.curve)
    return key


def _require_p256_in(source: str, curve: ec.EllipticCurve) -> None:
    if not isinstance(curve, ec.SECP256R1):
        raise ValueError(f"{source}: key is on curve {curve.name}; GBCS uses P-256 (secp256r1)")
