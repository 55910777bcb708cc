"""Where the certify tests find the TEST ONLY samples and the shared/ vectors (a module with a
unique name, so ``from certify_paths import ...`` cannot pick up another folder's conftest)."""

from __future__ import annotations

from pathlib import Path

from emulator.gbcs.codes import DeviceType

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
