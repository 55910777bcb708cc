"""Builds one premises on a HAN: the Comms Hub and an emulated device per HAN device.

The same :class:`~emulator.dcc.premises.PremisesSpec` the DSP loads into its SMI is the input,
so both sides agree on IDs, models and firmware versions. OTA behaviour (block size, timings,
faults) comes from per-device :class:`~emulator.ota.client.ClientProfile` overrides.

Everything a premises is made of is a constructor argument (session store, link model,
manipulator, sleepy devices, per-device server policy), so no caller patches a premises after
building it; :func:`build_devices` is the one loop that makes emulated devices, used here, behind
an emulated EZSP dongle (:mod:`emulator.scenario.ezsp_sim`) and by the tests.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol

from emulator.dcc.premises import PremisesSpec
from emulator.devices.device import DeviceFaults, EmulatedDevice
from emulator.devices.flash import DownloadFlash
from emulator.gbcs.codes import DeviceType
from emulator.devices.verification import TrustedKeys, make_verifier
from emulator.eui64 import format_eui64
from emulator.gbcs.flow import GbcsSetup
from emulator.han.radio import RadioChannel
from emulator.han.transport import HanTransport
from emulator.han.virtual import Manipulator, VirtualHan
from emulator.hub.comms_hub import CommsHub
from emulator.ota.client import ClientProfile, ReferenceImages
from emulator.ota.fastpath import OtaFastPath
from emulator.ota.policy import ServerPolicy
from emulator.ota.sessions import SessionStore
from emulator.runtime.clock import Clock, PremisesClock, VirtualClock
from emulator.runtime.events import EventBus

from .han_security import HanSecurity, secure_premises

_LOGGER = logging.getLogger(__name__)

HAN_DEVICE_TYPES = {t.value: t for t in DeviceType if t.on_han}
HUB_NWK = 0x0000
FIRST_DEVICE_NWK = 0x1000
NWK_STEP = 0x0101


@dataclass(frozen=True, slots=True)
class DeviceBehaviour:
    """How an emulated device behaves beyond its SMI record."""

    profile_changes: Mapping[str, Any] = field(default_factory=dict)
    faults: DeviceFaults = DeviceFaults()
    catalogue: tuple[str, ...] = ()
    """Faults of the catalogue (:data:`emulator.faults.FAULTS`) by name."""
    sleepy: bool | None = None
    """With a radio model: frames wait for the device's poll (None: a GSME is sleepy)."""
    poll_interval_s: float | None = None
    """A sleepy device's poll interval (None: the radio model's)."""


class NodeMedium(Protocol):
    """Where nodes attach: a :class:`VirtualHan`, or the air behind an emulated dongle."""

    def attach(self, eui64: int, nwk: int) -> HanTransport: ...


class HanMedium(NodeMedium, Protocol):
    """A medium a premises can put its frame-level faults on."""

    def set_manipulator(self, manipulator: Manipulator | None) -> None: ...


@functools.lru_cache(maxsize=64)  # frozen: a fleet's devices of one type and version share one
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


def build_devices(
    spec: PremisesSpec,
    han: NodeMedium,
    clock: Clock,
    bus: EventBus,
    *,
    behaviours: Mapping[int, DeviceBehaviour] | None = None,
    trusted_key: TrustedKeys = None,
    reference_images: ReferenceImages | None = None,
    skip: frozenset[int] = frozenset(),
    gbcs: GbcsSetup | None = None,
    flash: DownloadFlash | None = None,
) -> dict[int, EmulatedDevice]:
    """An emulated device on ``han`` for each HAN device of ``spec`` (CHF/GPF are the hub itself),
    at NWK 0x1101, 0x1202, … in the order of the spec; ``skip`` are real devices (not emulated);
    ``flash`` keeps their downloads across processes (each takes up what it holds there)."""
    behaviours = behaviours or {}
    devices: dict[int, EmulatedDevice] = {}
    nwk = FIRST_DEVICE_NWK
    for device_spec in spec.devices:
        device_type = HAN_DEVICE_TYPES.get(device_spec.device_type.value)
        if device_type is None or device_spec.eui64 in skip:
            continue
        nwk += NWK_STEP
        behaviour = behaviours.get(device_spec.eui64, DeviceBehaviour())
        profile = default_profile(device_type, device_spec.manufacturer_code, device_spec.image_type,
                                  device_spec.hardware_version, device_spec.firmware_version)
        if behaviour.profile_changes:
            profile = profile.with_(**behaviour.profile_changes)
        verifier = make_verifier(device_spec.manufacturer_code, device_spec.image_type, trusted_key)
        device = EmulatedDevice(
            device_spec.eui64, device_type, profile, han.attach(device_spec.eui64, nwk), clock, bus,
            hub_eui64=spec.comms_hub, hub_nwk=HUB_NWK, verifier=verifier, faults=behaviour.faults, gbcs=gbcs,
            flash=flash,
        )
        if reference_images is not None:
            device.client.reference_images = reference_images
        devices[device_spec.eui64] = device
    return devices


