"""Key stores: the RTDS directory layout, dccboxed-keystore's keystore.json, TEST ONLY device keys."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from gbcs_vectors import KEYSTORE

from emulator.gbcs.messages import decode_message
from emulator.gbcs.protection import Check, MessageProtection
from emulator.gbcs.security import sign, verify_signature
from emulator.keys.devices import DeviceKeyStore, derive_device_key, export_device_keys
from emulator.keys.store import (
    GBCS_KEY_USAGES, CombinedKeyStore, DccBoxedKeyStore, DirectoryKeyStore, KeyNotFound, KeyStoreError, KeyUsage, open_key_store,
    private_key, public_keys, signing_entry,
)

SUPPLIER = 0x90B3D51F30010000
ACB = 0x90B3D51F30000002
ESME = 0x00DB1234567890A0
DS, KA = KeyUsage.DIGITAL_SIGNATURE, KeyUsage.KEY_AGREEMENT


def _pem_private(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _certificate(key: ec.EllipticCurvePrivateKey, name: str, not_after: dt.datetime) -> str:
    """A self-signed TEST ONLY certificate standing in for a ZAZ1 one."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(dt.datetime(2015, 10, 30, tzinfo=dt.timezone.utc)).not_valid_after(not_after)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _record(key: ec.EllipticCurvePrivateKey, name: str, role: int, year: int) -> dict[str, object]:
    return {"certificate": _certificate(key, name, dt.datetime(year, 1, 9, 23, 59, 59, tzinfo=dt.timezone.utc)),
            "privateKey": _pem_private(key), "name": name, "role": role}


@pytest.fixture
def boxed_keys() -> dict[str, ec.EllipticCurvePrivateKey]:
    return {name: ec.generate_private_key(ec.SECP256R1()) for name in
            ("Z1-supplier-ds", "Z1b-supplier-ds", "xml-sign-supplier-ds", "Z1-supplier-ka", "Z1-supplierPP-ka")}


@pytest.fixture
def keystore_json(tmp_path: Path, boxed_keys: dict[str, ec.EllipticCurvePrivateKey]) -> Path:
    """A small keystore.json in the format @smartdcc/dccboxed-keystore ships (serials as keys)."""
    k = boxed_keys
    document = {
        f"{SUPPLIER:016x}": {
            "digitalSignature": {
                "105986833131214866166891566273223584671": _record(k["Z1-supplier-ds"], "Z1-supplier-ds", 2, 2025),
                "98403031005530424935033843217390525231": _record(k["Z1b-supplier-ds"], "Z1b-supplier-ds", 2, 2026),
                "27572600000000000000000000000000000001": _record(k["xml-sign-supplier-ds"], "xml-sign-90B3D51F30010000-ds", 135, 2118),
            },
            "keyAgreement": {
                "78705600000000000000000000000000000001": _record(k["Z1-supplier-ka"], "Z1-supplier-ka", 2, 2025),
                "14916000000000000000000000000000000001": _record(k["Z1-supplierPP-ka"], "Z1-supplierPP-ka", 2, 2025),
            },
        },
    }
    path = tmp_path / "keystore.json"
    path.write_text(json.dumps(document, indent=2))
    return path


def test_rtds_directory_store_holds_remote_parties_private_and_devices_public() -> None:
    store = DirectoryKeyStore(KEYSTORE)
    assert private_key(store, SUPPLIER, DS) is not None
    assert private_key(store, ACB, KA) is not None
    assert len(public_keys(store, ESME, KA)) == 1
    with pytest.raises(KeyNotFound, match="no private KA key for 00DB1234567890A0"):
        private_key(store, ESME, KA)
    # a public key without a certificate (fffffffffffffffe-ka.pem) and keys without .pem load too
    assert public_keys(store, 0xFFFFFFFFFFFFFFFE, KA)
    assert public_keys(store, 0x123456789ABCDEF0, KA)


def test_directory_store_rejects_a_key_that_is_not_the_certificates(tmp_path: Path) -> None:
    shutil.copy(KEYSTORE / "90b3d51f30010000-ds.pem", tmp_path / "90b3d51f30010000-ds.pem")
    shutil.copy(KEYSTORE / "90b3d51f30000002-ds.key", tmp_path / "90b3d51f30010000-ds.key")
    with pytest.raises(KeyStoreError, match=r"90b3d51f30010000-ds\.key is not the private key of .*90b3d51f30010000-ds\.pem"):
        DirectoryKeyStore(tmp_path)


def test_directory_store_names_a_broken_file(tmp_path: Path) -> None:
    (tmp_path / "00db1234567890a0-ka.pem").write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    with pytest.raises(KeyStoreError, match="00db1234567890a0-ka.pem: certificate does not parse"):
        DirectoryKeyStore(tmp_path)


