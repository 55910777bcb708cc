"""Fixtures for the certify tests: the TEST ONLY samples, shared/ vectors, a CLI runner."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from emulator.certify.image_run import DeviceType
from emulator.certify.mutations import Samples
from emulator.cli import main
from emulator.ota.image import load_private_key

REPO = Path(__file__).resolve().parents[2]
SAMPLES_DIR = REPO / "firmware_images"
SAMPLE_FILES = {
    DeviceType.ESME: SAMPLES_DIR / "esme-121D-0000-ACDCACDD-TEST-ONLY.ota",
    DeviceType.GSME: SAMPLES_DIR / "gsme-121D-0001-ACDCACDD-TEST-ONLY.ota",
    DeviceType.PPMID: SAMPLES_DIR / "ppmid-121D-0084-ACDCACDD-TEST-ONLY.ota",
}
SAMPLE_PUBLIC_KEY = SAMPLES_DIR / "TEST-ONLY-public-key.pem"


def shared_dir() -> Path:
    """shared/ lies beside the repository (a CI clone gets a copy there); /work/shared otherwise."""
    beside = REPO.parent / "shared"
    return beside if beside.is_dir() else Path("/work/shared")


VECTORS = shared_dir() / "vectors" / "ota"
KEYSTORE = shared_dir() / "vectors" / "gbcs" / "keystore"
PRECERT_DOC = shared_dir() / "docs" / "precert-checks.md"
VECTOR_FILES = sorted(p for p in VECTORS.glob("*") if p.suffix != ".md")


@pytest.fixture(scope="session")
def samples() -> Samples:
    files = {device: path.read_bytes() for device, path in SAMPLE_FILES.items()}
    return Samples.from_files(files, load_private_key(SAMPLES_DIR / "TEST-ONLY-signing-key.pem"))


@pytest.fixture
def certify(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """Run ``ch-emulator certify ARGS``; returns (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        code = main(["certify", *map(str, args)])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run
