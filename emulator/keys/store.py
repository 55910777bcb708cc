"""Key stores: the one place that reads a party's DS, KA and DUIS XML-signing keys from disk.

Two layouts are read, for the GBCS codec and for DUIS signatures alike:

- a directory of ``<eui>-<ds|ka|xml-sign>.pem`` (X.509 certificate or SubjectPublicKeyInfo) and
  ``<eui>-<ds|ka|xml-sign>.key`` (PKCS#8 or SEC1 private key), the layout of DCC's RTDS keystore
  and of gbcs-parser's key-store callback (``<eui>-pp-ka`` are prepayment KA keys);
- ``keystore.json`` of the npm package ``@smartdcc/dccboxed-keystore``:
  ``{eui: {"digitalSignature"|"keyAgreement": {serial: {certificate, privateKey, name, role}}}}``;
  its DUIS XML-signing certificates (roles 135/137, ``xml-sign`` names) load as :attr:`KeyUsage.XML_SIGN`.

A party may have several keys of one usage (DCC Boxed holds the ZAZ1 ``Z1`` and re-issued ``Z1b``
certificates): verification tries all of them, signing takes :func:`signing_entry`'s choice.
All published keys are TEST keys (ZAZ1, RTDS).
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Protocol, Sequence

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from .pem import KeyStoreError, load_certificate, load_private_pem, load_public_key, p256_public, same_key

__all__ = [
    "CombinedKeyStore", "DccBoxedKeyStore", "DirectoryKeyStore", "GBCS_KEY_USAGES", "KeyEntry", "KeyNotFound",
    "KeyStore", "KeyStoreError", "KeyUsage", "load_private_pem", "load_public_pem", "open_key_store",
    "private_key", "private_keys", "public_keys", "signing_entry",
]

_LOGGER = logging.getLogger(__name__)


class KeyUsage(str, enum.Enum):
    """Key usages, spelled as in the file names: GBCS DS and KA, and DUIS XML signing."""

    DIGITAL_SIGNATURE = "ds"
    KEY_AGREEMENT = "ka"
    XML_SIGN = "xml-sign"


GBCS_KEY_USAGES = (KeyUsage.DIGITAL_SIGNATURE, KeyUsage.KEY_AGREEMENT)
"""The usages a GBCS party (and an emulated device) has; XML signing is the DUIS layer's."""


class KeyNotFound(KeyError):
    """No key of that usage for that EUI-64 in the store."""

    def __init__(self, eui: int, usage: KeyUsage, private: bool) -> None:
        kind = "private" if private else "public"
        super().__init__(f"no {kind} {usage.value.upper()} key for {eui:016X}")
        self.eui = eui
        self.usage = usage

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class KeyEntry:
    """One key of one party: always its public key; its private key and certificate when the store has them."""

    eui: int
    usage: KeyUsage
    public_key: ec.EllipticCurvePublicKey
    private_key: ec.EllipticCurvePrivateKey | None
    source: str
    """Where it came from: a file path, or ``keystore.json#<name>``."""
    name: str = ""
    certificate: x509.Certificate | None = None
    role: int | None = None
    """dccboxed-keystore's role number (2 supplier, 135/137 XML signing, ...), if the store says."""
    prepayment: bool = False

    @classmethod
    def from_certificate(cls, eui: int, usage: KeyUsage, certificate: x509.Certificate,
                         private_key: ec.EllipticCurvePrivateKey | None = None, *, source: str = "",
                         name: str = "") -> "KeyEntry":
        public = p256_public(certificate.public_key(), source or name or f"{eui:016X}")
        return cls(eui, usage, public, private_key, source, name, certificate)

    @property
    def serial(self) -> int | None:
        return None if self.certificate is None else self.certificate.serial_number

    @property
    def issuer_name(self) -> str:
        """As DCC Boxed writes X509IssuerName: ``CN=Z1,OU=07`` (RFC 4514, most specific first)."""
        return "" if self.certificate is None else self.certificate.issuer.rfc4514_string()

    @property
    def not_after(self) -> dt.datetime | None:
        return None if self.certificate is None else self.certificate.not_valid_after_utc

    @property
    def xml_signing(self) -> bool:
        """A DUIS XML-signing key, never used for GBCS signatures."""
        return self.usage is KeyUsage.XML_SIGN