def test_dccboxed_keystore_json_loads_and_signs_with_the_reissued_key(
        keystore_json: Path, boxed_keys: dict[str, ec.EllipticCurvePrivateKey]) -> None:
    store = open_key_store(keystore_json)
    assert isinstance(store, DccBoxedKeyStore) and len(store) == 5
    chosen = signing_entry(store, SUPPLIER, DS)
    assert chosen.name == "Z1b-supplier-ds"  # the later certificate, never the XML-signing key
    assert signing_entry(store, SUPPLIER, KA).name == "Z1-supplier-ka"  # not the prepayment key
    # a signature by the older Z1 key still verifies: every DS key of the party is tried
    data = b"grouping header"
    signature = sign(boxed_keys["Z1-supplier-ds"], data)
    assert any(verify_signature(key, data, signature) for key in public_keys(store, SUPPLIER, DS))


@pytest.mark.parametrize(("document", "message"), [
    ("not json", "not a readable JSON key store"),
    ('{"90b3d51f30010000": {"signing": {}}}', "key usage 'signing' is not digitalSignature or keyAgreement"),
    ('{"90b3": {}}', "expected a 16-hex-digit EUI-64"),
    ('{"90b3d51f30010000": {"keyAgreement": {"1": {"name": "x"}}}}', "needs a PEM 'certificate'"),
])
def test_dccboxed_keystore_errors_name_the_entry(tmp_path: Path, document: str, message: str) -> None:
    path = tmp_path / "keystore.json"
    path.write_text(document)
    with pytest.raises(KeyStoreError, match=message):
        DccBoxedKeyStore(path)


def test_device_keys_are_deterministic_per_seed_eui_and_usage() -> None:
    def raw(key: ec.EllipticCurvePrivateKey) -> int:
        return key.private_numbers().private_value

    assert raw(derive_device_key(7, ESME, DS)) == raw(derive_device_key(7, ESME, DS))
    assert len({raw(derive_device_key(seed, eui, usage))
                for seed in (0, 1) for eui in (ESME, ESME + 1) for usage in GBCS_KEY_USAGES}) == 8


def test_exported_device_keys_verify_what_the_device_signed(tmp_path: Path) -> None:
    """A user who loads the exported files (as gbcs-parser's key store does) verifies our alerts."""
    written = export_device_keys(tmp_path, [ESME], seed=42)
    assert sorted(p.name for p in written) == ["00db1234567890a0-ds.pem", "00db1234567890a0-ka.pem"]
    assert b"PRIVATE" not in (tmp_path / "00db1234567890a0-ds.pem").read_bytes()
    devices = DeviceKeyStore.for_devices([ESME], seed=42)
    exported = DirectoryKeyStore(tmp_path)
    for usage in GBCS_KEY_USAGES:
        fmt = (serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        assert (exported.entries(ESME, usage)[0].public_key.public_bytes(*fmt)
                == devices.entries(ESME, usage)[0].public_key.public_bytes(*fmt))

    from emulator.gbcs import messages

    alert = messages.fdra_esme_alert(0x7D0, ESME, SUPPLIER, dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc),
                                     bytes(range(32)), verified=True)
    sent = MessageProtection(devices).protect(alert).encode()
    verifier = MessageProtection(CombinedKeyStore([exported, DirectoryKeyStore(KEYSTORE)]))
    assert verifier.verify(decode_message(sent).envelope).signature is Check.VALID
    # and the RTDS device key of the same EUI does not verify it (the emulator's keys are its own)
    assert MessageProtection(DirectoryKeyStore(KEYSTORE)).verify(decode_message(sent).envelope).signature is Check.INVALID


def test_export_with_private_keys_round_trips(tmp_path: Path) -> None:
    export_device_keys(tmp_path, [ESME], seed=3, include_private=True)
    store = DirectoryKeyStore(tmp_path)
    assert (private_key(store, ESME, KA).private_numbers().private_value
            == derive_device_key(3, ESME, KA).private_numbers().private_value)


def test_dccboxed_record_with_an_unreadable_certificate_uses_its_private_key(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """keystore.json 0.4.2 has one certificate cryptography rejects; its private key still serves."""
    key = ec.generate_private_key(ec.SECP256R1())
    broken = "-----BEGIN CERTIFICATE-----\nMAMCAQA=\n-----END CERTIFICATE-----\n"
    path = tmp_path / "keystore.json"
    path.write_text(json.dumps({"90b3d51f30010009": {"digitalSignature": {
        "1": {"certificate": broken, "privateKey": _pem_private(key), "name": "Z1-other-ds", "role": 2}}}}))
    store = DccBoxedKeyStore(path)
    assert "using the public key of its private key" in caplog.text
    data = b"signed"
    assert verify_signature(public_keys(store, 0x90B3D51F30010009, DS)[0], data, sign(key, data))
