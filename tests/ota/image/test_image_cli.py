"""``ch-emulator image ...`` driven through emulator.cli.main, as a user would run it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ota_image_builders import VECTOR_FILES, element, ota_file

from emulator.cli import main

BUILD = ["--manufacturer", "0x121D", "--image-type", "0x0000", "--file-version", "0xACDCACDD",
         "--min-hw", "0x1111", "--max-hw", "4625"]


@pytest.fixture
def keys(tmp_path: Path, capsys) -> tuple[Path, Path]:
    private, public = tmp_path / "test-key.pem", tmp_path / "test-pub.pem"
    assert main(["image", "keygen", "--private-key", str(private), "--public-key", str(public)]) == 0
    capsys.readouterr()
    return private, public


@pytest.fixture
def payload(tmp_path: Path) -> Path:
    path = tmp_path / "payload.bin"
    path.write_bytes(bytes(range(251)) * 80)
    return path


def one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err
    return lines[0]


def test_keygen_says_test_only_and_refuses_to_overwrite(tmp_path: Path, capsys) -> None:
    private, public = tmp_path / "a.pem", tmp_path / "b.pem"
    assert main(["image", "keygen", "--private-key", str(private), "--public-key", str(public)]) == 0
    assert "TEST ONLY" in capsys.readouterr().out
    assert private.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert public.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    assert main(["image", "keygen", "--private-key", str(private), "--public-key", str(public)]) == 2
    assert "--force" in one_error_line(capsys)


def test_build_inspect_verify(tmp_path: Path, keys, payload: Path, capsys) -> None:
    out = tmp_path / "esme.ota"
    code = main(["image", "build", str(payload), "-o", str(out), *BUILD, "--header-string", "ESME",
                 "--signing-key", str(keys[0])])
    assert code == 0
    assert str(out) in capsys.readouterr().out

    assert main(["image", "inspect", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["layout"] == "gbcs"
    assert (report["manufacturer_code"], report["image_type"], report["file_version"]) == (0x121D, 0, 0xACDCACDD)
    assert (report["min_hardware_version"], report["max_hardware_version"]) == (0x1111, 0x1211)
    assert report["header_length"] == 60 and report["field_control"] == 4
    assert report["total_image_size"] == out.stat().st_size
    assert report["identifier_offset"] == 0 and report["elements"] == [] and report["warnings"] == []
    import hashlib
    assert report["manufacturer_image_sha256"] == hashlib.sha256(payload.read_bytes()).hexdigest()

    assert main(["image", "inspect", str(out)]) == 0
    text = capsys.readouterr().out
    assert "0x121D" in text and "0xACDCACDD" in text and "warnings: none" in text

    assert main(["image", "verify", str(out), "--public-key", str(keys[1])]) == 0
    assert capsys.readouterr().out.strip() == "signature valid"


def test_verify_failures_exit_1_with_a_reason(tmp_path: Path, keys, payload: Path, capsys) -> None:
    signed, ppmid, unsigned = tmp_path / "s.ota", tmp_path / "p.ota", tmp_path / "u.ota"
    main(["image", "build", str(payload), "-o", str(signed), *BUILD, "--signing-key", str(keys[0])])
    main(["image", "build", str(payload), "-o", str(ppmid), *BUILD, "--layout", "gbcs-ppmid"])
    main(["image", "build", str(payload), "-o", str(unsigned), *BUILD])
    other_private, other_public = tmp_path / "o.pem", tmp_path / "op.pem"
    main(["image", "keygen", "--private-key", str(other_private), "--public-key", str(other_public)])
    capsys.readouterr()

    assert main(["image", "verify", str(signed), "--public-key", str(other_public)]) == 1
    assert "signature invalid" in capsys.readouterr().out
    assert main(["image", "verify", str(ppmid), "--public-key", str(keys[1])]) == 1
    assert "no signature" in capsys.readouterr().out
    assert main(["image", "verify", str(unsigned), "--public-key", str(keys[1])]) == 1
    assert "unsigned" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--manufacturer", "0xZZ"], "--manufacturer: '0xZZ' is not a number"),
        (["--image-type", "0x10000"], "--image-type: 0x10000 is outside"),
        (["--file-version", "-1"], "--file-version: -1 is outside"),
        (["--min-hw", "0x0300", "--max-hw", "0x0200"], "--min-hw 0x0300 is above --max-hw 0x0200"),
        (["--header-string", "x" * 40], "header_string"),
        (["--layout", "standard", "--signing-key", "k.pem"], "--signing-key: layout standard"),
    ],
)
def test_build_rejects_bad_values_in_one_line(tmp_path: Path, payload: Path, capsys, args, expected) -> None:
    base = dict(zip(BUILD[::2], BUILD[1::2]))
    base.update(dict(zip(args[::2], args[1::2])))
    argv = ["image", "build", str(payload), "-o", str(tmp_path / "x.ota")]
    for option, value in base.items():
        argv += [option, value]
    assert main(argv) == 2
    assert expected in one_error_line(capsys)
    assert not (tmp_path / "x.ota").exists()


def test_build_with_missing_inputs(tmp_path: Path, payload: Path, capsys) -> None:
    assert main(["image", "build", str(tmp_path / "nope.bin"), "-o", str(tmp_path / "x"), *BUILD]) == 2
    assert "nope.bin: cannot read" in one_error_line(capsys)
    assert main(["image", "build", str(payload), "-o", str(tmp_path / "x"), *BUILD,
                 "--signing-key", str(tmp_path / "nokey.pem")]) == 2
    assert "nokey.pem: cannot read" in one_error_line(capsys)
    assert main(["image", "build", str(payload), "-o", str(tmp_path / "x"), *BUILD,
                 "--signing-key", str(payload)]) == 2
    assert "not an unencrypted PEM private key" in one_error_line(capsys)


def test_inspect_errors_are_one_line(tmp_path: Path, capsys) -> None:
    assert main(["image", "inspect", str(tmp_path / "missing.ota")]) == 2
    line = one_error_line(capsys)
    assert "missing.ota" in line and "No such file" in line

    text = tmp_path / "notes.txt"
    text.write_text("not firmware\n")
    assert main(["image", "inspect", str(text)]) == 2
    assert "not an OTA file" in one_error_line(capsys)

    truncated = tmp_path / "cut.ota"
    truncated.write_bytes(ota_file(element(0, b"x" * 100))[:-5])
    assert main(["image", "inspect", str(truncated), "--json"]) == 2
    assert "offset 52 (total_image_size)" in one_error_line(capsys)


def test_verify_with_a_bad_public_key_file(tmp_path: Path, keys, payload: Path, capsys) -> None:
    out = tmp_path / "s.ota"
    main(["image", "build", str(payload), "-o", str(out), *BUILD, "--signing-key", str(keys[0])])
    capsys.readouterr()
    assert main(["image", "verify", str(out), "--public-key", str(payload)]) == 2
    assert "not a PEM public key" in one_error_line(capsys)


@pytest.mark.skipif(not VECTOR_FILES, reason="vendor vectors not present")
def test_inspect_json_of_a_messy_vendor_file(capsys) -> None:
    (path,) = [p for p in VECTOR_FILES if p.name.startswith("padded")]
    assert main(["image", "inspect", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["identifier_offset"] == 616
    assert report["manufacturer_image_sha256"] is None and report["layout"] == "standard"
    assert report["elements"][0]["tag"] == 0 and report["elements"][0]["offset"] == 56
    assert [w.split(" ")[0] for w in report["warnings"]] == ["vendor-prefix", "trailing-data"]

    assert main(["image", "inspect", str(path)]) == 0
    text = capsys.readouterr().out
    assert "vendor-prefix at offset 0" in text and "upgrade-image" in text


def test_inspect_with_forced_layout(tmp_path: Path, payload: Path, capsys) -> None:
    out = tmp_path / "p.ota"
    main(["image", "build", str(payload), "-o", str(out), *BUILD, "--layout", "gbcs-ppmid"])
    capsys.readouterr()
    assert main(["image", "inspect", str(out), "--json", "--layout", "standard"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["layout"] == "standard" and report["manufacturer_image_sha256"] is None
    assert any(w.startswith("element-overrun at offset 60") for w in report["warnings"])
