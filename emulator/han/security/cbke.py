"""The cryptography of Certificate-Based Key Establishment (SE 1.x Annex C), both suites.

One party's long-term material is a :class:`CbkeIdentity` (certificate, static private key, the
CA's public key). Per exchange each side makes an :class:`EphemeralKey`; once it holds the
partner's certificate and ephemeral key it calls :func:`derive`, which does:

1. ECQV: the partner's static public key from its certificate and the CA key.
2. ECMQV with the cofactor (SEC 1 3.4): s = (k + avf(R) d) mod n,
   P = h s (R' + avf(R') Q'), shared secret Z = x(P).
3. KDF (ANSI X9.63 with AES-MMO): MacKey = H(Z || 00000001), KeyData = H(Z || 00000002);
   KeyData becomes the APS link key.
4. SMACs: MACU = HMAC(MacKey, 02 || ID_U || ID_V || QE_U || QE_V),
   MACV = HMAC(MacKey, 03 || ID_V || ID_U || QE_V || QE_U); U is the initiator, V the
   responder, IDs the EUI-64s (8 octets, big-endian), QE the compressed ephemeral keys.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from .aes_mmo import aes_mmo, hmac_aes_mmo
from .certificates import CertificateError, CryptoSuite, ImplicitCertificate
from .curves import KoblitzCurve


class KeyAgreementError(ValueError):
    """ECMQV produced the point at infinity: one of the partner's keys is bad."""


@dataclass(frozen=True, slots=True)
class CbkeIdentity:
    """What a device or the hub has preinstalled for CBKE (TEST keys in this emulator)."""

    certificate: ImplicitCertificate
    private_key: int
    ca_public_key: tuple[int, int]

    @property
    def suite(self) -> CryptoSuite:
        return self.certificate.suite

    @property
    def eui64(self) -> int:
        return self.certificate.subject

    @property
    def issuer(self) -> bytes:
        return self.certificate.issuer

    def public_key(self) -> tuple[int, int]:
        return self.certificate.public_key(self.ca_public_key)

    def check(self) -> None:
        """The private key must belong to the certificate (d G == e P_U + Q_CA)."""
        if self.suite.curve.public_key(self.private_key) != self.public_key():
            raise CertificateError(
                f"the private key does not belong to the certificate of {self.eui64:016X}", "private_key")


@dataclass(frozen=True, slots=True)
class EphemeralKey:
    private: int
    public: tuple[int, int]
    encoded: bytes  # compressed, as sent in Ephemeral Data Request/Response

    @classmethod
    def generate(cls, curve: KoblitzCurve, private: int | None = None) -> "EphemeralKey":
        if private is None:
            private = 1 + secrets.randbelow(curve.order - 1)
        public = curve.public_key(private)
        return cls(private, public, curve.compress(public))


@dataclass(frozen=True, slots=True)
class KeyConfirmation:
    """What one side of a CBKE exchange derives."""

    shared_secret: bytes  # Z
    mac_key: bytes
    link_key: bytes  # KeyData
    macu: bytes  # initiator's SMAC (sent in Confirm Key Data Request)
    macv: bytes  # responder's SMAC (sent in Confirm Key Data Response)


def associate_value(curve: KoblitzCurve, point: tuple[int, int]) -> int:
    """avf(Q) = (x mod 2^ceil(f/2)) + 2^ceil(f/2), f = bit length of n (SEC 1 3.4)."""
    half = (curve.order.bit_length() + 1) // 2
    return (point[0] & ((1 << half) - 1)) | (1 << half)


def ecmqv(curve: KoblitzCurve, static_private: int, ephemeral: EphemeralKey,
          partner_static: tuple[int, int], partner_ephemeral: tuple[int, int]) -> bytes:
    """The shared secret Z = x(h s (R' + avf(R') Q')), as a field element's octets."""
    s = (ephemeral.private + associate_value(curve, ephemeral.public) * static_private) % curve.order
    combined = curve.add(partner_ephemeral, curve.mul(associate_value(curve, partner_ephemeral), partner_static))
    point = curve.mul(curve.cofactor * s, combined)
    if point is None:
        raise KeyAgreementError("ECMQV gave the point at infinity")
    return curve.field.to_bytes(point[0])


def kdf(shared_secret: bytes) -> tuple[bytes, bytes]:
    """(MacKey, KeyData) from Z: two AES-MMO blocks with a 32-bit counter from 1."""
    return (aes_mmo(shared_secret + (1).to_bytes(4, "big")),
            aes_mmo(shared_secret + (2).to_bytes(4, "big")))


def smacs(mac_key: bytes, initiator: int, responder: int, initiator_ephemeral: bytes,
          responder_ephemeral: bytes) -> tuple[bytes, bytes]:
    """(MACU, MACV) of the key confirmation step."""
    id_u, id_v = initiator.to_bytes(8, "big"), responder.to_bytes(8, "big")
    macu = hmac_aes_mmo(mac_key, b"\x02" + id_u + id_v + initiator_ephemeral + responder_ephemeral)
    macv = hmac_aes_mmo(mac_key, b"\x03" + id_v + id_u + responder_ephemeral + initiator_ephemeral)
    return macu, macv


def derive(identity: CbkeIdentity, ephemeral: EphemeralKey, partner_certificate: ImplicitCertificate,
           partner_ephemeral: bytes, *, am_initiator: bool) -> KeyConfirmation:
    """Everything one side computes once both certificates and ephemeral keys are known
    (what EZSP calculateSmacs283k1 returns on a Silicon Labs NCP).

    Raises :class:`CertificateError` for a partner certificate that cannot be used,
    :class:`~emulator.han.security.curves.InvalidPoint` for a bad ephemeral key and
    :class:`KeyAgreementError` if the agreement degenerates.
    """
    curve = identity.suite.curve
    if partner_certificate.suite is not identity.suite:
        raise CertificateError("the partner's certificate is of another crypto suite", "suite")
    partner_static = partner_certificate.public_key(identity.ca_public_key)
    partner_point = curve.decompress(partner_ephemeral)
    z = ecmqv(curve, identity.private_key, ephemeral, partner_static, partner_point)
    mac_key, link_key = kdf(z)
    if am_initiator:
        ids = (identity.eui64, partner_certificate.subject, ephemeral.encoded, partner_ephemeral)
    else:
        ids = (partner_certificate.subject, identity.eui64, partner_ephemeral, ephemeral.encoded)
    macu, macv = smacs(mac_key, *ids)
    return KeyConfirmation(z, mac_key, link_key, macu, macv)
