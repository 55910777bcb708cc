"""Where the sample images and the TEST ONLY key live (``firmware_images/`` in the repository)."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey

SAMPLES_DIR = Path(__file__).resolve().parents[2] / "firmware_images"
PUBLIC_KEY = SAMPLES_DIR / "TEST-ONLY-public-key.pem"


def sample_path(device_type: str, image_type: int, file_version: int = 0xACDCACDD,
                manufacturer_code: int = 0x121D) -> Path:
    return SAMPLES_DIR / f"{device_type.lower()}-{manufacturer_code:04X}-{image_type:04X}-{file_version:08X}-TEST-ONLY.ota"


def load_sample(device_type: str, image_type: int) -> bytes:
    path = sample_path(device_type, image_type)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(
            f"sample image {path} is missing: run `python firmware_images/make_samples.py`"
        ) from None


def trusted_key() -> EllipticCurvePublicKey | None:
    from emulator.ota.image import load_public_key

    return load_public_key(str(PUBLIC_KEY)) if PUBLIC_KEY.exists() else None
