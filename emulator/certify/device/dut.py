"""The device under test: who it is, what it declares, and (when virtual) how to build it.

``--virtual conformant`` is an emulated ESME that does everything the B checks ask; ``--virtual
FAULT`` is the same device with one fault of the catalogue (:data:`emulator.faults.FAULTS`)
applied; ``--virtual FILE.toml`` describes another device (docs/certify.md). A bench device
(``--bench``) is real: only its identity and what the vendor declares are known here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from emulator.devices.device import DeviceFaults, DeviceType, EmulatedDevice
from emulator.devices.verification import TrustedKeys, make_verifier
from emulator.eui64 import format_eui64
from emulator.faults import FAULTS
from emulator.ota.client import ClientProfile
from emulator.ota.policy import BlockPeriodUnit
from emulator.runtime.clock import Clock
from emulator.runtime.events import EventBus

CONFORMANT = "conformant"
DEVICE_EUI64 = 0x00DB1234567890A1
HUB_EUI64 = 0x00DB1234567890A0
# The conformant device is the ESME the TEST ONLY sample image is built for.
CONFORMANT_IDENTITY = dict(manufacturer_code=0x121D, image_type=0x0000, current_file_version=0xACDC0001,
                           hardware_version=0x1200)


class DeviceSpecError(ValueError):
    """A ``--virtual`` value or profile file that cannot be used; the message says where."""


@dataclass(frozen=True)
class DeviceUnderTest:
    """Identity and declarations of the device under test (a bench device has no ``profile``)."""

    name: str
    eui64: int
    device_type: DeviceType
    manufacturer_code: int | None
    image_type: int | None
    current_file_version: int | None
    hardware_version: int | None
    # What the vendor declares (checks judge against it):
    minimum_block_period_unit: BlockPeriodUnit = BlockPeriodUnit.MILLISECONDS  # B6
    min_query_interval_s: float = 60.0  # B4: no re-query sooner after NO_IMAGE_AVAILABLE
    max_silent_phase_s: float = 120.0  # B13: last block to Upgrade End Request
    sleepy: bool = False  # B3: sleeps through Image Notify
    reannounce_delay_s: float | None = None  # B14: how long the device takes after a power cut
    fault: str | None = None
    profile: ClientProfile | None = field(default=None, repr=False)  # virtual only
    device_faults: DeviceFaults = DeviceFaults()
    frames_rule: str | None = None  # an air rule of the fault (radio condition), virtual only
    hub_eui64: int = HUB_EUI64

    @property
    def virtual(self) -> bool:
        return self.profile is not None

    def identity(self) -> dict[str, Any]:
        def hexa(value: int | None, width: int) -> str | None:
            return None if value is None else f"0x{value:0{width}X}"

        return {
            "device": self.name,
            "eui64": format_eui64(self.eui64),
            "device_type": self.device_type.value,
            "manufacturer_code": hexa(self.manufacturer_code, 4),
            "image_type": hexa(self.image_type, 4),
            "current_file_version": hexa(self.current_file_version, 8),
            "hardware_version": hexa(self.hardware_version, 4),
            "fault": self.fault,
            "minimum_block_period_unit": self.minimum_block_period_unit.value,
            "min_query_interval_s": self.min_query_interval_s,
            "max_silent_phase_s": self.max_silent_phase_s,
            "sleepy": self.sleepy,
        }

    def builder(self, trusted_key: TrustedKeys) -> Callable[[Any, Clock, EventBus], EmulatedDevice]:
        """How a session makes this (virtual) device on its HAN."""
        assert self.profile is not None, "a bench device is not built"
        profile = self.profile
        assert self.manufacturer_code is not None and self.image_type is not None
        verifier = make_verifier(self.manufacturer_code, self.image_type, trusted_key)

        def build(transport: Any, clock: Clock, bus: EventBus) -> EmulatedDevice:
            return EmulatedDevice(self.eui64, self.device_type, profile, transport, clock, bus,
                                  hub_eui64=self.hub_eui64, verifier=verifier, faults=self.device_faults)

        return build


def conformant_profile() -> ClientProfile:
    """The conformant device's OTA client: the emulator's default ESME, asking 64-byte blocks."""
    return ClientProfile(**CONFORMANT_IDENTITY, max_data_size=64)  # type: ignore[arg-type]


def virtual_device(spec: str) -> DeviceUnderTest:
    """``conformant``, a catalogue fault's name, or a profile file (``.toml``)."""
    if spec.endswith(".toml"):
        return _from_file(Path(spec))
    base = DeviceUnderTest(
        name="virtual conformant ESME", eui64=DEVICE_EUI64, device_type=DeviceType.ESME,
        **CONFORMANT_IDENTITY, profile=conformant_profile(),  # type: ignore[arg-type]
    )
    if spec == CONFORMANT:
        return base
    return with_fault(base, spec)


