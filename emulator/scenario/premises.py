"""Builds one premises on a HAN: the Comms Hub and an emulated device per HAN device.

The same :class:`~emulator.dcc.premises.PremisesSpec` the DSP loads into its SMI is the input,
so both sides agree on IDs, models and firmware versions. OTA behaviour (block size, timings,
faults) comes from per-device :class:`~emulator.ota.client.ClientProfile` overrides.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Mapping


from emulator.dcc.premises import PremisesSpec
from emulator.devices.device import DeviceFaults, DeviceType, EmulatedDevice
from emulator.devices.verification import TrustedKeys, make_verifier
from emulator.han.transport import HanTransport
from emulator.han.virtual import VirtualHan
from emulator.hub.comms_hub import CommsHub
from emulator.ota.client import ClientProfile
from emulator.ota.policy import ServerPolicy
from emulator.runtime.clock import Clock
from emulator.runtime.events import EventBus

_LOGGER = logging.getLogger(__name__)

HAN_DEVICE_TYPES = {t.value: t for t in DeviceType}
HUB_NWK = 0x0000


@dataclass(frozen=True, slots=True)
class DeviceBehaviour:
    """How an emulated device behaves beyond its SMI record."""

    profile_changes: Mapping[str, Any] = field(default_factory=dict)
    faults: DeviceFaults = DeviceFaults()


def default_profile(device_type: DeviceType, manufacturer_code: int, image_type: int,
                    hardware_version: int, firmware_version: int) -> ClientProfile:
    """Timings of a typical device of each type (a GSME is sleepy and queries slowly)."""
    profile = ClientProfile(
        manufacturer_code=manufacturer_code,
        image_type=image_type,
        current_file_version=firmware_version,
        hardware_version=hardware_version,
        max_data_size=64,
    )
    if device_type is DeviceType.GSME:
        profile = profile.with_(ignore_image_notify=True, initial_query_delay_s=30.0, query_interval_s=1800.0)
    return profile


class Premises:
    """A Comms Hub and its devices on one HAN (virtual, or a radio transport for the hub)."""

    def __init__(
        self,
        spec: PremisesSpec,
        clock: Clock,
        bus: EventBus,
        *,
        han: VirtualHan | None = None,
        hub_transport: HanTransport | None = None,
        policy: ServerPolicy | None = None,
        behaviours: Mapping[int, DeviceBehaviour] | None = None,
        trusted_key: TrustedKeys = None,
        seed: int = 0,
    ) -> None:
        self.spec = spec
        self.clock = clock
        self.bus = bus
        self.han = han if han is not None else VirtualHan(clock, seed=seed)
        transport = hub_transport if hub_transport is not None else self.han.attach(spec.comms_hub, HUB_NWK)
        self.hub = CommsHub(spec.comms_hub, transport, clock, bus, policy=policy)
        self.devices: dict[int, EmulatedDevice] = {}
        behaviours = behaviours or {}
        nwk = 0x1000
        for device_spec in spec.devices:
            device_type = HAN_DEVICE_TYPES.get(device_spec.device_type.value)
            if device_type is None:
                continue  # CHF/GPF are the hub itself
            nwk += 0x0101
            behaviour = behaviours.get(device_spec.eui64, DeviceBehaviour())
            profile = default_profile(device_type, device_spec.manufacturer_code, device_spec.image_type,
                                      device_spec.hardware_version, device_spec.firmware_version)
            if behaviour.profile_changes:
                profile = profile.with_(**behaviour.profile_changes)
            verifier = make_verifier(device_spec.manufacturer_code, device_spec.image_type, trusted_key)
            self.devices[device_spec.eui64] = EmulatedDevice(
                device_spec.eui64, device_type, profile, self.han.attach(device_spec.eui64, nwk), clock, bus,
                hub_eui64=spec.comms_hub, hub_nwk=HUB_NWK, verifier=verifier, faults=behaviour.faults,
            )

    def start(self) -> None:
        for device in self.devices.values():
            device.start()
