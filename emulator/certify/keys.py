"""Supplier keys that check A9 verifies GBCS image signatures with.

``--supplier-key`` takes a PEM public key or certificate (several certificates in one file are
tried in turn); :mod:`emulator.keys.pem` reads it. The default is the ZAZ1 supplier
digital-signature certificate (GITTESTSUPPLIER, 90-B3-D5-1F-30-01-00-00), both issues, Z1 and Z1b,
shipped in :mod:`emulator.keys.embedded`. ZAZ1 is DCC's published *test* PKI: these keys are TEST
ONLY and prove nothing about production firmware.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from emulator.keys.embedded import zaz1_supplier_ds_certificates
from emulator.keys.pem import KeyStoreError, public_pems

_TEST_ONLY = re.compile(rb"TEST[ _-]ONLY", re.IGNORECASE)

KeyFileError = KeyStoreError
"""A --supplier-key file that holds no usable P-256 key; the message names the file."""


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


def default_supplier_keys() -> tuple[SupplierKey, ...]:
    return tuple(SupplierKey(f"ZAZ1 {entry.name} (TEST ONLY)", entry.public_key, entry.certificate, test_only=True)
                 for entry in zaz1_supplier_ds_certificates())


def load_supplier_keys(path: str | os.PathLike[str]) -> tuple[SupplierKey, ...]:
    """Every certificate or public key in a PEM file, in file order; a file whose name or text
    says TEST ONLY gives keys marked so."""
    source = os.fspath(path)
    try:
        with open(source, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise KeyFileError(f"{source}: cannot read: {exc.strerror or exc}") from None
    found = public_pems(data, source)
    test_only = bool(_TEST_ONLY.search(os.path.basename(source).encode() + b" " + data))
    return tuple(SupplierKey(f"{os.path.basename(source)} #{pem.number}", pem.public_key, pem.certificate, test_only)
                 for pem in found)
