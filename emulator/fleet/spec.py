"""What a fleet run is: a fleet spec (TOML, or the command line's flags for the common case).

Defaults live in the dataclasses; :func:`load_spec` validates and rejects unknown keys with the
key's name and the file, so a typo never silently changes a run (precedence: flags override the
file, the file overrides the defaults; see docs/fleet.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from emulator.gbcs.codes import DeviceType
from emulator.config import read_toml
from emulator.han.radio import BurstLoss, RadioParams

from .faults import FAULTS


class FleetSpecError(ValueError):
    """A fleet spec that cannot be run; the message names the file and key."""


@dataclass(frozen=True, slots=True)
class DeviceMix:
    """``count`` devices of one type in every premises."""

    device_type: DeviceType
    count: int = 1
    firmware_version: int | None = None  # None: one below the image's version
    hardware_version: int | None = None  # None: the image's minimum hardware version (or 0x1200)
    sleepy: bool | None = None  # None: GSME is sleepy, the others are not
    poll_interval_s: float | None = None


@dataclass(frozen=True, slots=True)
class ImageSource:
    path: str
    device_type: DeviceType
    data: bytes = field(repr=False, default=b"")


@dataclass(frozen=True, slots=True)
class FleetSpec:
    premises: int
    images: tuple[ImageSource, ...]
    devices: tuple[DeviceMix, ...] = (DeviceMix(DeviceType.PPMID),)
    faults: Mapping[str, float] = field(default_factory=dict)  # fault name -> percent of devices
    radio: RadioParams | None = field(default_factory=RadioParams)  # None: fixed-latency HAN
    seed: int = 0
    workers: int | None = None  # None: all cores
    duration_s: float = 7 * 86400.0  # simulated limit
    progress_interval_s: float = 60.0  # simulated seconds between progress reports
    source: str = "<flags>"

    def with_(self, **changes: Any) -> "FleetSpec":
        return replace(self, **changes)

    def image_for(self, device_type: DeviceType) -> ImageSource | None:
        for image in self.images:
            if image.device_type is device_type:
                return image
        return None

    def validate(self) -> "FleetSpec":
        where = self.source
        if self.premises < 1:
            raise FleetSpecError(f"{where}: premises must be at least 1, got {self.premises}")
        if self.workers is not None and self.workers < 1:
            raise FleetSpecError(f"{where}: workers must be at least 1, got {self.workers}")
        if not self.images:
            raise FleetSpecError(f"{where}: no image given (--image FILE or [[image]] file = ...)")
        if not self.devices:
            raise FleetSpecError(f"{where}: the device mix is empty")
        for mix in self.devices:
            if mix.count < 0:
                raise FleetSpecError(f"{where}: device count for {mix.device_type.value} must not be negative")
            if mix.count and self.image_for(mix.device_type) is None:
                raise FleetSpecError(f"{where}: no image for device type {mix.device_type.value}"
                                     " (give [[image]] with device_type)")
        total = 0.0
        for name, percent in self.faults.items():
            if name not in FAULTS:
                raise FleetSpecError(f"{where}: unknown fault {name!r} (known: {', '.join(sorted(FAULTS))})")
            if not 0.0 <= percent <= 100.0:
                raise FleetSpecError(f"{where}: faults.{name} must be a percentage 0..100, got {percent}")
            total += percent
        if total > 100.0 + 1e-9:
            raise FleetSpecError(f"{where}: fault percentages add up to {total:g} % (at most 100: one fault a device)")
        if self.duration_s <= 0 or self.progress_interval_s <= 0:
            raise FleetSpecError(f"{where}: duration_s and progress_interval_s must be positive")
        return self


# -- TOML --------------------------------------------------------------------------------------
_TOP = {"premises", "seed", "workers", "duration_s", "progress_interval_s", "image", "device", "faults", "radio"}
_IMAGE = {"file", "device_type"}
_DEVICE = {"type", "count", "firmware_version", "hardware_version", "sleepy", "poll_interval_s"}
_RADIO = {"model", "loss", "max_frame_retries", "poll_interval_s", "burst", "bitrate_bps", "min_be"}
_BURST = {"mean_good_s", "mean_bad_s", "loss_good", "loss_bad"}


def _unknown(data: Mapping[str, Any], known: set[str], where: str) -> None:
    extra = sorted(set(data) - known)
    if extra:
        raise FleetSpecError(f"{where}: unknown key {extra[0]!r} (allowed: {', '.join(sorted(known))})")


def _device_type(value: Any, where: str) -> DeviceType:
    try:
        return DeviceType.han_device(str(value))
    except ValueError:
        raise FleetSpecError(f"{where}: device type {value!r} is not one of PPMID, ESME, GSME, HCALCS") from None


def _hex_or_int(value: Any, where: str, bits: int) -> int:
    if isinstance(value, bool):
        raise FleetSpecError(f"{where}: expected a number, got {value!r}")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str):
        try:
            number = int(value.removeprefix("0x").removeprefix("0X"), 16)
        except ValueError:
            raise FleetSpecError(f"{where}: {value!r} is not hexadecimal") from None
    else:
        raise FleetSpecError(f"{where}: expected hex text or an integer, got {value!r}")
    if not 0 <= number < 2 ** bits:
        raise FleetSpecError(f"{where}: {value!r} does not fit {bits} bits")
    return number


def _number(data: Mapping[str, Any], key: str, where: str, default: Any, kind: type = float) -> Any:
    if key not in data:
        return default
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)):
        raise FleetSpecError(f"{where}: {key} must be {'an integer' if kind is int else 'a number'}, got {value!r}")
    return kind(value)


def radio_from_mapping(data: Mapping[str, Any], where: str) -> RadioParams | None:
    _unknown(data, _RADIO, where)
    model = data.get("model", "802.15.4")
    if model == "fixed":
        return None
    if model != "802.15.4":
        raise FleetSpecError(f"{where}: model must be '802.15.4' or 'fixed', got {model!r}")
    burst = None
    if "burst" in data:
        b = data["burst"]
        if not isinstance(b, Mapping):
            raise FleetSpecError(f"{where}: burst must be a table")
        _unknown(b, _BURST, f"{where}.burst")
        try:
            burst = BurstLoss(**{k: float(v) for k, v in b.items()})
        except (TypeError, ValueError) as exc:
            raise FleetSpecError(f"{where}.burst: {exc}") from None
    try:
        return RadioParams(
            loss=_number(data, "loss", where, 0.0),
            max_frame_retries=_number(data, "max_frame_retries", where, 3, int),
            poll_interval_s=_number(data, "poll_interval_s", where, 7.5),
            bitrate_bps=_number(data, "bitrate_bps", where, 250_000, int),
            min_be=_number(data, "min_be", where, 3, int),
            burst=burst,
        )
    except ValueError as exc:
        raise FleetSpecError(f"{where}: {exc}") from None


def load_spec(path: str | Path) -> FleetSpec:
    """Read a fleet spec TOML file (images are read relative to it)."""
    path = Path(path)
    return spec_from_mapping(read_toml(path, FleetSpecError), where=str(path), base=path.parent)


def spec_from_mapping(data: Mapping[str, Any], *, where: str = "<spec>", base: Path = Path(".")) -> FleetSpec:
    _unknown(data, _TOP, where)
    images: list[ImageSource] = []
    for i, entry in enumerate(data.get("image", [])):
        here = f"{where}: image[{i}]"
        if not isinstance(entry, Mapping):
            raise FleetSpecError(f"{here} must be a table")
        _unknown(entry, _IMAGE, here)
        if "file" not in entry:
            raise FleetSpecError(f"{here}: file is required")
        file = base / str(entry["file"])
        images.append(read_image(str(file), _device_type(entry.get("device_type", "PPMID"), here)))
    devices: list[DeviceMix] = []
    for i, entry in enumerate(data.get("device", [])):
        here = f"{where}: device[{i}]"
        if not isinstance(entry, Mapping):
            raise FleetSpecError(f"{here} must be a table")
        _unknown(entry, _DEVICE, here)
        if "type" not in entry:
            raise FleetSpecError(f"{here}: type is required")
        sleepy = entry.get("sleepy")
        if sleepy is not None and not isinstance(sleepy, bool):
            raise FleetSpecError(f"{here}: sleepy must be true or false")
        devices.append(DeviceMix(
            _device_type(entry["type"], here),
            count=_number(entry, "count", here, 1, int),
            firmware_version=_hex_or_int(entry["firmware_version"], f"{here}: firmware_version", 32)
            if "firmware_version" in entry else None,
            hardware_version=_hex_or_int(entry["hardware_version"], f"{here}: hardware_version", 16)
            if "hardware_version" in entry else None,
            sleepy=sleepy,
            poll_interval_s=_number(entry, "poll_interval_s", here, None),
        ))
    faults_table = data.get("faults", {})
    if not isinstance(faults_table, Mapping):
        raise FleetSpecError(f"{where}: faults must be a table of fault = percent")
    faults = {str(k): _number(faults_table, k, f"{where}: faults", 0.0) for k in faults_table}
    radio_table = data.get("radio", {})
    if not isinstance(radio_table, Mapping):
        raise FleetSpecError(f"{where}: radio must be a table")
    spec = FleetSpec(
        premises=_number(data, "premises", where, 1, int),
        images=tuple(images),
        devices=tuple(devices) or (DeviceMix(DeviceType.PPMID),),
        faults=faults,
        radio=radio_from_mapping(radio_table, f"{where}: radio"),
        seed=_number(data, "seed", where, 0, int),
        workers=_number(data, "workers", where, None, int),
        duration_s=_number(data, "duration_s", where, 7 * 86400.0),
        progress_interval_s=_number(data, "progress_interval_s", where, 60.0),
        source=where,
    )
    return spec


def read_image(path: str, device_type: DeviceType) -> ImageSource:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise FleetSpecError(f"image {path}: cannot read: {exc.strerror or exc}") from None
    from emulator.ota.image import ImageError, parse_image

    try:
        parse_image(data, source=path)
    except ImageError as exc:
        raise FleetSpecError(f"image {path}: {exc}") from None
    return ImageSource(path, device_type, data)
