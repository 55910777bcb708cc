"""Certificates and XML signing keys of the DCC (DSP) and its Users.

Loads either DCC's published keystore as npm ships it (``@smartdcc/dccboxed-keystore``'s
``keystore.json``: ``{eui: {digitalSignature|keyAgreement: {serial: {certificate, privateKey,
name, role}}}}``) or a directory of ``<eui>-<ds|ka|xml-sign>.pem`` certificates with optional
``.key`` private keys beside them. ZAZ1 keys are DCC's published TEST ONLY keys.

Without a keystore the emulator signs with its own TEST ONLY key (``keys/``) and trusts the ZAZ1
XML-signing certificates of DCC's test Users (public certificates only), so requests signed by DCC
Boxed's tooling verify out of the box.
"""

from __future__ import annotations

import enum
import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from cryptography.x509.oid import NameOID

from emulator.eui64 import format_eui64

_LOGGER = logging.getLogger(__name__)

KEYS_DIR = Path(__file__).parent / "keys"
DSP_EUI = 0x90B3D51F30000002
"""The DSP's XML signing identity in ZAZ1 (``dsp-xml-sign-90B3D51F30000002``)."""

_FILE = re.compile(r"(?P<eui>[0-9A-Fa-f]{16})-(?P<usage>ds|ka|xml-sign)\.(?P<ext>pem|key)")
_XML_SIGN_ROLES = {135, 137}  # the roles dccboxed-keystore gives XML signing certificates


class KeyUsage(str, enum.Enum):
    DIGITAL_SIGNATURE = "ds"
    KEY_AGREEMENT = "ka"
    XML_SIGN = "xml-sign"


class KeystoreError(ValueError):
    """A keystore that cannot be read; the message names the file and the entry."""


@dataclass(frozen=True, slots=True)
class KeyEntry:
    eui64: int
    usage: KeyUsage
    certificate: x509.Certificate
    private_key: ec.EllipticCurvePrivateKey | None = None
    name: str | None = None

    @property
    def serial(self) -> int:
        return self.certificate.serial_number

    @property
    def issuer_name(self) -> str:
        """As DCC Boxed writes X509IssuerName: ``CN=Z1,OU=07`` (RFC 4514, most specific first)."""
        return self.certificate.issuer.rfc4514_string()


class Keystore:
    """Key entries looked up by owner and usage, or by certificate serial number."""

    def __init__(self, entries: Iterable[KeyEntry] = ()) -> None:
        self.entries: list[KeyEntry] = list(entries)
        self._by_serial = {e.serial: e for e in self.entries}

    def merged(self, other: "Keystore") -> "Keystore":
        """``other``'s entries win where both hold the same serial number."""
        by_serial = {e.serial: e for e in self.entries}
        by_serial.update({e.serial: e for e in other.entries})
        return Keystore(by_serial.values())

    def by_serial(self, serial: int) -> KeyEntry | None:
        return self._by_serial.get(serial)

    def signing_entry(self, eui64: int) -> KeyEntry | None:
        """The XML signing key (with its private key) of ``eui64``, else its digital-signature key."""
        for usage in (KeyUsage.XML_SIGN, KeyUsage.DIGITAL_SIGNATURE):
            for entry in self.entries:
                if entry.eui64 == eui64 and entry.usage is usage and entry.private_key is not None:
                    return entry
        return None

    def __len__(self) -> int:
        return len(self.entries)


def _certificate(pem: str | bytes, where: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem.encode() if isinstance(pem, str) else pem)
    except ValueError as exc:
        raise KeystoreError(f"{where}: not a PEM certificate ({exc})") from None


