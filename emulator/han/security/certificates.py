"""ECQV implicit certificates of ZigBee Smart Energy, both crypto suites.

Suite 1 (sect163k1, SE 1.0/1.1, 48 octets)::

    PublicReconstrKey(22) Subject(8) Issuer(8) ProfileAttributeData(10)

Suite 2 (sect283k1, SE 1.2+, the one GB SMETS2 uses, 74 octets)::

    Type(1)=00 Serial(8) Curve(1)=0D Hash(1)=08 Issuer(8) ValidFrom(5) ValidTo(4) Subject(8)
    KeyUsage(1) PublicReconstrKey(37)

ValidFrom is UNIX seconds (40 bits); ValidTo is seconds after ValidFrom, FFFFFFFF = never expires
(as Wireshark's dissector reads them). Subject is the device's EUI-64, big-endian.

ECQV (SEC 4) public key reconstruction: Q_U = e * P_U + Q_CA, with e the AES-MMO hash of the
whole certificate as an integer. Private key reconstruction: d_U = e * k_U + r (mod n).
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from .aes_mmo import aes_mmo
from .curves import SECT163K1, SECT283K1, InvalidPoint, KoblitzCurve


class CryptoSuite(enum.IntEnum):
    """KeyEstablishmentSuite bitmap values (Key Establishment cluster attribute 0x0000)."""

    SUITE_1 = 0x0001  # sect163k1, 48-octet certificates
    SUITE_2 = 0x0002  # sect283k1, 74-octet certificates

    @property
    def curve(self) -> KoblitzCurve:
        return SECT163K1 if self is CryptoSuite.SUITE_1 else SECT283K1

    @property
    def certificate_length(self) -> int:
        return 48 if self is CryptoSuite.SUITE_1 else 74

    @property
    def number(self) -> int:
        """1 or 2, as users name the suites."""
        return 1 if self is CryptoSuite.SUITE_1 else 2

    @classmethod
    def from_number(cls, number: int) -> "CryptoSuite":
        try:
            return {1: cls.SUITE_1, 2: cls.SUITE_2}[number]
        except KeyError:
            raise ValueError(f"crypto suite must be 1 or 2, got {number}") from None


SUITE2_TYPE_NO_EXTENSIONS = 0x00
SUITE2_CURVE_SECT283K1 = 0x0D
SUITE2_HASH_AES_MMO = 0x08
KEY_USAGE_KEY_AGREEMENT = 0x08
KEY_USAGE_DIGITAL_SIGNATURE = 0x80
VALID_TO_NEVER = 0xFFFFFFFF


class CertificateError(ValueError):
    """A certificate that cannot be used; ``field`` names the part that is wrong."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class ImplicitCertificate:
    """One ECQV implicit certificate, decoded. ``encode()`` gives back the exact octets."""

    suite: CryptoSuite
    public_reconstruction_key: bytes
    subject: int  # EUI-64
    issuer: bytes  # 8 octets
    profile_attribute_data: bytes = bytes(10)  # suite 1 only
    cert_type: int = SUITE2_TYPE_NO_EXTENSIONS  # suite 2 fields from here on
    serial: int = 0
    curve_id: int = SUITE2_CURVE_SECT283K1
    hash_id: int = SUITE2_HASH_AES_MMO
    valid_from: int = 0
    valid_to: int = VALID_TO_NEVER
    key_usage: int = KEY_USAGE_KEY_AGREEMENT | KEY_USAGE_DIGITAL_SIGNATURE

    # -- codec ----------------------------------------------------------------------------------
    @classmethod
    def decode(cls, data: bytes, suite: CryptoSuite | None = None) -> "ImplicitCertificate":
        """Decode 48 (suite 1) or 74 (suite 2) octets; ``suite`` None: tell by the length."""
        if suite is None:
            by_length = {s.certificate_length: s for s in CryptoSuite}
            if len(data) not in by_length:
                raise CertificateError(
                    f"a certificate is 48 (suite 1) or 74 (suite 2) octets, got {len(data)}", "length")
            suite = by_length[len(data)]
        if len(data) != suite.certificate_length:
            raise CertificateError(
                f"a suite {suite.number} certificate is {suite.certificate_length} octets, got {len(data)}",
                "length")
        if suite is CryptoSuite.SUITE_1:
            return cls(
                suite=suite,
                public_reconstruction_key=bytes(data[0:22]),
                subject=int.from_bytes(data[22:30], "big"),
                issuer=bytes(data[30:38]),
                profile_attribute_data=bytes(data[38:48]),
            )
        cert = cls(
            suite=suite,
            cert_type=data[0],
            serial=int.from_bytes(data[1:9], "big"),
            curve_id=data[9],
            hash_id=data[10],
            issuer=bytes(data[11:19]),
            valid_from=int.from_bytes(data[19:24], "big"),
            valid_to=int.from_bytes(data[24:28], "big"),
            subject=int.from_bytes(data[28:36], "big"),
            key_usage=data[36],
            public_reconstruction_key=bytes(data[37:74]),
        )
        cert._check_suite2_fields()
        return cert

    def _check_suite2_fields(self) -> None:
        if self.cert_type != SUITE2_TYPE_NO_EXTENSIONS:
            raise CertificateError(f"certificate type {self.cert_type:02X} (offset 0) is not 00 "
                                   "(no extensions)", "type")
        if self.curve_id != SUITE2_CURVE_SECT283K1:
            raise CertificateError(f"curve {self.curve_id:02X} (offset 9) is not 0D (sect283k1)", "curve")
        if self.hash_id != SUITE2_HASH_AES_MMO:
            raise CertificateError(f"hash {self.hash_id:02X} (offset 10) is not 08 (AES-MMO)", "hash")

    def encode(self) -> bytes:
        if self.suite is CryptoSuite.SUITE_1:
            return (self.public_reconstruction_key + self.subject.to_bytes(8, "big") + self.issuer
                    + self.profile_attribute_data)
        return (bytes([self.cert_type]) + self.serial.to_bytes(8, "big")
                + bytes([self.curve_id, self.hash_id]) + self.issuer
                + self.valid_from.to_bytes(5, "big") + self.valid_to.to_bytes(4, "big")
                + self.subject.to_bytes(8, "big") + bytes([self.key_usage])
                + self.public_reconstruction_key)

    # -- ECQV -----------------------------------------------------------------------------------
    @property
    def curve(self) -> KoblitzCurve:
        return self.suite.curve

    def hash_value(self) -> int:
        """e = AES-MMO(certificate) as an integer (SEC 4 Hn with a 128-bit hash)."""
        return int.from_bytes(aes_mmo(self.encode()), "big")

    def reconstruction_point(self) -> tuple[int, int]:
        try:
            return self.curve.decompress(self.public_reconstruction_key)
        except InvalidPoint as exc:
            raise CertificateError(f"public reconstruction key: {exc}", "public_reconstruction_key") from None

    def public_key(self, ca_public_key: tuple[int, int]) -> tuple[int, int]:
        """The subject's static public key Q_U = e * P_U + Q_CA."""
        curve = self.curve
        point = curve.add(curve.mul(self.hash_value(), self.reconstruction_point()), ca_public_key)
        if point is None:
            raise CertificateError("the reconstructed public key is the point at infinity",
                                   "public_reconstruction_key")
        return point

    def validity_problem(self, unix_time: float) -> str | None:
        """Why the certificate is not valid at ``unix_time`` (UNIX seconds), or None when it is.
        ValidFrom is the first valid second, ValidFrom + ValidTo the first invalid one; suite-1
        certificates carry no dates."""
        if self.suite is CryptoSuite.SUITE_1:
            return None
        if unix_time < self.valid_from:
            return f"certificate not valid before {_utc(self.valid_from)} (ValidFrom, offset 19); now {_utc(unix_time)}"
        expires = self.expires_at()
        if expires is not None and unix_time >= expires:
            return f"certificate expired at {_utc(expires)} (ValidFrom + ValidTo, offsets 19 and 24); now {_utc(unix_time)}"
        return None

    def expires_at(self) -> int | None:
        """UNIX time the certificate stops being valid; None for suite 1 or never."""
        if self.suite is CryptoSuite.SUITE_1 or self.valid_to == VALID_TO_NEVER:
            return None
        return self.valid_from + self.valid_to


def _utc(unix_time: float) -> str:
    try:
        return dt.datetime.fromtimestamp(int(unix_time), dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return f"UNIX {int(unix_time)}"


def reconstruct_private_key(cert: ImplicitCertificate, request_private_key: int,
                            reconstruction_data: int) -> int:
    """d_U = e * k_U + r (mod n): the device's side of ECQV issuance."""
    n = cert.curve.order
    return (cert.hash_value() * request_private_key + reconstruction_data) % n
