"""Key stores: where the GBCS codec finds a party's signing (DS) and key agreement (KA) keys.

Two layouts on disk are read:

- a directory of ``<eui>-ds.pem`` / ``<eui>-ka.pem`` (X.509 certificate or SubjectPublicKeyInfo)
  and ``<eui>-ds.key`` / ``<eui>-ka.key`` (PKCS#8 or SEC1 private key), the layout of DCC's RTDS
  keystore and of gbcs-parser's key-store callback (``-pp-ka`` prepayment keys are not used here);
- ``keystore.json`` of the npm package ``@smartdcc/dccboxed-keystore``:
  ``{eui: {"digitalSignature"|"keyAgreement": {serial: {certificate, privateKey, name, role}}}}``.

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
from typing import Iterable, Protocol, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

_LOGGER = logging.getLogger(__name__)


class KeyUsage(enum.Enum):
    """The two GBCS key usages, spelled as in the file names."""

    DIGITAL_SIGNATURE = "ds"
    KEY_AGREEMENT = "ka"


class KeyStoreError(ValueError):
    """A key file or key store that cannot be read, naming the file and the key."""


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
    """One key of one party: always its public key, its private key when the store has it."""

    eui: int
    usage: KeyUsage
    public_key: ec.EllipticCurvePublicKey
    private_key: ec.EllipticCurvePrivateKey | None
    source: str
    """Where it came from: a file path, or ``keystore.json#<name>``."""
    name: str = ""
    not_after: dt.datetime | None = None
    xml_signing: bool = False
    """A DUIS XML-signing key (dccboxed-keystore ``xml-sign-*``), never used for GBCS signatures."""
    prepayment: bool = False


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


def _p256_public(key: object, source: str) -> ec.EllipticCurvePublicKey:
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise KeyStoreError(f"{source}: not a P-256 (secp256r1) public key, as GBCS requires")
    return key


def _p256_private(key: object, source: str) -> ec.EllipticCurvePrivateKey:
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise KeyStoreError(f"{source}: not a P-256 (secp256r1) private key, as GBCS requires")
    return key


def load_public_pem(data: bytes, source: str) -> tuple[ec.EllipticCurvePublicKey, dt.datetime | None]:
    """A certificate or a bare public key in PEM; also gives a certificate's notAfter."""
    if b"BEGIN CERTIFICATE" in data:
        try:
            cert = x509.load_pem_x509_certificate(data)
            return _p256_public(cert.public_key(), source), cert.not_valid_after_utc
        except ValueError as exc:
            raise KeyStoreError(f"{source}: certificate does not parse: {exc}") from None
    try:
        return _p256_public(serialization.load_pem_public_key(data), source), None
    except ValueError as exc:
        raise KeyStoreError(f"{source}: neither a certificate nor a public key in PEM: {exc}") from None


def load_private_pem(data: bytes, source: str) -> ec.EllipticCurvePrivateKey:
    try:
        return _p256_private(serialization.load_pem_private_key(data, password=None), source)
    except (ValueError, TypeError) as exc:
        raise KeyStoreError(f"{source}: private key does not parse: {exc}") from None


