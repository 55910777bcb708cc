"""The emulator's own ECQV certificate authority. TEST ONLY.

It issues implicit certificates for emulated devices and the hub so that CBKE runs end to end
without Certicom's production CA. Its keys are test keys: the default CA's private key is derived
from a published seed, so every copy of the emulator trusts the same CA out of the box and
anybody can issue certificates it accepts. Never use it for anything but tests.

Issuance (SEC 4 ECQV, both halves done here): the device's request key k_U, R_U = k_U G; the CA's
k, P_U = R_U + k G goes into the certificate; e = AES-MMO(certificate); r = e k + d_CA (mod n);
the device's private key d_U = e k_U + r (mod n), so that d_U G = e P_U + Q_CA.

Files are JSON with a ``"TEST_ONLY"`` marker: a CA key (``kind: cbke-test-ca``) and an identity
(``kind: cbke-identity``: certificate, private key, CA public key) that a device or the hub loads
with :func:`load_identity`.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .aes_mmo import aes_mmo
from .cbke import CbkeIdentity
from .certificates import (
    KEY_USAGE_DIGITAL_SIGNATURE,
    KEY_USAGE_KEY_AGREEMENT,
    VALID_TO_NEVER,
    CertificateError,
    CryptoSuite,
    ImplicitCertificate,
    reconstruct_private_key,
)
from .curves import InvalidPoint

TEST_ONLY = "TEST ONLY: emulator test key, publicly known, never for production devices"
DEFAULT_ISSUER = b"CHEMTEST"
DEFAULT_CA_SEED = "ch-emulator CBKE test CA (TEST ONLY) suite {suite}"
CA_KIND = "cbke-test-ca"
IDENTITY_KIND = "cbke-identity"
# The profile attribute data of suite-1 certificates: SE profile id and version, as in Certicom's.
_SUITE1_PROFILE_ATTRIBUTE_DATA = bytes.fromhex("01090000000000000000")


class KeyFileError(ValueError):
    """A CA key or identity file that cannot be used; the message names file and field."""


@dataclass(frozen=True, slots=True)
class TestCertificateAuthority:
    """One ECQV CA for one crypto suite. TEST ONLY."""

    __test__ = False  # not a pytest class, whatever its name

    suite: CryptoSuite
    private_key: int
    issuer: bytes = DEFAULT_ISSUER

    @classmethod
    def generate(cls, suite: CryptoSuite, issuer: bytes = DEFAULT_ISSUER) -> "TestCertificateAuthority":
        return cls(suite, 1 + secrets.randbelow(suite.curve.order - 1), issuer)

    @classmethod
    def default(cls, suite: CryptoSuite) -> "TestCertificateAuthority":
        """The emulator's well-known test CA: its private key comes from a published seed."""
        seed = DEFAULT_CA_SEED.format(suite=suite.number).encode()
        material = aes_mmo(seed + b"\x01") + aes_mmo(seed + b"\x02") + aes_mmo(seed + b"\x03")
        private = int.from_bytes(material, "big") % (suite.curve.order - 1) + 1
        return cls(suite, private)

    def __post_init__(self) -> None:
        if len(self.issuer) != 8:
            raise ValueError(f"a CA issuer is 8 octets, got {len(self.issuer)}")
        if not 0 < self.private_key < self.suite.curve.order:
            raise ValueError("the CA private key is outside 1..n-1")

    @property
    def public_key(self) -> tuple[int, int]:
        return self.suite.curve.public_key(self.private_key)

    def issue(self, eui64: int, *, serial: int | None = None, valid_from: int = 0,
              valid_to: int = VALID_TO_NEVER,
              key_usage: int = KEY_USAGE_KEY_AGREEMENT | KEY_USAGE_DIGITAL_SIGNATURE) -> CbkeIdentity:
        """A certificate and private key for ``eui64``, checked before they are returned."""
        if not 0 <= eui64 <= 0xFFFF_FFFF_FFFF_FFFF:
            raise ValueError(f"EUI-64 {eui64:X} does not fit 64 bits")
        curve = self.suite.curve
        n = curve.order
        while True:
            request_key = 1 + secrets.randbelow(n - 1)
            ca_nonce = 1 + secrets.randbelow(n - 1)
            reconstruction = curve.add(curve.public_key(request_key), curve.public_key(ca_nonce))
            if reconstruction is not None:
                break
        fields: dict[str, Any] = dict(
            suite=self.suite,
            public_reconstruction_key=curve.compress(reconstruction),
            subject=eui64,
            issuer=self.issuer,
        )
        if self.suite is CryptoSuite.SUITE_1:
            fields["profile_attribute_data"] = _SUITE1_PROFILE_ATTRIBUTE_DATA
        else:
            fields.update(serial=secrets.randbits(64) if serial is None else serial,
                          valid_from=valid_from, valid_to=valid_to, key_usage=key_usage)
        cert = ImplicitCertificate(**fields)
        r = (cert.hash_value() * ca_nonce + self.private_key) % n
        identity = CbkeIdentity(cert, reconstruct_private_key(cert, request_key, r), self.public_key)
        identity.check()
        return identity

    # -- files ------------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        curve = self.suite.curve
        return {
            "TEST_ONLY": TEST_ONLY,
            "kind": CA_KIND,
            "suite": self.suite.number,
            "issuer": self.issuer.hex().upper(),
            "private_key": self.private_key.to_bytes(curve.scalar_length, "big").hex().upper(),
            "public_key": curve.compress(self.public_key).hex().upper(),
        }

    @classmethod
    def load(cls, path: Path) -> "TestCertificateAuthority":
        data = _read_json(path, CA_KIND)
        suite = _suite(path, data)
        issuer = _hex(path, data, "issuer", 8)
        private = int.from_bytes(_hex(path, data, "private_key", suite.curve.scalar_length), "big")
        try:
            ca = cls(suite, private, issuer)
        except ValueError as exc:
            raise KeyFileError(f"{path}: private_key: {exc}") from None
        if "public_key" in data and _hex(path, data, "public_key", suite.curve.point_length) != \
                suite.curve.compress(ca.public_key):
            raise KeyFileError(f"{path}: public_key does not belong to private_key")
        return ca


