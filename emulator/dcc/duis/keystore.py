"""The DUIS view of a key store: certificates looked up by serial number, the DSP's signing choice.

Reading keys is :mod:`emulator.keys.store`'s job (DCC's ``keystore.json`` from
``@smartdcc/dccboxed-keystore`` or a directory of ``<eui>-<ds|ka|xml-sign>.pem`` / ``.key``); this
module only keeps the entries DUIS can name (X509IssuerSerial needs a certificate). ZAZ1 keys are
DCC's published TEST ONLY keys.

Without a keystore the emulator signs with its own TEST ONLY key and trusts the ZAZ1 XML-signing
certificates of DCC's test Users (public certificates only, :mod:`emulator.keys.embedded`), so
requests signed by DCC Boxed's tooling verify out of the box.
"""

from __future__ import annotations

import logging
import os
from typing import Iterable

from emulator.keys.embedded import DSP_EUI, xml_signing_keys
from emulator.keys.pem import KeyStoreError, certificate_owner
from emulator.keys.store import KeyEntry, KeyUsage, open_key_store

__all__ = ["DSP_EUI", "KeyEntry", "KeyUsage", "Keystore", "KeystoreError", "default_keystore", "load_keystore",
           "owner_of"]

_LOGGER = logging.getLogger(__name__)

KeystoreError = KeyStoreError
owner_of = certificate_owner


class Keystore:
    """Key entries with certificates, looked up by owner and usage, or by certificate serial number."""

    def __init__(self, entries: Iterable[KeyEntry] = ()) -> None:
        self.entries: list[KeyEntry] = []
        for entry in entries:
            if entry.certificate is None:
                _LOGGER.info("%s: no certificate, so DUIS cannot name it (X509IssuerSerial); not used for "
                                "XML signatures", entry.source)
            else:
                self.entries.append(entry)
        self._by_serial = {e.serial: e for e in self.entries}

    def by_serial(self, serial: int | None) -> KeyEntry | None:
        return self._by_serial.get(serial)

    def signing_entry(self, eui64: int) -> KeyEntry | None:
        """The XML signing key (with its private key) of ``eui64``, else its digital-signature key."""
        for usage in (KeyUsage.XML_SIGN, KeyUsage.DIGITAL_SIGNATURE):
            for entry in self.entries:
                if entry.eui == eui64 and entry.usage is usage and entry.private_key is not None:
                    return entry
        return None

    def __len__(self) -> int:
        return len(self.entries)


def load_keystore(path: str | os.PathLike[str]) -> Keystore:
    """A keystore from ``keystore.json`` (dccboxed-keystore's format) or a directory of PEM files."""
    return Keystore(open_key_store(os.fspath(path)))


def default_keystore() -> Keystore:
    """The emulator's TEST ONLY DSP signing key and the ZAZ1 Users' public XML signing certificates."""
    return Keystore(xml_signing_keys())