def _same_key(a: ec.EllipticCurvePublicKey, b: ec.EllipticCurvePublicKey) -> bool:
    fmt = (serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return a.public_bytes(*fmt) == b.public_bytes(*fmt)


_FILE_NAME = re.compile(r"^(?P<eui>[0-9a-fA-F]{16})-(?P<pp>pp-)?(?P<usage>ds|ka)\.(?P<ext>pem|key)$")


class DirectoryKeyStore:
    """``<eui>-<ds|ka>.pem`` / ``.key`` files in one directory, read once."""

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
        self._entries: dict[tuple[int, KeyUsage], list[KeyEntry]] = {}
        for slot in sorted(set(pems) | set(keys), key=lambda s: (s[0], s[1].value, s[2])):
            eui, usage, prepayment = slot
            secret = load_private_pem(keys[slot].read_bytes(), str(keys[slot])) if slot in keys else None
            not_after = None
            if slot in pems:
                public, not_after = load_public_pem(pems[slot].read_bytes(), str(pems[slot]))
                if secret is not None and not _same_key(public, secret.public_key()):
                    raise KeyStoreError(f"{keys[slot]} is not the private key of {pems[slot]}")
                source = str(pems[slot])
            else:
                assert secret is not None
                public, source = secret.public_key(), str(keys[slot])
            entry = KeyEntry(eui, usage, public, secret, source, not_after=not_after, prepayment=prepayment)
            self._entries.setdefault((eui, usage), []).append(entry)

    def entries(self, eui: int, usage: KeyUsage) -> Sequence[KeyEntry]:
        return tuple(self._entries.get((eui, usage), ()))

    def __len__(self) -> int:
        return sum(len(v) for v in self._entries.values())


_JSON_USAGES = {"digitalSignature": KeyUsage.DIGITAL_SIGNATURE, "keyAgreement": KeyUsage.KEY_AGREEMENT}


class DccBoxedKeyStore:
    """``keystore.json`` as ``@smartdcc/dccboxed-keystore`` ships it (ZAZ1 TEST keys)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise KeyStoreError(f"{self.path}: not a readable JSON key store: {exc}") from None
        if not isinstance(document, dict):
            raise KeyStoreError(f"{self.path}: the top level must be an object keyed by EUI-64")
        self._entries: dict[tuple[int, KeyUsage], list[KeyEntry]] = {}
        for eui_text, usages in document.items():
            where = f"{self.path}: {eui_text}"
            if not re.fullmatch(r"[0-9a-fA-F]{16}", eui_text) or not isinstance(usages, dict):
                raise KeyStoreError(f"{where}: expected a 16-hex-digit EUI-64 mapping to key usages")
            eui = int(eui_text, 16)
            for usage_name, serials in usages.items():
                if usage_name not in _JSON_USAGES or not isinstance(serials, dict):
                    raise KeyStoreError(f"{where}: key usage {usage_name!r} is not digitalSignature or keyAgreement")
                usage = _JSON_USAGES[usage_name]
                for serial, record in serials.items():
                    entry = self._entry(eui, usage, f"{where}/{usage_name}/{serial}", record)
                    self._entries.setdefault((eui, usage), []).append(entry)

    def _entry(self, eui: int, usage: KeyUsage, where: str, record: object) -> KeyEntry:
        if not isinstance(record, dict) or not isinstance(record.get("certificate"), str):
            raise KeyStoreError(f"{where}: a record needs a PEM 'certificate'")
        name = str(record.get("name", ""))
        secret = None
        if record.get("privateKey") is not None:
            if not isinstance(record["privateKey"], str):
                raise KeyStoreError(f"{where}: 'privateKey' must be a PEM string")
            secret = load_private_pem(record["privateKey"].encode(), where)
        try:
            public, not_after = load_public_pem(record["certificate"].encode(), where)
        except KeyStoreError as exc:
            # One published record has a certificate cryptography rejects (non-DER algorithm
            # parameters); its private key still gives the public key.
            if secret is None:
                raise
            _LOGGER.warning("%s; using the public key of its private key", exc)
            public, not_after = secret.public_key(), None
        if secret is not None and not _same_key(public, secret.public_key()):
            raise KeyStoreError(f"{where}: the private key does not belong to the certificate")
        return KeyEntry(eui, usage, public, secret, f"{self.path.name}#{name or where}", name=name,
                        not_after=not_after, xml_signing="xml-sign" in name,
                        prepayment=usage is KeyUsage.KEY_AGREEMENT and name.endswith("PP-ka"))

    def entries(self, eui: int, usage: KeyUsage) -> Sequence[KeyEntry]:
        return tuple(self._entries.get((eui, usage), ()))

    def __len__(self) -> int:
        return sum(len(v) for v in self._entries.values())


class CombinedKeyStore:
    """Several stores read as one, in order (e.g. the emulated devices, then the remote parties)."""

    def __init__(self, stores: Iterable[KeyStore]) -> None:
        self.stores = tuple(stores)

    def entries(self, eui: int, usage: KeyUsage) -> Sequence[KeyEntry]:
        return tuple(entry for store in self.stores for entry in store.entries(eui, usage))


def open_key_store(path: str | Path) -> KeyStore:
    """A directory (RTDS layout) or a ``keystore.json`` file, whichever ``path`` is."""
    path = Path(path)
    if path.is_dir():
        return DirectoryKeyStore(path)
    if path.is_file():
        return DccBoxedKeyStore(path)
    raise KeyStoreError(f"key store {path} does not exist")