class Premises:
    """A Comms Hub and its devices on one HAN (virtual, or a radio transport for the hub).

    Without ``han`` the premises gets its own :class:`VirtualHan` (``latency``, ``loss``,
    ``seed``, the link model ``radio`` and the ``manipulator``); ``sleepy`` (EUI-64 -> poll
    interval, None for the radio's) are sleepy end devices on ``radio``; ``device_policies``
    are per-device :class:`ServerPolicy` changes at the hub; ``sessions`` is the hub's OTA
    session store (default: in memory); ``real_devices`` are in the spec but on the air;
    ``flash`` keeps the devices' downloads (default: none, a new process starts them over).
    """

    def __init__(
        self,
        spec: PremisesSpec,
        clock: Clock,
        bus: EventBus,
        *,
        han: HanMedium | None = None,
        hub_transport: HanTransport | None = None,
        latency: float = 0.005,
        loss: float = 0.0,
        seed: int = 0,
        radio: RadioChannel | None = None,
        manipulator: Manipulator | None = None,
        sleepy: Mapping[int, float | None] | None = None,
        policy: ServerPolicy | None = None,
        device_policies: Mapping[int, Mapping[str, Any]] | None = None,
        sessions: SessionStore | None = None,
        behaviours: Mapping[int, DeviceBehaviour] | None = None,
        trusted_key: TrustedKeys = None,
        reference_images: ReferenceImages | None = None,
        real_devices: frozenset[int] = frozenset(),
        gbcs: GbcsSetup | None = None,
        security: "HanSecurity | None" = None,
        fast_path: bool = False,
        flash: DownloadFlash | None = None,
    ) -> None:
        """``security``: ZigBee join, CBKE and APS encryption on the HAN (``[han] security``)."""
        self.spec = spec
        # The fast path (emulator/ota/fastpath.py) needs the premises' own view of the clock:
        # its horizon is the earliest timer of this premises.
        local: PremisesClock | None = None
        if fast_path and han is None and hub_transport is None and isinstance(clock, VirtualClock):
            clock = local = PremisesClock(clock)
        self.clock = clock
        self.bus = bus
        self.radio = radio
        self.manipulator = manipulator
        if han is None:
            han = VirtualHan(clock, latency=latency, loss=loss, seed=seed, link=radio, manipulator=manipulator)
        elif radio is not None:
            raise ValueError(f"premises {spec.premises_id}: a radio model needs the premises' own virtual HAN")
        elif manipulator is not None:
            han.set_manipulator(manipulator)
        self.han: Any = han
        for eui64, interval in (sleepy or {}).items():
            if radio is not None:
                radio.set_sleepy(eui64, interval)
        transport = hub_transport if hub_transport is not None else han.attach(spec.comms_hub, HUB_NWK)
        device_types = {d.eui64: d.device_type.value for d in spec.devices}
        self.hub = CommsHub(spec.comms_hub, transport, clock, bus, policy=policy, sessions=sessions, gbcs=gbcs,
                            device_types=device_types)
        for eui64, changes in (device_policies or {}).items():
            self.hub.set_device_policy(eui64, **changes)
        self.devices = build_devices(spec, han, clock, bus, behaviours=behaviours, trusted_key=trusted_key,
                                     reference_images=reference_images, skip=real_devices, gbcs=gbcs,
                                     flash=flash)
        self.security = security
        self.real_devices = real_devices
        if security is not None and security.enabled:
            secure_premises(self, security)
        elif local is not None and isinstance(han, VirtualHan):  # APS security is per frame only
            han.fast_path = OtaFastPath(han, local, self.hub, self.devices)

    def start(self) -> None:
        """Power on: the hub's OTA server takes up the sessions its store holds (their timeouts
        re-armed; nothing in a fresh store), then each device starts."""
        self.hub.ota.restore()
        for device in self.devices.values():
            device.start()

    def describe(self) -> dict[str, Any]:
        """What this premises is made of, as plain data (compared across the ways to build one)."""
        han = self.han
        radio = self.radio
        rules = getattr(self.manipulator, "rules", None)
        return {
            "comms_hub": format_eui64(self.spec.comms_hub),
            "han": {"medium": type(han).__name__, "latency_s": getattr(han, "latency", None),
                    "loss": getattr(han, "loss", None), "seed": getattr(han, "_seed", None)},
            "radio": None if radio is None else {
                "params": dataclasses.asdict(radio.params),
                "sleepy": {format_eui64(e): radio._sleepy[e].poll_interval_s for e in sorted(radio._sleepy)}},
            "air_rules": None if rules is None else {format_eui64(e): r for e, r in sorted(rules.items())},
            "hub": {"transport": type(self.hub.transport).__name__,
                    "sessions": type(self.hub.server.sessions).__name__,
                    "policy": dataclasses.asdict(self.hub.policies.default),
                    "device_policies": {format_eui64(e): dataclasses.asdict(p)
                                        for e, p in sorted(self.hub.policies.per_device.items())}},
            "devices": {format_eui64(e): {"type": d.device_type.value, "nwk": d.transport.nwk,
                                          "profile": dataclasses.asdict(d.client.profile),
                                          "faults": dataclasses.asdict(d.faults)}
                        for e, d in sorted(self.devices.items())},
        }
