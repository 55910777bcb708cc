"""Parsed OTA files as immutable records, shared by the Comms Hub, the DSP checks and the CLI."""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

from emulator.ota.image.errors import ImageWarning


@dataclass(frozen=True)
class OtaHeader:
    """The OTA header (ZCL 11.4.2); optional fields are ``None`` when field control omits them."""

    header_version: int
    header_length: int
    field_control: int
    manufacturer_code: int
    image_type: int
    file_version: int
    stack_version: int
    header_string: str
    total_image_size: int
    security_credential_version: int | None = None
    upgrade_file_destination: int | None = None
    min_hardware_version: int | None = None
    max_hardware_version: int | None = None

    def accepts_hardware_version(self, hardware_version: int) -> bool:
        """Whether a device with this hardware version may take the image (no range: any)."""
        low = self.min_hardware_version
        high = self.max_hardware_version
        return (low is None or hardware_version >= low) and (high is None or hardware_version <= high)


@dataclass(frozen=True)
class SubElement:
    """One sub-element: ``offset`` is where its tag starts in the OTA file (``OtaImage.data``);
    ``length`` is the number of data bytes that follow the 6-byte tag header."""

    tag: int
    offset: int
    length: int

    @property
    def data_offset(self) -> int:
        return self.offset + 6


@dataclass(frozen=True)
class OtaImage:
    """An OTA file as served: ``data`` is exactly what an OTA server sends from offset 0."""

    header: OtaHeader
    identifier_offset: int
    data: bytes
    layout: str
    elements: tuple[SubElement, ...]
    manufacturer_image: bytes | None
    signature: bytes | None
    warnings: tuple[ImageWarning, ...]

    @functools.cached_property
    def manufacturer_image_sha256(self) -> bytes | None:
        """The GBCS Manufacturer Image Hash that SR 11.3 carries; ``None`` for standard images."""
        if self.manufacturer_image is None:
            return None
        return hashlib.sha256(self.manufacturer_image).digest()

    def element_data(self, element: SubElement) -> bytes:
        return self.data[element.data_offset : element.data_offset + element.length]