class KeyStore(Protocol):
    def entries(self, eui: int, usage: KeyUsage) -> Sequence[KeyEntry]:
        """Every key of ``usage`` the store holds for ``eui`` (empty if none)."""
        ...


def public_keys(store: KeyStore, eui: int, usage: KeyUsage) -> list[ec.EllipticCurvePublicKey]:
    return [entry.public_key for entry in store.entries(eui, usage)]


def private_keys(store: KeyStore, eui: int, usage: KeyUsage) -> list[ec.EllipticCurvePrivateKey]:
    return [entry.private_key for entry in _gbcs_entries(store, eui, usage) if entry.private_key is not None]


def _gbcs_entries(store: KeyStore, eui: int, usage: KeyUsage) -> list[KeyEntry]:
    return [entry for entry in store.entries(eui, usage) if not entry.xml_signing and not entry.prepayment]


def signing_entry(store: KeyStore, eui: int, usage: KeyUsage) -> KeyEntry:
    """The private key a party uses: a GBCS (not XML, not prepayment) key, the latest-expiring first."""
    candidates = [entry for entry in _gbcs_entries(store, eui, usage) if entry.private_key is not None]
    if not candidates:
        raise KeyNotFound(eui, usage, private=True)
    never = dt.datetime.max.replace(tzinfo=dt.timezone.utc)
    return max(candidates, key=lambda entry: entry.not_after or never)


def private_key(store: KeyStore, eui: int, usage: KeyUsage) -> ec.EllipticCurvePrivateKey:
    key = signing_entry(store, eui, usage).private_key
    assert key is not None
    return key


def load_public_pem(data: bytes, source: str) -> tuple[ec.EllipticCurvePublicKey, dt.datetime | None]:
    """A certificate or a bare public key in PEM, and a certificate's notAfter."""
    public, certificate = load_public_key(data, source)
    return public, None if certificate is None else certificate.not_valid_after_utc


class _LoadedKeyStore:
    """Entries read once, looked up by party and usage; iterating gives them all in file order."""

    def __init__(self, entries: Iterable[KeyEntry]) -> None:
        self._all = tuple(entries)
        self._entries: dict[tuple[int, KeyUsage], list[KeyEntry]] = {}
        for entry in self._all:
            self._entries.setdefault((entry.eui, entry.usage), []).append(entry)

    def entries(self, eui: int, usage: KeyUsage) -> Sequence[KeyEntry]:
        return tuple(self._entries.get((eui, usage), ()))

    def __iter__(self) -> Iterator[KeyEntry]:
        return iter(self._all)

    def __len__(self) -> int:
        return len(self._all)


_FILE_NAME = re.compile(
    r"^(?P<eui>[0-9a-fA-F]{16})-(?P<pp>pp-)?(?P<usage>ds|ka|xml-sign)\.(?P<ext>pem|key)$")