def with_fault(base: DeviceUnderTest, name: str) -> DeviceUnderTest:
    """``base`` with one catalogue fault applied (its profile, device and air switches)."""
    fault = FAULTS.get(name)
    if fault is None:
        raise DeviceSpecError(f"--virtual {name!r}: not 'conformant', a profile file (.toml) or a fault of the "
                              f"catalogue (known: {', '.join(sorted(FAULTS))})")
    if fault.burst is not None:
        raise DeviceSpecError(f"--virtual {name}: burst radio loss is a radio condition certify device does not "
                              "model (one device, no radio channel); play it with `ch-emulator run` or `fleet`")
    if fault.mid_transfer in ("link_outage", "long_link_outage"):
        raise DeviceSpecError(f"--virtual {name}: a HAN link outage is a radio condition certify device does not "
                              "play; play it with `ch-emulator run` or `fleet`")
    if fault.server or fault.mid_transfer == "server_restart":
        raise DeviceSpecError(f"--virtual {name}: a server condition (the hub misbehaves); certify device's test "
                              "hub is the server, so it tests devices only: play it with `ch-emulator run` or "
                              "`fleet`")
    assert base.profile is not None
    profile = base.profile.with_(**fault.profile)
    reannounce = 240.0 if fault.mid_transfer == "slow_reannounce" else base.reannounce_delay_s
    device_faults = dataclasses.replace(base.device_faults, **fault.device)
    return dataclasses.replace(
        base, name=f"virtual ESME with fault {name}", fault=name, profile=profile, device_faults=device_faults,
        sleepy=base.sleepy or fault.sleepy or profile.ignore_image_notify, reannounce_delay_s=reannounce,
        frames_rule=fault.frames,
        max_silent_phase_s=base.max_silent_phase_s,
    )


_FILE_KEYS = {"device_type", "manufacturer_code", "image_type", "current_file_version", "hardware_version",
              "fault", "profile", "declared", "eui64"}
_DECLARED_KEYS = {"minimum_block_period_unit", "min_query_interval_s", "max_silent_phase_s", "sleepy"}


def _from_file(path: Path) -> DeviceUnderTest:
    """A virtual device from TOML: identity, ``fault``, ``[profile]`` ClientProfile fields and
    ``[declared]`` values; unknown keys are errors naming the key."""
    import tomllib

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DeviceSpecError(f"{path}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise DeviceSpecError(f"{path}: not TOML: {exc}") from None
    unknown = sorted(set(data) - _FILE_KEYS)
    if unknown:
        raise DeviceSpecError(f"{path}: unknown key {unknown[0]!r} (known: {', '.join(sorted(_FILE_KEYS))})")
    try:
        device_type = DeviceType(data.get("device_type", "ESME"))
    except ValueError:
        raise DeviceSpecError(f"{path}: device_type {data.get('device_type')!r} is not one of "
                              f"{', '.join(t.value for t in DeviceType)}") from None
    identity = dict(CONFORMANT_IDENTITY)
    for key in identity:
        if key in data:
            value = data[key]
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise DeviceSpecError(f"{path}: {key} must be a non-negative integer, got {value!r}")
            identity[key] = value
    fields = {f.name for f in dataclasses.fields(ClientProfile)}
    changes = data.get("profile", {})
    if not isinstance(changes, dict):
        raise DeviceSpecError(f"{path}: profile must be a table")
    for key in changes:
        if key not in fields or key in identity:
            raise DeviceSpecError(f"{path}: profile.{key} is not a ClientProfile field "
                                  f"(known: {', '.join(sorted(fields - set(identity)))})")
    try:
        profile = ClientProfile(**identity, max_data_size=64).with_(**changes)  # type: ignore[arg-type]
    except TypeError as exc:
        raise DeviceSpecError(f"{path}: profile: {exc}") from None
    declared = data.get("declared", {})
    if not isinstance(declared, dict):
        raise DeviceSpecError(f"{path}: declared must be a table")
    for key in declared:
        if key not in _DECLARED_KEYS:
            raise DeviceSpecError(f"{path}: declared.{key} is unknown (known: {', '.join(sorted(_DECLARED_KEYS))})")
    try:
        unit = BlockPeriodUnit(declared.get("minimum_block_period_unit", profile.minimum_block_period_unit))
    except ValueError:
        raise DeviceSpecError(f"{path}: declared.minimum_block_period_unit must be 'ms' or 's'") from None
    device = DeviceUnderTest(
        name=f"virtual {device_type.value} from {path.name}", eui64=int(data.get("eui64", DEVICE_EUI64)),
        device_type=device_type, **identity, profile=profile,  # type: ignore[arg-type]
        minimum_block_period_unit=unit,
        min_query_interval_s=float(declared.get("min_query_interval_s", 60.0)),
        max_silent_phase_s=float(declared.get("max_silent_phase_s", 120.0)),
        sleepy=bool(declared.get("sleepy", profile.ignore_image_notify)),
    )
    fault = data.get("fault")
    if fault is not None:
        device = with_fault(device, str(fault))
    return device
