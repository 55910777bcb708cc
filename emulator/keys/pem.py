"""Reading P-256 keys and certificates from PEM, with errors that name the file and the entry.

GBCS signs and agrees keys on P-256 only, and DUIS XML signatures use ECDSA P-256, so any other
key is refused here rather than failing later in a signature check.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z ]+)-----.+?-----END \1-----", re.DOTALL)


class KeyStoreError(ValueError):
    """A key file or key store that cannot be read, naming the file and the key."""


def p256_public(key: object, source: str) -> ec.EllipticCurvePublicKey:
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise KeyStoreError(f"{source}: not a P-256 (secp256r1) public key, as GBCS and DUIS require")
    return key


def p256_private(key: object, source: str) -> ec.EllipticCurvePrivateKey:
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise KeyStoreError(f"{source}: not a P-256 (secp256r1) private key, as GBCS and DUIS require")
    return key


def load_certificate(data: bytes | str, source: str) -> x509.Certificate:
    """One PEM certificate; :class:`KeyStoreError` names ``source`` when it does not parse."""
    try:
        return x509.load_pem_x509_certificate(data.encode() if isinstance(data, str) else data)
    except ValueError as exc:
        raise KeyStoreError(f"{source}: certificate does not parse: {exc}") from None


def load_public_key(data: bytes, source: str) -> tuple[ec.EllipticCurvePublicKey, x509.Certificate | None]:
    """A certificate or a bare SubjectPublicKeyInfo in PEM: its P-256 key and the certificate if any."""
    if b"BEGIN CERTIFICATE" in data:
        certificate = load_certificate(data, source)
        return p256_public(certificate.public_key(), source), certificate
    try:
        return p256_public(serialization.load_pem_public_key(data), source), None
    except ValueError as exc:
        raise KeyStoreError(f"{source}: neither a certificate nor a public key in PEM: {exc}") from None


def load_private_pem(data: bytes | str, source: str) -> ec.EllipticCurvePrivateKey:
    """An unencrypted PKCS#8 or SEC1 P-256 private key in PEM."""
    raw = data.encode() if isinstance(data, str) else data
    try:
        return p256_private(serialization.load_pem_private_key(raw, password=None), source)
    except (ValueError, TypeError) as exc:
        raise KeyStoreError(f"{source}: private key does not parse (an unencrypted PEM private key is "
                            f"needed): {exc}") from None


def same_key(a: ec.EllipticCurvePublicKey, b: ec.EllipticCurvePublicKey) -> bool:
    fmt = (serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return a.public_bytes(*fmt) == b.public_bytes(*fmt)


@dataclass(frozen=True)
class PublicPem:
    """One public key of a PEM file, numbered from 1 in file order."""

    number: int
    public_key: ec.EllipticCurvePublicKey
    certificate: x509.Certificate | None


def public_pems(data: bytes, source: str) -> list[PublicPem]:
    """Every certificate and public key in a PEM file, in order. A private key is refused: whoever
    only checks signatures must never be handed a signing key."""
    found: list[PublicPem] = []
    for number, match in enumerate(_PEM_BLOCK.finditer(data), start=1):
        kind, block = match.group(1).decode(), match.group(0)
        if "PRIVATE KEY" in kind:
            raise KeyStoreError(f"{source}: holds a private key; give the public key or the certificate "
                                "(never hand a signing key to a checker)")
        if kind not in ("CERTIFICATE", "PUBLIC KEY"):
            continue
        public, certificate = load_public_key(block, f"{source}: PEM block {number} ({kind})")
        found.append(PublicPem(number, public, certificate))
    if not found:
        raise KeyStoreError(f"{source}: no PEM certificate or public key found")
    return found


def certificate_owner(certificate: x509.Certificate) -> int | None:
    """The EUI-64 a GB smart metering certificate names (subject x500UniqueIdentifier)."""
    for attribute in certificate.subject.get_attributes_for_oid(NameOID.X500_UNIQUE_IDENTIFIER):
        raw = attribute.value if isinstance(attribute.value, bytes) else str(attribute.value).encode()
        if len(raw) >= 8:
            return int.from_bytes(raw[-8:], "big")
    return None
