"""What the DSP needs to know about a firmware image in an SR: who it is for.

The DSP checks applicability (manufacturer, image type, hardware range) from the OTA header of the
``FirmwareImage``, read by the project's one image parser (:func:`emulator.ota.image.parse_image`),
so the DSP and the hub can never disagree about what an image is.
"""

from __future__ import annotations

from dataclasses import dataclass

from emulator.ota.image import ImageError, parse_image


@dataclass(frozen=True, slots=True)
class ImageIdentity:
    manufacturer_code: int
    image_type: int
    file_version: int
    min_hardware_version: int | None
    max_hardware_version: int | None
    manufacturer_image_sha256: bytes | None


class FirmwareImageError(ValueError):
    """The image cannot be read; the message names the source, offset and field."""


def read_image_identity(data: bytes, *, source: str = "FirmwareImage") -> ImageIdentity:
    """Identify ``data`` (a whole OTA file); raises :class:`FirmwareImageError` if it cannot."""
    try:
        image = parse_image(data, source=source)
    except ImageError as exc:  # the parser's error names offset and field already
        raise FirmwareImageError(str(exc)) from exc
    header = image.header
    return ImageIdentity(
        manufacturer_code=header.manufacturer_code,
        image_type=header.image_type,
        file_version=header.file_version,
        min_hardware_version=header.min_hardware_version,
        max_hardware_version=header.max_hardware_version,
        manufacturer_image_sha256=image.manufacturer_image_sha256,
    )
