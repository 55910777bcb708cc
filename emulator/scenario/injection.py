"""Where a fault of the catalogue (:data:`emulator.faults.FAULTS`) is injected.

:func:`premises_faults` turns the fault names a premises' devices carry into construction
arguments of :class:`~emulator.scenario.premises.Premises`: client-profile and device-fault
changes, per-device server policy, sleepiness, burst loss on the premises' channel and an
:class:`AirFaults` manipulator for the frame-level faults. The faults that act mid-transfer are
played by :class:`MidTransferFaults`, which watches the hub's progress on the timeline.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any, Mapping

from emulator.dcc.premises import PremisesSpec
from emulator.devices.device import DeviceFaults
from emulator.faults import FAULTS, Fault
from emulator.han.packet import OTA_CLUSTER, ApsPacket
from emulator.han.radio import BurstLoss
from emulator.han.virtual import Verdict
from emulator.runtime.clock import Clock
from emulator.runtime.events import Event, EventBus

from .premises import DeviceBehaviour

_LOGGER = logging.getLogger(__name__)

OFF_S = 10.0
"""How long a device stays off in the reboot faults."""
SLOW_REANNOUNCE_S = 240.0
MID_TRANSFER_PERCENT = 50
LINK_OUTAGE_S = {"link_outage": 120.0, "long_link_outage": 900.0}
"""How long the HAN link of a device is down in the link outage faults (the long one outlasts
the hub's block gap timeout of 600 s)."""


class AirFaults:
    """The frame-level faults of one premises, as a VirtualHan manipulator.

    They act only once :attr:`armed` (the composition root arms them when a Service Request goes
    in) and only on OTA frames; ``first_response`` never drops an Image Notify. A device in
    :attr:`down` has lost its HAN link: every unicast from or to it is lost, whatever the
    cluster (:func:`link_outage`)."""

    def __init__(self, rules: Mapping[int, str] | None = None) -> None:
        self.rules: dict[int, str] = dict(rules or {})
        self.armed = False
        self.down: set[int] = set()

    def __call__(self, packet: ApsPacket) -> Verdict | None:
        down = self.down
        if down and (packet.src in down or packet.dst in down) and not packet.is_broadcast:
            return Verdict(drop=True)
        if not self.armed or packet.cluster != OTA_CLUSTER:
            return None
        rules = self.rules
        rule = rules.get(packet.src)
        if rule is not None:
            if rule == "first_request":
                del rules[packet.src]
                return Verdict(drop=True)
            if rule == "request_confirm_lost":
                return Verdict(confirm_lost=True)
        rule = rules.get(packet.dst)
        if rule is not None:
            if rule == "first_response" and packet.payload[2:3] != b"\x00":  # not an Image Notify
                del rules[packet.dst]
                return Verdict(drop=True)
            if rule == "response_confirm_lost":
                # The device's next request collides with its acknowledgement of this response.
                return Verdict(confirm_lost=True)
        return None


@dataclass(slots=True)
class PremisesFaults:
    """What the catalogue faults of one premises' devices come to."""

    behaviours: dict[int, DeviceBehaviour] = field(default_factory=dict)
    device_policies: dict[int, dict[str, Any]] = field(default_factory=dict)
    sleepy: set[int] = field(default_factory=set)
    air: AirFaults | None = None
    burst: BurstLoss | None = None
    mid_transfer: dict[int, str] = field(default_factory=dict)


def faults_of(names: tuple[str, ...], where: str) -> list[Fault]:
    """The catalogue entries of ``names``; an unknown name or two that clash is a ValueError."""
    faults = []
    for name in names:
        fault = FAULTS.get(name)
        if fault is None:
            raise ValueError(f"{where}: unknown fault {name!r} (known: {', '.join(sorted(FAULTS))})")
        faults.append(fault)
    for what in ("frames", "mid_transfer", "burst"):
        chosen = [f.name for f in faults if getattr(f, what) is not None]
        if len(chosen) > 1:
            raise ValueError(f"{where}: faults {' and '.join(chosen)} both set {what}; give one of them")
    return faults


def premises_faults(spec: PremisesSpec, behaviours: Mapping[int, DeviceBehaviour]) -> PremisesFaults:
    """Resolve the catalogue faults of ``spec``'s devices. Explicit profile and device-fault
    changes of a behaviour win over those its faults imply."""
    out = PremisesFaults()
    rules: dict[int, str] = {}
    for device in spec.devices:
        behaviour = behaviours.get(device.eui64)
        if behaviour is None:
            continue
        if not behaviour.catalogue:
            out.behaviours[device.eui64] = behaviour
            continue
        profile: dict[str, Any] = {}
        device_faults: dict[str, Any] = {}
        server: dict[str, Any] = {}
        for fault in faults_of(behaviour.catalogue, f"device {device.eui64:016X}"):
            profile.update(fault.profile)
            device_faults.update(fault.device)
            server.update(fault.server)
            if fault.sleepy:
                out.sleepy.add(device.eui64)
            if fault.frames is not None:
                rules[device.eui64] = fault.frames
            if fault.mid_transfer is not None:
                out.mid_transfer[device.eui64] = fault.mid_transfer
            if fault.burst is not None:
                out.burst = fault.burst
        profile.update(behaviour.profile_changes)
        default = DeviceFaults()
        device_faults.update({f.name: getattr(behaviour.faults, f.name) for f in dataclasses.fields(DeviceFaults)
                              if getattr(behaviour.faults, f.name) != getattr(default, f.name)})
        out.behaviours[device.eui64] = dataclasses.replace(
            behaviour, profile_changes=profile, faults=DeviceFaults(**device_faults))
        if server:
            out.device_policies[device.eui64] = server
    if rules or any(what in LINK_OUTAGE_S for what in out.mid_transfer.values()):
        out.air = AirFaults(rules)
    return out


def link_outage(clock: Clock, air: AirFaults, eui64: int, seconds: float) -> None:
    """The HAN link of ``eui64`` goes down now and comes back after ``seconds`` (the device and
    the hub stay powered: their frames to each other are lost)."""
    _LOGGER.info("device %016X: HAN link down for %g s", eui64, seconds)
    air.down.add(eui64)
    clock.call_later(seconds, air.down.discard, eui64)


class MidTransferFaults:
    """Plays ``reboot``, ``slow_reannounce``, ``server_restart``, ``link_outage`` and
    ``long_link_outage`` once the hub reports a device's transfer at 50 %: the device is off for
    10 s and re-announces after 1 s (240 s when slow), the hub's OTA server restarts from its
    session store, or the device's HAN link is down for :data:`LINK_OUTAGE_S` (on ``air``)."""

    def __init__(self, clock: Clock, bus: EventBus, hub: Any, devices: Mapping[int, Any],
                 faults: Mapping[int, str], air: AirFaults | None = None) -> None:
        self.clock = clock
        self.hub = hub
        self.devices = devices
        self.pending = dict(faults)
        self.air = air
        bus.subscribe(self._observe)

    def _observe(self, event: Event) -> None:
        if event.source != "comms_hub" or event.event != "transfer_progress" or event.device not in self.pending:
            return
        if event.fields.get("percent", 0) < MID_TRANSFER_PERCENT:
            return
        what = self.pending.pop(event.device)
        self.clock.call_later(0.0, self.play, event.device, what)

    def play(self, eui64: int, what: str) -> None:
        if what == "server_restart":
            self.hub.restart()
            return
        if what in LINK_OUTAGE_S:
            assert self.air is not None, "premises_faults gives a premises with a link outage its air faults"
            link_outage(self.clock, self.air, eui64, LINK_OUTAGE_S[what])
            return
        device = self.devices[eui64]
        device.power_off()
        delay = SLOW_REANNOUNCE_S if what == "slow_reannounce" else None
        self.clock.call_later(OFF_S, lambda: device.power_on(reannounce_delay_s=delay))