class DirectoryKeyStore(_LoadedKeyStore):
    """``<eui>-<ds|ka|xml-sign>.pem`` / ``.key`` files in one directory, read once."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise KeyStoreError(f"key store {self.directory} is not a directory")
        pems: dict[tuple[int, KeyUsage, bool], Path] = {}
        keys: dict[tuple[int, KeyUsage, bool], Path] = {}
        for path in sorted(self.directory.iterdir()):
            match = _FILE_NAME.match(path.name)
            if match is None:
                continue
            slot = (int(match["eui"], 16), KeyUsage(match["usage"]), bool(match["pp"]))
            (pems if match["ext"] == "pem" else keys)[slot] = path
        super().__init__(self._entry(slot, pems.get(slot), keys.get(slot))
                         for slot in sorted(set(pems) | set(keys), key=lambda s: (s[0], s[1].value, s[2])))

    @staticmethod
    def _entry(slot: tuple[int, KeyUsage, bool], pem: Path | None, key: Path | None) -> KeyEntry:
        eui, usage, prepayment = slot
        secret = load_private_pem(key.read_bytes(), str(key)) if key is not None else None
        certificate = None
        if pem is not None:
            public, certificate = load_public_key(pem.read_bytes(), str(pem))
            if secret is not None and not same_key(public, secret.public_key()):
                raise KeyStoreError(f"{key} is not the private key of {pem}")
            source = pem
        else:
            assert secret is not None and key is not None
            public, source = secret.public_key(), key
        return KeyEntry(eui, usage, public, secret, str(source), name=source.stem, certificate=certificate,
                        prepayment=prepayment)


_JSON_USAGES = {"digitalSignature": KeyUsage.DIGITAL_SIGNATURE, "keyAgreement": KeyUsage.KEY_AGREEMENT}
_XML_SIGN_ROLES = {135, 137}  # the roles dccboxed-keystore gives DUIS XML signing certificates


class DccBoxedKeyStore(_LoadedKeyStore):
    """``keystore.json`` as ``@smartdcc/dccboxed-keystore`` ships it (ZAZ1 TEST keys)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise KeyStoreError(f"{self.path}: not a readable JSON key store (cannot read keystore JSON: {exc})"
                                ) from None
        if not isinstance(document, dict):
            raise KeyStoreError(f"{self.path}: the top level must be an object keyed by EUI-64")
        entries: list[KeyEntry] = []
        for eui_text, usages in document.items():
            where = f"{self.path}: {eui_text}"
            if not re.fullmatch(r"[0-9a-fA-F]{16}", eui_text) or not isinstance(usages, dict):
                raise KeyStoreError(f"{self.path}: entry {eui_text[:40]!r} is not <16 hex digits>: {{usage: ...}}"
                                    " (expected a 16-hex-digit EUI-64 mapping to key usages)")
            eui = int(eui_text, 16)
            for usage_name, serials in usages.items():
                if usage_name not in _JSON_USAGES or not isinstance(serials, dict):
                    raise KeyStoreError(f"{where}: key usage {str(usage_name)[:40]!r} is not digitalSignature "
                                        "or keyAgreement")
                for serial, record in serials.items():
                    entry = self._entry(eui, _JSON_USAGES[usage_name], f"{where}/{usage_name}/{serial}", record)
                    if entry is not None:
                        entries.append(entry)
        super().__init__(entries)

    def _entry(self, eui: int, usage: KeyUsage, where: str, record: object) -> KeyEntry | None:
        if not isinstance(record, dict) or not isinstance(record.get("certificate"), str):
            raise KeyStoreError(f"{where}: a record needs a PEM 'certificate'")
        name = str(record.get("name") or "")
        role = record.get("role") if isinstance(record.get("role"), int) else None
        where = f"{where} ({name})" if name else where
        secret = None
        if record.get("privateKey") is not None:
            if not isinstance(record["privateKey"], str):
                raise KeyStoreError(f"{where}: 'privateKey' must be a PEM string")
            secret = load_private_pem(record["privateKey"], where)
        certificate: x509.Certificate | None
        try:
            certificate = load_certificate(record["certificate"], where)
            public = p256_public(certificate.public_key(), where)
        except KeyStoreError as exc:
            # dccboxed-keystore 0.4.2's mdr-ds and mdr-ka certificates are refused by cryptography
            # (extra data in the TBSCertificate's signature algorithm); the private key still gives
            # the public key.
            if secret is None:
                _LOGGER.warning("skipped %s", exc)
                return None
            _LOGGER.warning("%s; using the public key of its private key", exc)
            public, certificate = secret.public_key(), None
        if secret is not None and not same_key(public, secret.public_key()):
            raise KeyStoreError(f"{where}: the private key does not belong to the certificate")
        if usage is KeyUsage.DIGITAL_SIGNATURE and (role in _XML_SIGN_ROLES or "xml-sign" in name):
            usage = KeyUsage.XML_SIGN
        return KeyEntry(eui, usage, public, secret, f"{self.path.name}#{name or where}", name=name,
                        certificate=certificate, role=role,
                        prepayment=usage is KeyUsage.KEY_AGREEMENT and name.endswith("PP-ka"))


class CombinedKeyStore:
    """Several stores read as one, in order (e.g. the emulated devices, then the remote parties)."""

    def __init__(self, stores: Iterable[KeyStore]) -> None:
        self.stores = tuple(stores)

    def entries(self, eui: int, usage: KeyUsage) -> Sequence[KeyEntry]:
        return tuple(entry for store in self.stores for entry in store.entries(eui, usage))


def open_key_store(path: str | Path) -> DirectoryKeyStore | DccBoxedKeyStore:
    """A directory (RTDS layout) or a ``keystore.json`` file, whichever ``path`` is."""
    path = Path(path)
    if path.is_dir():
        return DirectoryKeyStore(path)
    if path.is_file():
        return DccBoxedKeyStore(path)
    raise KeyStoreError(f"{path}: no such file or directory (the key store does not exist)")