def _private_key(pem: str | bytes, where: str) -> ec.EllipticCurvePrivateKey:
    try:
        key = load_pem_private_key(pem.encode() if isinstance(pem, str) else pem, password=None)
    except (ValueError, TypeError) as exc:
        raise KeystoreError(f"{where}: not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise KeystoreError(f"{where}: not an elliptic-curve key (DUIS signs with ECDSA P-256)")
    return key


def _load_json(path: Path) -> Keystore:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise KeystoreError(f"{path}: cannot read keystore JSON ({exc})") from None
    if not isinstance(data, dict):
        raise KeystoreError(f"{path}: expected an object keyed by EUI-64")
    entries: list[KeyEntry] = []
    for eui_text, usages in data.items():
        if not re.fullmatch(r"[0-9A-Fa-f]{16}", str(eui_text)) or not isinstance(usages, dict):
            raise KeystoreError(f"{path}: entry {str(eui_text)[:40]!r} is not <16 hex digits>: {{usage: ...}}")
        eui = int(eui_text, 16)
        for usage_name, serials in usages.items():
            if usage_name not in ("digitalSignature", "keyAgreement") or not isinstance(serials, dict):
                raise KeystoreError(f"{path}: {eui_text}: unknown usage {str(usage_name)[:40]!r}")
            for serial, item in serials.items():
                where = f"{path}: {eui_text}/{usage_name}/{serial}"
                if not isinstance(item, dict) or "certificate" not in item:
                    raise KeystoreError(f"{where}: no certificate")
                name = item.get("name")
                usage = KeyUsage.KEY_AGREEMENT if usage_name == "keyAgreement" else KeyUsage.DIGITAL_SIGNATURE
                if usage is KeyUsage.DIGITAL_SIGNATURE and (
                        item.get("role") in _XML_SIGN_ROLES or "xml-sign" in str(name or "")):
                    usage = KeyUsage.XML_SIGN
                try:
                    certificate = _certificate(item["certificate"], where)
                except KeystoreError as exc:
                    # DCC's keystore carries a certificate or two that strict DER parsers refuse.
                    _LOGGER.warning("skipped %s", exc)
                    continue
                key = _private_key(item["privateKey"], where) if item.get("privateKey") else None
                entries.append(KeyEntry(eui, usage, certificate, key, str(name) if name else None))
    return Keystore(entries)


def _load_directory(path: Path) -> Keystore:
    entries: list[KeyEntry] = []
    for cert_path in sorted(path.iterdir()):
        match = _FILE.fullmatch(cert_path.name)
        if not match or match["ext"] != "pem":
            continue
        key_path = cert_path.with_suffix(".key")
        key = _private_key(key_path.read_bytes(), str(key_path)) if key_path.is_file() else None
        entries.append(KeyEntry(int(match["eui"], 16), KeyUsage(match["usage"]),
                                _certificate(cert_path.read_bytes(), str(cert_path)), key, cert_path.stem))
    if not entries:
        raise KeystoreError(f"{path}: no <eui>-<ds|ka|xml-sign>.pem file")
    return Keystore(entries)


def load_keystore(path: str | os.PathLike[str]) -> Keystore:
    """A keystore from ``keystore.json`` (dccboxed-keystore's format) or a directory of PEM files."""
    where = Path(path)
    if where.is_dir():
        return _load_directory(where)
    if where.is_file():
        return _load_json(where)
    raise KeystoreError(f"{where}: no such file or directory")


def default_keystore() -> Keystore:
    """The emulator's TEST ONLY DSP signing key and the ZAZ1 Users' public XML signing certificates."""
    return _load_directory(KEYS_DIR)


def owner_of(certificate: x509.Certificate) -> int | None:
    """The EUI-64 a GB smart metering certificate names (subject x500UniqueIdentifier)."""
    for attribute in certificate.subject.get_attributes_for_oid(NameOID.X500_UNIQUE_IDENTIFIER):
        raw = attribute.value if isinstance(attribute.value, bytes) else str(attribute.value).encode()
        if len(raw) >= 8:
            return int.from_bytes(raw[-8:], "big")
    return None


load_certificate = _certificate
load_private_key = _private_key


def describe(entry: KeyEntry) -> str:
    return f"{format_eui64(entry.eui64)} {entry.usage.value} serial {entry.serial}"
