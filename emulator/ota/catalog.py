"""Images the OTA server can offer: to everyone, or targeted at named devices.

A Comms Hub receives an image from the WAN for a list of target devices; only those may be
offered it. Each image's bytes are held once however many devices download it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from emulator.runtime.records import reduce_by_init_fields


@dataclass(frozen=True, slots=True)
class ServedImage:
    """An OTA file as served from offset 0 (header included), with the header values matched on."""

    manufacturer_code: int
    image_type: int
    file_version: int
    data: bytes = field(repr=False)
    min_hardware_version: int | None = None
    max_hardware_version: int | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        return reduce_by_init_fields(self)  # pickled and copied alike in the compiled build

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def key(self) -> tuple[int, int, int]:
        return (self.manufacturer_code, self.image_type, self.file_version)

    def fits_hardware(self, hardware_version: int | None) -> bool:
        if hardware_version is None:
            return True
        if self.min_hardware_version is not None and hardware_version < self.min_hardware_version:
            return False
        if self.max_hardware_version is not None and hardware_version > self.max_hardware_version:
            return False
        return True

    @classmethod
    def from_ota_image(cls, image: "object") -> "ServedImage":
        """From an :class:`emulator.ota.image.OtaImage` (duck-typed to keep layers apart)."""
        header = image.header  # type: ignore[attr-defined]
        return cls(
            manufacturer_code=header.manufacturer_code,
            image_type=header.image_type,
            file_version=header.file_version,
            data=bytes(image.data),  # type: ignore[attr-defined]
            min_hardware_version=header.min_hardware_version,
            max_hardware_version=header.max_hardware_version,
        )


class ImageCatalog:
    __slots__ = ("_global", "_targeted", "_by_key")  # one per hub of a fleet

    def __init__(self) -> None:
        self._global: dict[tuple[int, int], list[ServedImage]] = {}
        self._targeted: dict[int, list[ServedImage]] = {}
        self._by_key: dict[tuple[int, int, int], ServedImage] = {}

    def _intern(self, image: ServedImage) -> ServedImage:
        existing = self._by_key.get(image.key)
        if existing is not None and existing.data == image.data:
            return existing
        self._by_key[image.key] = image
        return image

    def add(self, image: ServedImage) -> ServedImage:
        """Offer ``image`` to every device whose manufacturer and image type match."""
        image = self._intern(image)
        bucket = self._global.setdefault((image.manufacturer_code, image.image_type), [])
        bucket[:] = [i for i in bucket if i.file_version != image.file_version] + [image]
        return image

    def target(self, image: ServedImage, devices: Iterable[int]) -> ServedImage:
        """Offer ``image`` only to ``devices``; it replaces any earlier targeted image of the same
        manufacturer and type for those devices."""
        image = self._intern(image)
        for device in devices:
            images = self._targeted.setdefault(device, [])
            images[:] = [
                i
                for i in images
                if (i.manufacturer_code, i.image_type) != (image.manufacturer_code, image.image_type)
            ] + [image]
        return image

    def untarget(self, device: int, image: ServedImage | None = None) -> None:
        images = self._targeted.get(device)
        if not images:
            return
        if image is None:
            del self._targeted[device]
        else:
            images[:] = [i for i in images if i.key != image.key]

    def targeted_for(self, device: int) -> list[ServedImage]:
        return list(self._targeted.get(device, ()))

    def candidates(self, device: int, manufacturer_code: int, image_type: int) -> list[ServedImage]:
        """Images ``device`` may be offered, targeted ones first."""
        out = [
            i
            for i in self._targeted.get(device, ())
            if i.manufacturer_code == manufacturer_code and i.image_type == image_type
        ]
        out.extend(self._global.get((manufacturer_code, image_type), ()))
        return out

    def lookup(self, device: int, key: tuple[int, int, int]) -> ServedImage | None:
        """The image a block request names, if ``device`` may have it."""
        for image in self._targeted.get(device, ()):
            if image.key == key:
                return image
        offered = self._by_key.get(key)
        if offered is not None and offered in self._global.get((key[0], key[1]), ()):
            return offered
        return None
