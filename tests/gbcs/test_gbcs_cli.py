"""``ch-emulator gbcs decode`` and ``ch-emulator keys export`` driven as a user runs them."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from gbcs_vectors import KEYSTORE, RTDS, read_vector

from emulator.cli import main

CS06_COMMAND = RTDS / "11.3_CS06" / "CS06_11.3_IMMEDIATE_SUCCESS_COMMAND_GBCS.HEX"
CCS08 = RTDS / "NA_CCS08" / "CCS08_NA_NA_ALERT_GBCS.HEX"


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err
    return lines[0]


def test_decode_file_with_keystore_prints_fields_and_verdict(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gbcs", "decode", str(CS06_COMMAND), "--keystore", str(KEYSTORE)]) == 0
    out = capsys.readouterr().out
    assert "message_code_name: CS06_ACTIVATE_FIRMWARE" in out
    assert "originator: 90-B3-D5-1F-30-01-00-00" in out and "originator_counter: 1000" in out
    assert "manufacturer_image_hash: AA758690730934FF" in out
    assert "signature: valid" in out and "mac: valid" in out


@pytest.mark.parametrize("encoding", ["hex", "base64"])
def test_decode_hex_or_base64_argument_as_json(encoding: str, capsys: pytest.CaptureFixture[str]) -> None:
    raw = read_vector(CCS08)
    text = raw.hex() if encoding == "hex" else base64.b64encode(raw).decode()
    assert main(["gbcs", "decode", text, "--json", "--keystore", str(KEYSTORE)]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["grouping_header"]["message_code"] == "0x0128"
    assert document["grouping_header"]["cra_flag"] == "ALERT"
    assert document["payload"]["entity_id"] == "00-DB-12-34-56-78-90-A4"
    assert document["payload"]["response_code"] == "TRANSFERRED"
    assert document["verification"] == {"signature": "valid", "mac": "absent", "expected_protection": "signed (DF)",
                                         "ok": True, "detail": ""}


def test_decode_without_keystore_says_not_checked(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gbcs", "decode", str(CCS08)]) == 0
    assert "verification: not checked (no --keystore)" in capsys.readouterr().out


def test_tampered_message_decodes_but_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    raw = bytearray(read_vector(CCS08))
    raw[-1] ^= 0xFF
    assert main(["gbcs", "decode", raw.hex(), "--keystore", str(KEYSTORE)]) == 1
    assert "signature: INVALID" in capsys.readouterr().out


@pytest.mark.parametrize(("argument", "message"), [
    ("DF0901", "not a valid GBCS message: originator counter at offset 3"),
    ("hello", "argument: not a GBCS message (DD or DF) in hex or base64, and no such file"),
    ("", "argument: empty message"),
])
def test_bad_input_is_one_line_and_exit_2(argument: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gbcs", "decode", argument]) == 2
    assert message in _one_error_line(capsys)


def test_missing_keystore_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gbcs", "decode", str(CCS08), "--keystore", str(tmp_path / "nope")]) == 2
    assert "does not exist" in _one_error_line(capsys)


def test_a_keystore_record_whose_key_is_not_its_certificates_is_named_by_both_clis(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """One loader serves GBCS and DUIS: both commands name the same file, entry and key name."""
    from cryptography.hazmat.primitives import serialization

    certificate = (KEYSTORE / "90b3d51f30010000-ds.pem").read_text()
    wrong_key = (KEYSTORE / "90b3d51f30000002-ds.key").read_bytes()
    key = serialization.load_pem_private_key(wrong_key, password=None)
    path = tmp_path / "keystore.json"
    path.write_text(json.dumps({"90b3d51f30010000": {"digitalSignature": {"1059": {
        "certificate": certificate, "name": "Z1-supplier-ds", "role": 2,
        "privateKey": key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()).decode()}}}}))
    expected = f"{path}: 90b3d51f30010000/digitalSignature/1059 (Z1-supplier-ds): the private key does not belong"
    assert main(["gbcs", "decode", str(CCS08), "--keystore", str(path)]) == 2
    assert expected in _one_error_line(capsys)
    assert main(["serve", "--keystore", str(path), "--db", ":memory:"]) == 2
    assert expected in _one_error_line(capsys)


def test_binary_file_decodes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "alert.bin"
    path.write_bytes(read_vector(CCS08))
    assert main(["gbcs", "decode", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["envelope"] == "General-Signing (DF)"


def test_keys_export_then_decode_verifies_an_emulated_device(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import datetime as dt

    from emulator.gbcs import messages
    from emulator.gbcs.protection import MessageProtection
    from emulator.keys.devices import DeviceKeyStore

    esme = 0x00DB1234567890A0
    assert main(["keys", "export", str(tmp_path / "keys"), "--seed", "5", "--device", "00-DB-12-34-56-78-90-A0"]) == 0
    assert "TEST ONLY" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "keys").iterdir()) == ["00db1234567890a0-ds.pem", "00db1234567890a0-ka.pem"]
    alert = messages.generic_alert(9, esme, 0x90B3D51F30010000, 0x8F43,
                                   dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc), dlms_device=True, critical=True)
    sent = MessageProtection(DeviceKeyStore.for_devices([esme], seed=5)).protect(alert).encode()
    assert main(["gbcs", "decode", sent.hex(), "--keystore", str(tmp_path / "keys")]) == 0
    assert "signature: valid" in capsys.readouterr().out


def test_keys_export_rejects_a_bad_eui(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "export", str(tmp_path), "--device", "00-DB-12"]) == 2
    assert "--device" in _one_error_line(capsys)


def test_keys_export_defaults_to_the_demo_scenario_and_its_seed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """What the demo's devices sign verifies with what `keys export` writes by default."""
    from emulator.gbcs.flow import scenario_key_store
    from emulator.keys.devices import DeviceKeyStore
    from emulator.keys.store import DirectoryKeyStore, KeyUsage, public_keys

    assert main(["keys", "export", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "(seed 1)" in out and "00-DB-12-34-56-78-90-A4" in out
    assert not list(tmp_path.glob("*.key"))
    ppmid = 0x00DB1234567890A4
    exported = DirectoryKeyStore(tmp_path).entries(ppmid, KeyUsage.DIGITAL_SIGNATURE)[0].public_key
    demo = public_keys(scenario_key_store(1), ppmid, KeyUsage.DIGITAL_SIGNATURE)[0]
    assert exported.public_numbers() == demo.public_numbers()
    assert exported.public_numbers() != DeviceKeyStore.for_devices([ppmid], seed=0).entries(
        ppmid, KeyUsage.DIGITAL_SIGNATURE)[0].public_key.public_numbers()


def test_keys_export_names_a_missing_scenario(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "export", str(tmp_path), "--scenario", str(tmp_path / "nope.toml")]) == 2
    assert "nope.toml" in _one_error_line(capsys)


def test_decode_a_message_outside_the_flow_shows_envelope_and_verifies(capsys: pytest.CaptureFixture[str]) -> None:
    """Any GBCS message (here 8.9 CCS06, not modelled) decodes to its envelope and raw content."""
    path = next((RTDS / "8.9_CCS06").glob("*COMMAND_GBCS.HEX"))
    assert main(["gbcs", "decode", str(path), "--json", "--keystore", str(KEYSTORE)]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["payload"]["type"] == "UnmodelledPayload"
    assert document["grouping_header"]["message_code_name"].startswith("unknown 0x")
    assert document["verification"]["ok"] is True


def test_decode_a_ccs01_join_command_shows_its_device_log_entry(capsys: pytest.CaptureFixture[str]) -> None:
    """8.11 CCS01 is modelled: the device, install code and JoinTimePeriod it carries are shown."""
    path = RTDS / "8.11_CCS01" / "CCS01_8.11_SUCCESS_COMMAND_GBCS.HEX"
    assert main(["gbcs", "decode", str(path), "--json", "--keystore", str(KEYSTORE)]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["grouping_header"]["message_code_name"] == "CCS01_ADD_DEVICE_TO_CHF_DEVICE_LOG"
    assert document["payload"]["type"] == "AddDeviceToLog"
    assert document["payload"]["join_time_period"] == 90
    assert document["verification"]["ok"] is True


def test_gbcs_decode_verifies_what_the_demo_emits_with_the_exported_keys(tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """A user's round trip: run the demo, export the keys, decode and verify each GBCSPayload."""
    from emulator.gbcs.flow import remote_party_keys_dir

    assert main(["demo", "--json"]) == 0
    payloads = [e["gbcs_payload"] for e in map(json.loads, capsys.readouterr().out.splitlines()) if e.get("gbcs_payload")]
    assert len(payloads) >= 3
    assert main(["keys", "export", str(tmp_path)]) == 0
    capsys.readouterr()
    for payload in payloads:
        assert main(["gbcs", "decode", payload, "--keystore", str(tmp_path),
                     "--keystore", str(remote_party_keys_dir()), "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["verification"]["ok"] is True
