"""``ch-emulator certify image`` on the TEST ONLY samples, the vendor vectors and signed variants."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from certify_paths import KEYSTORE, SAMPLE_FILES, SAMPLE_PUBLIC_KEY, VECTOR_FILES

from emulator.gbcs.codes import DeviceType
from emulator.ota.image import build_image, load_private_key

CLEAN = {
    DeviceType.ESME: ["--image-type", "0x0000",
                      "--cpl-hash", "c73aeda3206254d44f08b804d12aee3bd99b4bdde9eecd33fe05fdb869bc8326"],
    DeviceType.GSME: ["--image-type", "0x0001",
                      "--cpl-hash", "123c4f423a80659c1e3c34aaecb657e21838d1f01cdee8ab8441ad7b7d3603d0"],
    DeviceType.PPMID: ["--image-type", "0x0084",
                       "--cpl-hash", "6d882d9ab7d4fcf66843ef48a6aea26abef05bfe39580966a892c8607ac0c349"],
}
RTDS_SUPPLIER_KEY = KEYSTORE / "90b3d51f30010000-ds.key"  # ZAZ1 Z1-supplier-ds private key, TEST ONLY
RTDS_SUPPLIER_CERT = KEYSTORE / "90b3d51f30010000-ds.pem"


def records(out: str) -> tuple[dict, dict[str, dict], dict]:
    lines = [json.loads(line) for line in out.splitlines()]
    checks = {r["id"]: r for r in lines if r["type"] == "check"}
    return lines[0], checks, lines[-1]


def verdicts(checks: dict[str, dict]) -> dict[str, str]:
    return {check_id: r["verdict"] for check_id, r in checks.items()}


def messages(record: dict) -> str:
    return " | ".join(e["message"] for e in record["evidence"])


@pytest.mark.parametrize("device", list(SAMPLE_FILES), ids=lambda d: d.value)
def test_clean_sample_passes_every_check_that_applies(certify, device: DeviceType) -> None:
    code, out, _ = certify(
        "image", SAMPLE_FILES[device], "--json", "--device-type", device.value, "--hardware", "0x1200",
        "--firmware-version", "ACDCACDD", "--manufacturer", "0x121D", *CLEAN[device],
        "--current-version", "0xACDC0001", "--supplier-key", SAMPLE_PUBLIC_KEY,
        "--deploy-from", "2026-01-01",
    )
    run, checks, summary = records(out)
    assert code == 0 and summary["exit_code"] == 0
    expected = {f"A{n}": "pass" for n in range(1, 13)}
    expected.update({"A10": "not-applicable", "A11": "not-applicable"})
    if device is DeviceType.PPMID:
        expected["A9"] = "not-applicable"
    assert verdicts(checks) == expected
    assert run["image"]["file_sha256"] and run["image"]["layout"] == device.image_layout
    assert run["parameters"]["device_type"] == device.value
    if device is not DeviceType.PPMID:  # the samples' key file says TEST ONLY, so the report does
        assert "published TEST ONLY key" in messages(checks["A9"])
    boundaries = messages(checks["A5"])
    assert "0x1110 rejected (CCS08 2)" in boundaries and "0x1111 accepted" in boundaries
    assert "0x1211 accepted" in boundaries and "0x1212 rejected (CCS08 2)" in boundaries


def test_the_default_supplier_keys_are_zaz1_and_the_samples_are_not_signed_with_them(certify) -> None:
    code, out, _ = certify("image", SAMPLE_FILES[DeviceType.ESME], "--json", "--only", "A9")
    _, checks, _ = records(out)
    assert code == 1
    text = messages(checks["A9"])
    assert "default ZAZ1 supplier keys (TEST ONLY)" in text
    assert "Z1-supplier-ds" in text and "Z1b-supplier-ds" in text


@pytest.fixture
def zaz1_signed(tmp_path: Path) -> Path:
    """An ESME image signed with the RTDS keystore's ZAZ1 supplier DS private key (TEST ONLY)."""
    data = build_image(bytes(range(256)) * 64, manufacturer_code=0x121D, image_type=0x0000,
                       file_version=0xACDCACDE, min_hardware_version=0x1111,
                       max_hardware_version=0x1211, layout="gbcs",
                       signing_key=load_private_key(RTDS_SUPPLIER_KEY))
    path = tmp_path / "zaz1-signed-TEST-ONLY.ota"
    path.write_bytes(data)
    return path


