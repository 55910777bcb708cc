"""Supplier keys that check A9 verifies GBCS image signatures with.

``--supplier-key`` takes a PEM public key or certificate (several certificates in one file are
tried in turn). The default is the ZAZ1 supplier digital-signature certificate (GITTESTSUPPLIER,
90-B3-D5-1F-30-01-00-00), both issues: DCC Boxed's keystore (npm ``@smartdcc/dccboxed-keystore``,
names Z1-supplier-ds and Z1b-supplier-ds) and, for the first, the RTDS keystore. ZAZ1 is DCC's
published *test* PKI: these keys are TEST ONLY and prove nothing about production firmware.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

_TEST_ONLY = re.compile(rb"TEST[ _-]ONLY", re.IGNORECASE)
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z ]+)-----.+?-----END \1-----", re.DOTALL)

# ZAZ1 supplier DS certificates, TEST ONLY (public test PKI).
ZAZ1_SUPPLIER_CERTIFICATES: dict[str, str] = {
    "ZAZ1 Z1-supplier-ds (TEST ONLY)": """-----BEGIN CERTIFICATE-----
MIIBrDCCAVKgAwIBAgIQT7xSUgGh11hsG8HEc03rnzAKBggqhkjOPQQDAjAaMQsw
CQYDVQQLEwIwNzELMAkGA1UEAxMCWjEwHhcNMTUxMDMwMDAwMDAwWhcNMjUxMDI5
MjM1OTU5WjA7MRgwFgYDVQQDDA9HSVRURVNUU1VQUExJRVIxCzAJBgNVBAsMAjAy
MRIwEAYDVQQtAwkAkLPVHzABAAAwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAQw
wqtaDRMXJv+9qA55KUzDdTRDKj5CRAW5ejq6D/x53OcpslF1Y8t9lYJ+TFC0jLo9
h9WJPFG5bYfDReNxf4weo1kwVzAOBgNVHQ8BAf8EBAMCB4AwEQYDVR0OBAoECESJ
l5LRlvS4MB0GA1UdIAEB/wQTMBEwDwYNKoY6AAGEj7kPAQIBBDATBgNVHSMEDDAK
gAhPVojX7JM74jAKBggqhkjOPQQDAgNIADBFAiEA39CQ51c+r1+oLhqn242f7VEY
ObV1LVXRAJHyUP3xiiICIF637Dax9BM+UVV9M7WcSe9rvRDpqksdzZKOZbPprdHF
-----END CERTIFICATE-----
""",
    "ZAZ1 Z1b-supplier-ds (TEST ONLY)": """-----BEGIN CERTIFICATE-----
MIIBrDCCAVKgAwIBAgIQSge8AdklO1H68B9+x9pbLzAKBggqhkjOPQQDAjAaMQsw
CQYDVQQLEwIwNzELMAkGA1UEAxMCWjEwHhcNMTYwMTEwMDAwMDAwWhcNMjYwMTA5
MjM1OTU5WjA7MRgwFgYDVQQDDA9HSVRURVNUU1VQUExJRVIxCzAJBgNVBAsMAjAy
MRIwEAYDVQQtAwkAkLPVHzABAAAwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAT6
b7/6HJpOQvSjzWWfO+uQoxtWWu17p5F3SLpoT+TGACE8vp0lgh+ngNlHuXXJMPN3
q6EhApAEQmR6maNlIIiwo1kwVzAOBgNVHQ8BAf8EBAMCB4AwEQYDVR0OBAoECEME
a0+3xPEbMB0GA1UdIAEB/wQTMBEwDwYNKoY6AAGEj7kPAQIBBDATBgNVHSMEDDAK
gAhPVojX7JM74jAKBggqhkjOPQQDAgNIADBFAiEAvXvJRsABv/3nyEO/DVW5np3W
TPuHhsJQfc4fIpxRBmUCIH+0LzbjIIn8tTVK5fnRmV/wHfG0cjU7E6excCnrDULy
-----END CERTIFICATE-----
""",
}


@dataclass(frozen=True)
class SupplierKey:
    """A key a signature may verify under; ``certificate`` when it came from one."""

    name: str
    public_key: ec.EllipticCurvePublicKey
    certificate: x509.Certificate | None = None
    test_only: bool = False

    @property
    def validity(self) -> tuple[dt.datetime, dt.datetime] | None:
        if self.certificate is None:
            return None
        return self.certificate.not_valid_before_utc, self.certificate.not_valid_after_utc

    def describe(self) -> str:
        text = self.name
        if self.certificate is not None:
            start, end = self.validity or (None, None)
            text += (f", serial {self.certificate.serial_number:X}, "
                     f"valid {start:%Y-%m-%d} to {end:%Y-%m-%d}")
        return text + (" — TEST ONLY" if self.test_only and "TEST ONLY" not in self.name else "")


class KeyFileError(ValueError):
    """A --supplier-key file that holds no usable P-256 key; the message names the file."""


def default_supplier_keys() -> tuple[SupplierKey, ...]:
    return tuple(
        _from_certificate(name, x509.load_pem_x509_certificate(pem.encode()), test_only=True)
        for name, pem in ZAZ1_SUPPLIER_CERTIFICATES.items()
    )


def load_supplier_keys(path: str | os.PathLike[str]) -> tuple[SupplierKey, ...]:
    """Every certificate or public key in a PEM file, in file order; a file whose name or text
    says TEST ONLY gives keys marked so."""
    source = os.fspath(path)
    try:
        with open(source, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise KeyFileError(f"{source}: cannot read: {exc.strerror}") from None
    keys: list[SupplierKey] = []
    test_only = bool(_TEST_ONLY.search(os.path.basename(source).encode() + b" " + data))
    for number, match in enumerate(_PEM_BLOCK.finditer(data), start=1):
        kind, block = match.group(1).decode(), match.group(0)
        name = f"{os.path.basename(source)} #{number}"
        try:
            if kind == "CERTIFICATE":
                keys.append(_from_certificate(name, x509.load_pem_x509_certificate(block),
                                              test_only=test_only))
            elif kind == "PUBLIC KEY":
                public = serialization.load_pem_public_key(block)
                keys.append(SupplierKey(name, _p256(public, source), test_only=test_only))
            elif "PRIVATE KEY" in kind:
                raise KeyFileError(f"{source}: holds a private key; give the public key or the "
                                   "certificate (never hand a signing key to a checker)")
        except ValueError as exc:
            if isinstance(exc, KeyFileError):
                raise
            raise KeyFileError(f"{source}: PEM block {number} ({kind}) is unreadable: {exc}") from None
    if not keys:
        raise KeyFileError(f"{source}: no PEM certificate or public key found")
    return tuple(keys)


def _from_certificate(name: str, certificate: x509.Certificate, *, test_only: bool = False) -> SupplierKey:
    return SupplierKey(name, _p256(certificate.public_key(), name), certificate, test_only)


def _p256(key: object, source: str) -> ec.EllipticCurvePublicKey:
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise KeyFileError(f"{source}: not a P-256 (secp256r1) key; GBCS supplier signatures use P-256")
    return key
