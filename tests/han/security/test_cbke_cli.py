"""``ch-emulator cbke``: a test CA that issues certificates the engines accept, inspection of
vendors' test certificates, and one-line errors with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emulator.cli import main
from emulator.han.security.cbke import CbkeIdentity
from emulator.han.security.certificates import CryptoSuite, ImplicitCertificate
from emulator.han.security.test_ca import TEST_ONLY, KeyFileError, TestCertificateAuthority, load_identity

_BESIDE = Path(__file__).resolve().parents[3].parent / "shared" / "vectors" / "cbke"
VECTORS = _BESIDE if _BESIDE.is_dir() else Path("/work/shared/vectors/cbke")
CERTICOM = json.loads((VECTORS / "certicom-test-certificates.json").read_text())


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["cbke", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("suite", ["1", "2"])
def test_issue_writes_an_identity_that_reconstructs_and_inspects(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                  suite: str) -> None:
    code, out, _ = _run(capsys, "issue", "--eui", "00-DB-12-34-56-78-90-A4", "--suite", suite, "-o", str(tmp_path))
    assert code == 0 and "TEST ONLY" in out
    json_file, cert_file = (tmp_path / f"00DB1234567890A4.suite{suite}.{ext}" for ext in ("json", "cert"))
    data = json.loads(json_file.read_text())
    assert data["TEST_ONLY"] == TEST_ONLY
    identity = load_identity(json_file)  # checks d G == e P_U + Q_CA
    assert identity.eui64 == 0x00DB1234567890A4
    assert identity.suite.number == int(suite)
    raw = cert_file.read_bytes()
    assert raw == identity.certificate.encode() and len(raw) == identity.suite.certificate_length

    code, out, _ = _run(capsys, "inspect", str(cert_file), "--json")
    info = json.loads(out)
    assert code == 0
    assert info["subject"] == "00-DB-12-34-56-78-90-A4"
    assert info["issuer_ascii"] == "CHEMTEST" and info["ca"] == "ch-emulator default test CA"
    assert info["public_key"] == data["public_key"]


def test_issue_with_an_own_ca_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ca_file = tmp_path / "ca.json"
    assert _run(capsys, "ca", "-o", str(ca_file), "--issuer", "LABCA-01")[0] == 0
    ca = TestCertificateAuthority.load(ca_file)
    assert ca.issuer == b"LABCA-01" and ca.suite is CryptoSuite.SUITE_2
    code, _, _ = _run(capsys, "issue", "--eui", "0001020304050607", "--ca", str(ca_file), "--valid-from",
                      "1700000000", "--valid-for", "86400", "-o", str(tmp_path))
    assert code == 0
    identity = load_identity(tmp_path / "0001020304050607.suite2.json")
    assert identity.issuer == b"LABCA-01" and identity.ca_public_key == ca.public_key
    assert identity.certificate.expires_at() == 1700000000 + 86400
    # Without --ca the issuer is unknown: fields are shown, the public key needs the CA.
    code, out, _ = _run(capsys, "inspect", str(tmp_path / "0001020304050607.suite2.cert"), "--json")
    assert code == 0 and json.loads(out)["public_key"] is None
    code, out, _ = _run(capsys, "inspect", str(tmp_path / "0001020304050607.suite2.cert"), "--ca", str(ca_file),
                        "--json")
    assert json.loads(out)["public_key"] == identity.suite.curve.compress(identity.public_key()).hex().upper()


@pytest.mark.parametrize("name", ["suite1_sect163k1", "suite2_sect283k1"])
def test_inspect_a_certicom_test_certificate_given_as_hex(capsys: pytest.CaptureFixture[str], name: str) -> None:
    vector = CERTICOM[name]
    code, out, _ = _run(capsys, "inspect", vector["certificate"], "--json")
    info = json.loads(out)
    assert code == 0
    assert info["public_key"].lower() == vector["public_key"]
    assert info["subject"] == "00-22-08-00-00-00-00-01"
    assert info["ca"].startswith("Certicom test CA")


def test_inspect_text_output_names_the_fields(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "inspect", CERTICOM["suite2_sect283k1"]["certificate"])
    assert code == 0
    assert "serial" in out and "0B3AD5A312AB75D6" in out and "valid_to" in out and "never" in out


def test_inspect_flags_a_reconstruction_point_off_the_curve(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = bytearray(bytes.fromhex(CERTICOM["suite1_sect163k1"]["certificate"]))
    cert = ImplicitCertificate.decode(bytes(raw))
    curve = cert.curve
    for delta in range(1, 256):
        raw[1:22] = curve.field.to_bytes(curve.field.from_bytes(cert.public_reconstruction_key[1:]) ^ delta)
        try:
            curve.decompress(bytes(raw[:22]))
        except ValueError:
            break
    path = tmp_path / "bad.cert"
    path.write_text(raw.hex())  # hex text in a file
    code, out, _ = _run(capsys, "inspect", str(path), "--json")
    info = json.loads(out)
    assert code == 1
    assert info["reconstruction_point_valid"] is False and "not the x" in info["problem"]


@pytest.mark.parametrize(("argv", "message"), [
    (["inspect", "0011"], "48 (suite 1) or 74 (suite 2) octets, got 2"),
    (["inspect", "zz"], "neither a file nor hex"),
    (["issue", "--eui", "00-DB", "-o", "x"], "--eui: EUI-64 '00-DB' must have 8 bytes"),
    (["issue", "--eui", "00DB1234567890A4", "--suite", "3", "-o", "x"], "--suite: '3' is not 1 or 2"),
    (["issue", "--eui", "00DB1234567890A4", "--suite", "1", "--valid-for", "10", "-o", "x"], "suite 1"),
    (["issue", "--eui", "00DB1234567890A4", "--ca", "/nonexistent/ca.json", "-o", "x"], "cannot read"),
    (["inspect", CERTICOM["suite2_sect283k1"]["certificate"], "--ca", "0200"], "not a suite 2 CA public key"),
    (["install-code", "83FED3407A939723A5C639B26916D505C3B4"], "CRC is C3B4"),
])
def test_user_mistakes_exit_2_with_one_line(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    code, _, err = _run(capsys, *argv)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_install_code_prints_the_link_key(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "install-code", "83FE D340 7A93 9723 A5C6 39B2 6916 D505 C3B5")
    assert code == 0 and out.strip().endswith("link key 66B6900981E1EE3CA4206B6B861C02BB")


def test_identity_file_with_a_foreign_private_key_is_refused(tmp_path: Path) -> None:
    ca = TestCertificateAuthority.default(CryptoSuite.SUITE_1)
    good, other = ca.issue(1), ca.issue(2)
    from emulator.han.security.test_ca import identity_to_json

    data = identity_to_json(CbkeIdentity(good.certificate, other.private_key, good.ca_public_key))
    path = tmp_path / "mixed.json"
    path.write_text(json.dumps(data))
    with pytest.raises(KeyFileError, match="does not belong"):
        load_identity(path)