def test_a_zaz1_signed_image_verifies_with_the_default_key_and_its_expiry_is_flagged(certify, zaz1_signed) -> None:
    code, out, _ = certify("image", zaz1_signed, "--json", "--only", "A9,A10", "--deploy-from", "2026-01-01")
    _, checks, _ = records(out)
    assert code == 0
    assert checks["A9"]["verdict"] == "pass"
    assert "ZAZ1 Z1-supplier-ds (TEST ONLY)" in messages(checks["A9"])
    assert "TEST ONLY key" in messages(checks["A9"])
    assert checks["A10"]["verdict"] == "warn"
    expiry = next(e for e in checks["A10"]["evidence"] if e.get("field") == "supplier certificate")
    assert expiry["found"] == "2015-10-30..2025-10-29"
    code, out, _ = certify("image", zaz1_signed, "--json", "--only", "A10",
                           "--deploy-from", "2025-01-01", "--deploy-until", "2025-06-30")
    assert records(out)[1]["A10"]["verdict"] == "pass"


def test_supplier_key_may_be_a_certificate(certify, zaz1_signed) -> None:
    code, out, _ = certify("image", zaz1_signed, "--json", "--only", "A9", "--supplier-key", RTDS_SUPPLIER_CERT)
    assert code == 0
    assert "serial 4FBC525201A1D7586C1BC1C4734DEB9F" in messages(records(out)[1]["A9"])


# --- the vendor vectors: ordinary ZigBee OTA files ---------------------------------------------

VECTOR_VERDICTS = {
    # file prefix: verdicts of the checks that do not come out not-applicable without options
    "integrity-code": {"A1": "pass", "A2": "pass", "A5": "warn", "A6": "pass", "A7": "pass"},
    "manuf-tags": {"A1": "pass", "A2": "pass", "A5": "pass", "A6": "pass", "A7": "pass"},
    "padded": {"A1": "warn", "A2": "fail", "A5": "pass", "A6": "pass", "A7": "pass"},
    "telink": {"A1": "pass", "A2": "pass", "A5": "pass", "A6": "pass", "A7": "warn"},
    "zbminir2": {"A1": "pass", "A2": "pass", "A5": "pass", "A6": "pass", "A7": "pass"},
}


@pytest.mark.parametrize("path", VECTOR_FILES, ids=lambda p: p.name[:24])
def test_vendor_zigbee_files_leave_the_gbcs_checks_not_applicable(certify, path: Path) -> None:
    code, out, _ = certify("image", path, "--json")
    _, checks, _ = records(out)
    expected = next(v for prefix, v in VECTOR_VERDICTS.items() if path.name.startswith(prefix))
    found = verdicts(checks)
    assert {k: v for k, v in found.items() if v != "not-applicable"} == expected
    for gbcs_only in ("A8", "A9"):
        assert "ZigBee" in messages(checks[gbcs_only])
    assert code == (1 if "fail" in expected.values() else 0)


def test_padded_vendor_file_names_prefix_and_trailing_bytes(certify) -> None:
    path = next(p for p in VECTOR_FILES if p.name.startswith("padded"))
    _, out, _ = certify("image", path, "--json", "--only", "A1,A2")
    _, checks, _ = records(out)
    prefix = checks["A1"]["evidence"][0]
    assert prefix["found"] == "offset 616" and prefix["offset"] == 0
    trailing = next(e for e in checks["A2"]["evidence"] if e["message"].startswith("trailing-data"))
    assert "512 bytes" in trailing["message"]


@pytest.mark.parametrize("path", VECTOR_FILES[:2], ids=lambda p: p.name[:24])
def test_vendor_files_checked_as_a_gbcs_meter_fail_with_a_clear_finding(certify, path: Path) -> None:
    code, out, _ = certify("image", path, "--json", "--device-type", "ESME", "--only", "A7,A8,A9")
    _, checks, _ = records(out)
    assert code == 1
    assert verdicts(checks) == {"A7": "fail", "A8": "fail", "A9": "fail"}
    assert "this file reads as layout standard" in messages(checks["A7"])
    assert "no GBCS Manufacturer Image" in messages(checks["A8"])
    assert "has none" in messages(checks["A9"])


