"""The TEST ONLY keys and certificates shipped as package data (``test_only/``, see its README).

One place for them: the emulator's own DSP XML signing key, the ZAZ1 Users' public XML signing
certificates (DUIS requests signed by DCC Boxed's tooling verify without a keystore), and the ZAZ1
supplier DS certificates (the default keys of ``certify image``), and the GBCS DS/KA keys of the
ACB and the ZAZ1 suppliers with their private keys (the emulated DCC's and suppliers' side of the
GBCS flow). ZAZ1 is DCC's published test PKI.
"""

from __future__ import annotations

import functools
from pathlib import Path

from .pem import load_certificate
from .store import DirectoryKeyStore, KeyEntry, KeyUsage

TEST_ONLY_DIR = Path(__file__).parent / "test_only"
XML_SIGNING_DIR = TEST_ONLY_DIR / "xml-sign"
ZAZ1_SUPPLIER_DS_DIR = TEST_ONLY_DIR / "zaz1-supplier-ds"
REMOTE_PARTIES_DIR = TEST_ONLY_DIR / "remote-parties"

DSP_EUI = 0x90B3D51F30000002
"""The DSP's XML signing identity in ZAZ1 (``dsp-xml-sign-90B3D51F30000002``)."""
ZAZ1_SUPPLIER_EUI = 0x90B3D51F30010000
"""GITTESTSUPPLIER, the ZAZ1 (and RTDS) supplier."""


@functools.lru_cache(maxsize=1)
def xml_signing_keys() -> DirectoryKeyStore:
    """The emulator's TEST ONLY DSP key (with its private key) and the ZAZ1 Users' certificates."""
    return DirectoryKeyStore(XML_SIGNING_DIR)


@functools.lru_cache(maxsize=1)
def zaz1_supplier_ds_certificates() -> tuple[KeyEntry, ...]:
    """GITTESTSUPPLIER's DS certificates ``Z1-supplier-ds`` and ``Z1b-supplier-ds`` (public only), in that order."""
    entries = []
    for path in sorted(ZAZ1_SUPPLIER_DS_DIR.glob("*.pem")):
        certificate = load_certificate(path.read_bytes(), str(path))
        entries.append(KeyEntry.from_certificate(ZAZ1_SUPPLIER_EUI, KeyUsage.DIGITAL_SIGNATURE, certificate,
                                                 source=str(path), name=path.stem))
    return tuple(entries)


@functools.lru_cache(maxsize=1)
@functools.lru_cache(maxsize=1)  # bundled files, read once a process (a fleet builds a key store a wave)
def remote_party_keys() -> DirectoryKeyStore:
    """The ACB's and the ZAZ1 suppliers' GBCS DS/KA keys, private keys included (published, TEST ONLY)."""
    return DirectoryKeyStore(REMOTE_PARTIES_DIR)
