"""What a fleet run is: a fleet spec (TOML, or the command line's flags for the common case).

Defaults live in the dataclasses; :func:`load_spec` validates and rejects unknown keys with the
key's name and the file, so a typo never silently changes a run (precedence: flags override the
file, the file overrides the defaults; see docs/fleet.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from emulator.gbcs.codes import DeviceType
from emulator.config import StrictTable, read_toml
from emulator.han.radio import BurstLoss, RadioParams

from .faults import FAULTS


MAX_PREMISES = 1 << 32  # the premises index takes bytes 3-6 of every EUI-64 of the premises
MAX_WORKERS = 4096
MAX_DEVICES_PER_PREMISES = 200  # the last byte of the EUI-64: A0..A5 and 10 upwards


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
    per_frame: bool = False  # True: no fast path anywhere (every frame through the full machinery)
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
        if not 1 <= self.premises <= MAX_PREMISES:
            raise FleetSpecError(f"{where}: premises must be 1..{MAX_PREMISES:,}, got {self.premises}")
        if self.workers is not None and not 1 <= self.workers <= MAX_WORKERS:
            raise FleetSpecError(f"{where}: workers must be 1..{MAX_WORKERS}, got {self.workers}")
        if not self.images:
            raise FleetSpecError(f"{where}: no image given (--image FILE|ppmid|esme|gsme, or [[image]] file = ...)")
        if not self.devices:
            raise FleetSpecError(f"{where}: the device mix is empty")
        for mix in self.devices:
            if mix.count < 0:
                raise FleetSpecError(f"{where}: device count for {mix.device_type.value} must not be negative")
            if mix.count and self.image_for(mix.device_type) is None:
                kind = mix.device_type.value
                raise FleetSpecError(f"{where}: no image for device type {kind}"
                                     f" (--image {kind}=FILE, or [[image]] with device_type = \"{kind}\")")
        per_premises = sum(mix.count for mix in self.devices)
        if not 1 <= per_premises <= MAX_DEVICES_PER_PREMISES:
            raise FleetSpecError(f"{where}: a premises must have 1..{MAX_DEVICES_PER_PREMISES} devices "
                                 f"besides its hub, the device mix gives {per_premises}")
        total = 0.0
        for name, percent in self.faults.items():
            if name not in FAULTS:
                raise FleetSpecError(f"{where}: unknown fault {name!r} (known: {', '.join(sorted(FAULTS))})")
            if not 0.0 <= percent <= 100.0:
                raise FleetSpecError(f"{where}: faults.{name} must be a percentage 0..100, got {percent}")
            total += percent
        if total > 100.0 + 1e-9:
            raise FleetSpecError(f"{where}: fault percentages add up to {total:g} % (at most 100: one fault a device)")
        for name in ("duration_s", "progress_interval_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise FleetSpecError(f"{where}: {name} must be a positive number of seconds, got {value!r}")
        return self


# -- TOML --------------------------------------------------------------------------------------
class _Table(StrictTable):
    """The project's strict TOML reader, raising :class:`FleetSpecError`."""

    error = FleetSpecError


def _device_type(table: StrictTable, key: str, default: str | None = None) -> DeviceType:
    value = table.get(key, str, default, required=default is None)
    try:
        return DeviceType.han_device(value)
    except ValueError:
        raise table.fail(key, f"{value!r} is not one of PPMID, ESME, GSME, HCALCS") from None


def _positive(table: StrictTable, key: str, default: Any, kind: type = float) -> Any:
    value = table.get(key, kind, default)
    if value is not None and not (math.isfinite(value) and value > 0):
        raise table.fail(key, f"must be positive, got {value!r}")
    return value


def _probability(table: StrictTable, key: str, default: float) -> float:
    value: float = table.get(key, float, default)
    if not 0.0 <= value <= 1.0:
        raise table.fail(key, f"must be a probability in [0, 1], got {value!r}")
    return value


def _radio(table: StrictTable) -> RadioParams | None:
    model = table.get("model", str, "802.15.4")
    if model == "fixed":
        table.done()
        return None
    if model != "802.15.4":
        raise table.fail("model", f"must be '802.15.4' or 'fixed', got {model!r}")
    burst = None
    table.used.add("burst")  # named among the known keys even when absent
    if "burst" in table.data:
        b = table.table("burst")
        burst = BurstLoss(mean_good_s=_positive(b, "mean_good_s", 60.0), mean_bad_s=_positive(b, "mean_bad_s", 2.0),
                          loss_good=_probability(b, "loss_good", 0.0), loss_bad=_probability(b, "loss_bad", 0.8))
        b.done()
    retries = table.get("max_frame_retries", int, 3)
    if not 0 <= retries <= 7:  # macMaxFrameRetries: 0..7 (IEEE 802.15.4)
        raise table.fail("max_frame_retries", f"must be 0..7, got {retries}")
    aps_retries = table.get("aps_max_retries", int, 3)
    if not 0 <= aps_retries <= 7:
        raise table.fail("aps_max_retries", f"must be 0..7, got {aps_retries}")
    min_be = table.get("min_be", int, 3)
    if not 0 <= min_be <= 8:  # macMinBE: 0..macMaxBE (8)
        raise table.fail("min_be", f"must be 0..8, got {min_be}")
    radio = RadioParams(
        loss=_probability(table, "loss", 0.0),
        max_frame_retries=retries,
        poll_interval_s=_positive(table, "poll_interval_s", 7.5),
        bitrate_bps=_positive(table, "bitrate_bps", 250_000, int),
        min_be=min_be,
        aps_ack=table.get("aps_ack", bool, True),
        aps_ack_wait_s=_positive(table, "aps_ack_wait_s", 1.6),
        aps_max_retries=aps_retries,
        burst=burst,
    )
    table.done()
    return radio