# --- files that do not parse, and user mistakes ------------------------------------------------


def test_a_file_that_does_not_parse_fails_its_check_and_the_others_say_why(certify, tmp_path: Path) -> None:
    path = tmp_path / "truncated.ota"
    path.write_bytes(SAMPLE_FILES[DeviceType.ESME].read_bytes()[:-100])
    code, out, _ = certify("image", path, "--json")
    run, checks, _ = records(out)
    assert code == 1
    assert checks["A2"]["verdict"] == "fail"
    assert checks["A2"]["evidence"][0]["offset"] == 52
    assert checks["A2"]["evidence"][0]["field"] == "total_image_size"
    assert "49278 bytes announced" in messages(checks["A2"])
    others = [r for check_id, r in checks.items() if check_id != "A2"]
    assert all(r["verdict"] == "not-applicable" and "A2 fails" in messages(r) for r in others)
    assert "parse_error" in run["image"]


def test_not_an_ota_file_fails_a1(certify, tmp_path: Path) -> None:
    path = tmp_path / "firmware.bin"
    path.write_bytes(b"\x7fELF" + bytes(200))
    code, out, _ = certify("image", path, "--json", "--only", "A1")
    assert code == 1
    assert "identifier" in messages(records(out)[1]["A1"])


@pytest.mark.parametrize("args, message", [
    (["missing.ota"], "missing.ota: cannot read"),
    (["SAMPLE", "--hardware", "0x10000"], "--hardware"),
    (["SAMPLE", "--cpl-hash", "abc"], "--cpl-hash: 'abc' is not a SHA-256"),
    (["SAMPLE", "--firmware-version", "v1.2"], "--firmware-version"),
    (["SAMPLE", "--only", "B1"], "B1 is a group B check (The OTA client"),
    (["SAMPLE", "--supplier-key", "PRIVATE"], "holds a private key"),
    (["SAMPLE", "--supplier-key", "missing.pem"], "missing.pem: cannot read"),
    (["SAMPLE", "--deploy-from", "2026-02-01", "--deploy-until", "2026-01-01"], "before --deploy-from"),
    (["SAMPLE", "--deploy-from", "tomorrow"], "--deploy-from: 'tomorrow' is not a date"),
    (["SAMPLE", "--zigbee-signer", "00-DB-12"], "--zigbee-signer: '00-DB-12' is not an EUI-64"),
    (["SAMPLE", "--zigbee-ca", "0400"], "--zigbee-ca: '0400' is not a compressed sect283k1 point"),
])
def test_user_mistakes_exit_2_with_one_line(certify, tmp_path: Path, args: list[str], message: str) -> None:
    replace = {"SAMPLE": str(SAMPLE_FILES[DeviceType.ESME]),
               "PRIVATE": str(SAMPLE_FILES[DeviceType.ESME].parent / "TEST-ONLY-signing-key.pem"),
               "missing.ota": str(tmp_path / "missing.ota"), "missing.pem": str(tmp_path / "missing.pem")}
    code, out, err = certify("image", *[replace.get(a, a) for a in args])
    assert code == 2 and out == ""
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_unknown_device_type_is_refused_by_argparse(certify) -> None:
    with pytest.raises(SystemExit) as exc:
        certify("image", SAMPLE_FILES[DeviceType.ESME], "--device-type", "TOASTER")
    assert exc.value.code == 2


def test_text_output_lists_every_check_with_its_evidence(certify) -> None:
    code, out, _ = certify("image", SAMPLE_FILES[DeviceType.PPMID], "--supplier-key", SAMPLE_PUBLIC_KEY)
    assert code == 0
    for n in range(1, 13):
        assert f"\nA{n} " in out
    assert "[offset 52, total_image_size] total image size 24636 equals the file length" in out
    assert out.rstrip().endswith("not-applicable)")


def test_the_vendor_vectors_are_there() -> None:
    assert len(VECTOR_FILES) == 5  # an empty parametrize would pass vacuously
