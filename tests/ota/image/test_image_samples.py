"""The committed firmware_images/ samples: parse, verify, and equal what make_samples.py builds."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from emulator.ota.image import load_image, load_private_key, load_public_key, verify_image

FOLDER = Path(__file__).resolve().parents[3] / "firmware_images"


def _load_script():
    spec = importlib.util.spec_from_file_location("make_samples", FOLDER / "make_samples.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("make_samples", module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


make_samples = _load_script()
SPECS = make_samples.SAMPLES


@pytest.fixture(scope="module")
def public_key():
    return load_public_key(FOLDER / make_samples.PUBLIC_KEY_NAME)


def test_samples_cover_the_three_device_types() -> None:
    assert {(s.device_type, s.image_type, s.layout) for s in SPECS} == {
        ("PPMID", 0x0084, "gbcs-ppmid"), ("ESME", 0x0000, "gbcs"), ("GSME", 0x0001, "gbcs")
    }
    for spec in SPECS:
        assert "TEST-ONLY" in spec.file_name


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.device_type)
def test_committed_sample_parses_with_expected_header(spec, public_key) -> None:
    image = load_image(FOLDER / spec.file_name)
    assert image.warnings == ()
    assert image.layout == spec.layout  # detected, not forced
    header = image.header
    assert (header.manufacturer_code, header.image_type) == (0x121D, spec.image_type)
    assert header.file_version == 0xACDCACDD
    assert header.file_version > 0xACDCACDC  # newer than every device's current version
    assert (header.min_hardware_version, header.max_hardware_version) == (0x1111, 0x1211)
    assert 16 * 1024 <= len(image.manufacturer_image) <= 64 * 1024
    assert verify_image(image, public_key) is (spec.layout == "gbcs")


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.device_type)
def test_committed_sample_equals_a_rebuild(spec) -> None:
    signing_key = load_private_key(FOLDER / make_samples.PRIVATE_KEY_NAME)
    rebuilt = make_samples.build_sample(spec, signing_key)
    committed = (FOLDER / spec.file_name).read_bytes()
    committed_image = load_image(FOLDER / spec.file_name)
    rebuilt_entry = make_samples.manifest_entry(spec, rebuilt)
    assert committed_image.manufacturer_image_sha256.hex() == rebuilt_entry["manufacturer_image_sha256"]
    assert committed_image.header.total_image_size == rebuilt_entry["total_image_size"]
    assert rebuilt == committed  # RFC 6979 signing makes even the signatures reproducible


def test_manifest_matches_the_committed_files() -> None:
    manifest = json.loads((FOLDER / make_samples.MANIFEST_NAME).read_text())
    entries = {entry["file"]: entry for entry in manifest["samples"]}
    assert set(entries) == {spec.file_name for spec in SPECS}
    for spec in SPECS:
        data = (FOLDER / spec.file_name).read_bytes()
        assert entries[spec.file_name] == make_samples.manifest_entry(spec, data)


def test_script_reproduces_the_folder(tmp_path: Path, capsys) -> None:
    (tmp_path / make_samples.PRIVATE_KEY_NAME).write_bytes((FOLDER / make_samples.PRIVATE_KEY_NAME).read_bytes())
    assert make_samples.main([str(tmp_path)]) == 0
    for name in [spec.file_name for spec in SPECS] + [make_samples.MANIFEST_NAME]:
        assert (tmp_path / name).read_bytes() == (FOLDER / name).read_bytes(), name
