"""DCC's published ZAZ1 keystore (``@smartdcc/dccboxed-keystore``'s ``keystore.json`` as npm ships
it, installed by ``npm ci --prefix tests/dcc/npm``) read by the GBCS side: the ZAZ1 supplier signs
a GBCS message with its key from it and the signature verifies. ZAZ1 keys are DCC's TEST ONLY keys.
Skipped without npm on a developer's machine, failed under CI (where .ci/run installs it)."""

from __future__ import annotations

import datetime as dt
import logging
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from gbcs_vectors import KEYSTORE

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "dcc"))
from duis_schema import ZAZ1_KEYSTORE, require_tool  # noqa: E402

from emulator.gbcs import messages, security  # noqa: E402
from emulator.gbcs.messages import decode_message  # noqa: E402
from emulator.gbcs.protection import Check, MessageProtection  # noqa: E402
from emulator.keys.embedded import xml_signing_keys, zaz1_supplier_ds_certificates  # noqa: E402
from emulator.keys.store import DccBoxedKeyStore, DirectoryKeyStore, KeyUsage, open_key_store, signing_entry  # noqa: E402

SUPPLIER = 0x90B3D51F30010000
ESME = 0x00DB1234567890A0
MDR = 0x90B3D51F30010009
DS = KeyUsage.DIGITAL_SIGNATURE


@pytest.fixture(scope="module")
def zaz1() -> DccBoxedKeyStore:
    if not ZAZ1_KEYSTORE.is_file():
        require_tool(f"{ZAZ1_KEYSTORE} missing: run `npm ci --prefix tests/dcc/npm`")
    store = open_key_store(ZAZ1_KEYSTORE)
    assert isinstance(store, DccBoxedKeyStore)
    return store


def test_the_zaz1_supplier_signs_a_cs06_precommand_that_verifies(zaz1: DccBoxedKeyStore) -> None:
    chosen = signing_entry(zaz1, SUPPLIER, DS)
    assert chosen.name == "Z1b-supplier-ds" and chosen.role == 2  # the re-issued key, not the XML signing one
    pre = messages.cs06_precommand(0x3E9, SUPPLIER, ESME, bytes(range(32)),
                                   dt.datetime(2027, 1, 15, 9, 0, tzinfo=dt.timezone.utc))
    signed = MessageProtection(zaz1).sign(pre)
    received = decode_message(signed.encode()).envelope
    assert MessageProtection(zaz1).verify(received).signature is Check.VALID
    # the certificate the emulator ships as ZAZ1 Z1b-supplier-ds (certify's default) verifies it too
    z1b = next(e for e in zaz1_supplier_ds_certificates() if e.name == "Z1b-supplier-ds")
    assert signed.signature is not None
    assert security.verify_signature(z1b.public_key, signed.to_be_signed(), signed.signature)
    # the RTDS keystore holds only the older Z1 key: a real check, not any key passing
    assert MessageProtection(DirectoryKeyStore(KEYSTORE)).verify(received).signature is Check.INVALID


def test_the_published_file_loads_whole_with_its_unparsable_certificates_kept(
        caplog: pytest.LogCaptureFixture) -> None:
    if not ZAZ1_KEYSTORE.is_file():
        require_tool(f"{ZAZ1_KEYSTORE} missing: run `npm ci --prefix tests/dcc/npm`")
    with caplog.at_level(logging.WARNING):
        store = DccBoxedKeyStore(ZAZ1_KEYSTORE)
    assert len(store) == 33
    (mdr,) = store.entries(MDR, DS)  # mdr-ds: cryptography refuses its certificate, its private key serves
    assert mdr.name == "mdr-ds" and mdr.certificate is None and mdr.private_key is not None
    assert "mdr-ds" in caplog.text and "using the public key of its private key" in caplog.text
    assert {e.name for e in store.entries(SUPPLIER, KeyUsage.XML_SIGN)} == {"xml-sign-90B3D51F30010000-ds"}


def test_the_shipped_zaz1_certificates_are_the_published_ones(zaz1: DccBoxedKeyStore) -> None:
    def der(certificate: x509.Certificate | None) -> bytes:
        assert certificate is not None
        return certificate.public_bytes(serialization.Encoding.DER)

    published = {(e.eui, e.name): der(e.certificate) for e in zaz1 if e.certificate is not None}
    for shipped in zaz1_supplier_ds_certificates():
        assert published[(SUPPLIER, shipped.name)] == der(shipped.certificate), shipped.source
    users = [e for e in xml_signing_keys() if e.private_key is None]  # the emulator's own DSP key is not ZAZ1
    assert len(users) == 3
    for shipped in users:
        (match,) = zaz1.entries(shipped.eui, KeyUsage.XML_SIGN)
        assert der(match.certificate) == der(shipped.certificate), shipped.source