def identity_to_json(identity: CbkeIdentity) -> dict[str, Any]:
    curve = identity.suite.curve
    return {
        "TEST_ONLY": TEST_ONLY,
        "kind": IDENTITY_KIND,
        "suite": identity.suite.number,
        "eui64": f"{identity.eui64:016X}",
        "certificate": identity.certificate.encode().hex().upper(),
        "private_key": identity.private_key.to_bytes(curve.scalar_length, "big").hex().upper(),
        "public_key": curve.compress(identity.public_key()).hex().upper(),
        "ca_public_key": curve.compress(identity.ca_public_key).hex().upper(),
    }


def load_identity(path: Path) -> CbkeIdentity:
    """A device's or the hub's CBKE identity from a file written by ``ch-emulator cbke issue``."""
    data = _read_json(path, IDENTITY_KIND)
    suite = _suite(path, data)
    curve = suite.curve
    try:
        cert = ImplicitCertificate.decode(_hex(path, data, "certificate", suite.certificate_length), suite)
        ca_public = curve.decompress(_hex(path, data, "ca_public_key", curve.point_length))
    except (CertificateError, InvalidPoint) as exc:
        raise KeyFileError(f"{path}: {exc}") from None
    private = int.from_bytes(_hex(path, data, "private_key", curve.scalar_length), "big")
    identity = CbkeIdentity(cert, private, ca_public)
    try:
        identity.check()
    except CertificateError as exc:
        raise KeyFileError(f"{path}: {exc}") from None
    return identity


def _read_json(path: Path, kind: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise KeyFileError(f"cannot read {path}: {exc.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"{path} is not JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("kind") != kind:
        found = data.get("kind") if isinstance(data, dict) else type(data).__name__
        raise KeyFileError(f"{path}: kind is {found!r}, expected {kind!r}")
    return data


def _suite(path: Path, data: dict[str, Any]) -> CryptoSuite:
    try:
        return CryptoSuite.from_number(int(data.get("suite", 0)))
    except (TypeError, ValueError) as exc:
        raise KeyFileError(f"{path}: suite: {exc}") from None


def _hex(path: Path, data: dict[str, Any], name: str, length: int) -> bytes:
    value = data.get(name)
    try:
        raw = bytes.fromhex(value) if isinstance(value, str) else None
    except ValueError:
        raw = None
    if raw is None or len(raw) != length:
        raise KeyFileError(f"{path}: {name} must be {length} octets in hex, got {value!r}")
    return raw