def load_spec(path: str | Path) -> FleetSpec:
    """Read a fleet spec TOML file (images are read relative to it)."""
    path = Path(path)
    return spec_from_mapping(read_toml(path, FleetSpecError), where=str(path), base=path.parent)


def spec_from_mapping(data: Mapping[str, Any], *, where: str = "<spec>", base: Path = Path(".")) -> FleetSpec:
    """A :class:`FleetSpec` from parsed TOML; every mistake is a :class:`FleetSpecError` naming
    the file and the key (``fleet.toml: device[1].count: expected int, got '2'``)."""
    top = _Table(data, "", where)
    images: list[ImageSource] = []
    for entry in top.tables("image"):
        file = entry.get("file", str, required=True)
        kind = _device_type(entry, "device_type", "PPMID")
        entry.done()
        try:
            images.append(resolve_image(file, kind, base=base))
        except FleetSpecError as exc:
            raise entry.fail("file", str(exc)) from None
    devices: list[DeviceMix] = []
    for entry in top.tables("device"):
        kind = _device_type(entry, "type")
        count = entry.get("count", int, 1)
        if count < 0:
            raise entry.fail("count", f"must not be negative, got {count}")
        devices.append(DeviceMix(
            kind, count=count,
            firmware_version=entry.number("firmware_version", 32),
            hardware_version=entry.number("hardware_version", 16),
            sleepy=entry.get("sleepy", bool),
            poll_interval_s=_positive(entry, "poll_interval_s", None),
        ))
        entry.done()
    faults_table = top.table("faults")
    faults = {str(name): faults_table.get(str(name), float) for name in list(faults_table.data)}
    faults_table.done()
    radio = _radio(top.table("radio"))
    spec = FleetSpec(
        premises=top.get("premises", int, 1),
        images=tuple(images),
        devices=tuple(devices) or (DeviceMix(DeviceType.PPMID),),
        faults=faults,
        radio=radio,
        seed=top.get("seed", int, 0),
        workers=top.get("workers", int),
        duration_s=top.get("duration_s", float, 7 * 86400.0),
        progress_interval_s=top.get("progress_interval_s", float, 60.0),
        source=where,
    )
    top.done()
    return spec


# -- images --------------------------------------------------------------------------------------
# The sample images by the names scenarios use (emulator/scenario/samples.py).
SAMPLES: dict[str, tuple[DeviceType, int]] = {
    "ppmid": (DeviceType.PPMID, 0x0084), "esme": (DeviceType.ESME, 0x0000), "gsme": (DeviceType.GSME, 0x0001)}


def resolve_image(name: str, device_type: DeviceType, *, base: Path = Path(".")) -> ImageSource:
    """``name`` is a sample (``ppmid``, ``esme``, ``gsme``) or a path (relative to ``base``)."""
    if name.lower() in SAMPLES:
        from emulator.scenario.samples import sample_path

        sample_type, image_type = SAMPLES[name.lower()]
        return read_image(str(sample_path(sample_type.value, image_type)), device_type)
    path = Path(name)
    return read_image(str(path if path.is_absolute() else base / path), device_type)


def read_image(path: str, device_type: DeviceType) -> ImageSource:
    """Read and check an OTA image for ``device_type``: it must parse, and its body must fit the
    device (GBCS: a meter's image carries the signed GBCS trailer, a PPMID's does not; a sample
    image only fits the device type it was made for)."""
    if "\0" in path:
        raise FleetSpecError(f"image {path!r}: a path cannot contain a NUL character")
    try:
        data = Path(path).read_bytes()
    except (OSError, ValueError) as exc:
        strerror = getattr(exc, "strerror", None)
        raise FleetSpecError(f"image {path}: cannot read: {strerror or exc}") from None
    from emulator.ota.image import ImageError, parse_image

    try:
        image = parse_image(data, source=path)
    except ImageError as exc:
        raise FleetSpecError(f"image {path}: {exc}") from None
    article = "an" if device_type.value[0] in "AEIOU" else "a"
    if device_type.signed_images and image.layout != "gbcs":
        raise FleetSpecError(f"image {path}: layout {image.layout} does not fit {article} {device_type.value}: "
                             "a meter's image has the GBCS layout (manufacturer image + signature trailer)")
    if not device_type.signed_images and image.layout == "gbcs":
        raise FleetSpecError(f"image {path}: a signed GBCS meter image (manufacturer code "
                             f"{image.header.manufacturer_code:04X}, image type {image.header.image_type:04X}) "
                             "does not fit a PPMID (its images have the gbcs-ppmid layout)")
    sample = _sample_type(data)
    if sample is not None and sample is not device_type:
        raise FleetSpecError(f"image {path}: the sample {sample.value} image does not fit device type "
                             f"{device_type.value} (use --image {device_type.value}={device_type.value.lower()})")
    return ImageSource(path, device_type, data)


def _sample_type(data: bytes) -> DeviceType | None:
    """The device type a shipped sample image was made for, or None for any other image."""
    from emulator.scenario.samples import sample_path

    for kind, image_type in SAMPLES.values():
        path = sample_path(kind.value, image_type)
        try:
            if path.stat().st_size == len(data) and path.read_bytes() == data:
                return kind
        except OSError:
            continue
    return None
