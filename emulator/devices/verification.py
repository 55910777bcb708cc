"""How an emulated device checks a downloaded image before it reports Upgrade End SUCCESS."""

from __future__ import annotations

from typing import Sequence

from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey

from emulator.ota.image import ImageError, parse_image, verify_image


# Findings that mean the bytes are not what the vendor built: a device refuses such an image.
_FATAL_WARNINGS = frozenset({"integrity-code-mismatch", "integrity-code-length", "element-overrun"})


TrustedKeys = EllipticCurvePublicKey | Sequence[EllipticCurvePublicKey] | None
"""One key, several (any may have signed), or None: signatures are not checked."""


def make_verifier(manufacturer_code: int, image_type: int, public_key: TrustedKeys = None):
    """A verifier that parses the OTA file, checks it is for this device model, checks the
    image's integrity code where it has one and, where the layout carries a signature and a key
    is trusted, the signature."""

    keys: tuple[EllipticCurvePublicKey, ...] = (
        () if public_key is None else (public_key,) if isinstance(public_key, EllipticCurvePublicKey)
        else tuple(public_key)
    )

    def verify(data: bytes) -> str | None:
        try:
            image = parse_image(data, source="downloaded image")
        except ImageError as exc:
            return str(exc)
        header = image.header
        if (header.manufacturer_code, header.image_type) != (manufacturer_code, image_type):
            return (
                f"image is for manufacturer 0x{header.manufacturer_code:04X} type 0x{header.image_type:04X},"
                f" not this device (0x{manufacturer_code:04X}/0x{image_type:04X})"
            )
        for warning in image.warnings:
            if warning.code in _FATAL_WARNINGS:
                return str(warning)  # the image's own hash does not match its contents
        if image.layout == "gbcs" and keys and not any(verify_image(image, key) for key in keys):
            return "GBCS signature does not verify with any trusted key"
        return None

    return verify


def manufacturer_image_hash(data: bytes) -> bytes | None:
    """SHA-256 of the Manufacturer Image (what SR 11.3 carries), or None if not a GBCS image."""
    try:
        return parse_image(data, source="held image").manufacturer_image_sha256
    except ImageError:
        return None
