"""A premises in virtual time with everything a behaviour test wants to look at.

:class:`Site` wires a Comms Hub and emulated devices on one :class:`VirtualHan` and records three
views of the run: the event timeline (``events``), every frame put on the air with its virtual
time (``air``, OTA payloads decoded with the production codec) and what the hub reports to the
DCC side (``upstream``). Tests drive it with :meth:`Site.run` / :meth:`Site.run_until`, never
with wall-clock waits.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, TypeVar

from emulator.dcc.premises import PremisesSpec, default_premises
from emulator.devices.device import EmulatedDevice
from emulator.gbcs.codes import DeviceType
from emulator.han.aps_fragmentation import FIRST_FRAGMENT, ApsFragment, Reassembler
from emulator.han.packet import ApsPacket, OTA_CLUSTER, format_eui64
from emulator.han.virtual import VirtualHan
from emulator.hub.comms_hub import CommsHub
from emulator.hub.port import CommandResponse, DeviceAlert, HubMessage
from emulator.ota import codec
from emulator.ota.frames import ZclFrame
from emulator.ota.policy import ServerPolicy
from emulator.ota.sessions import SessionStore
from emulator.runtime.clock import VirtualClock
from emulator.runtime.events import Event, EventBus, EventCollector
from emulator.scenario.premises import DeviceBehaviour, Premises
from emulator.scenario.samples import load_sample, trusted_key

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class AirFrame:
    """One frame as it went on the air (before any manipulator decided its fate)."""

    time: float
    packet: ApsPacket
    frame: ZclFrame | None  # decoded OTA frame; None for other clusters or undecodable bytes

    @property
    def command(self) -> Any:
        return self.frame.command if self.frame is not None else None


class Site:
    """One premises on a virtual HAN, observed."""

    def __init__(self, clock: VirtualClock, bus: EventBus, han: VirtualHan, hub: CommsHub,
                 devices: Mapping[int, EmulatedDevice]) -> None:
        self.clock = clock
        self.bus = bus
        self.han = han
        self.hub = hub
        self.devices = dict(devices)
        self.collector = EventCollector()
        bus.subscribe(self.collector)
        self.upstream: list[HubMessage] = []
        hub.set_upstream(self.upstream.append)
        self.air: list[AirFrame] = []  # a message sent in APS blocks: once, when its last block went
        self._blocks = Reassembler(timeout_s=60.0)
        self._first_block: dict[tuple[int, int], tuple[int, float]] = {}
        han.add_trace_hook(self._on_air)

    # -- observation ---------------------------------------------------------------------------
    def _on_air(self, direction: str, packet: ApsPacket) -> None:
        now = self.clock.now()
        at: int | None = None
        if isinstance(packet, ApsFragment):  # an APS block: the message is one entry, where its first block went
            key = (packet.src, packet.aps_counter)
            if packet.extended_header[0] == FIRST_FRAGMENT:
                self._first_block[key] = (len(self.air), now)
            whole = self._blocks.add_block(packet, now)
            if whole is None:
                return
            packet = ApsPacket._make((*packet[:4], whole, *packet[5:]))
            at, now = self._first_block.pop(key)
            for other, (index, when) in self._first_block.items():
                if index >= at:
                    self._first_block[other] = (index + 1, when)
        frame: ZclFrame | None = None
        if packet.cluster == OTA_CLUSTER:
            try:
                frame = codec.decode(packet.payload)
            except codec.FrameError:
                frame = None
        if at is None:
            self.air.append(AirFrame(now, packet, frame))
        else:
            self.air.insert(at, AirFrame(now, packet, frame))

    @property
    def events(self) -> list[Event]:
        return self.collector.events

    def named(self, name: str, device: int | None = None) -> list[Event]:
        return self.collector.named(name, device)

    def frames(self, command_type: type, *, src: int | None = None, dst: int | None = None) -> list[AirFrame]:
        """OTA frames of one command class on the air, optionally from/to one node."""
        return [
            f for f in self.air
            if isinstance(f.command, command_type)
            and (src is None or f.packet.src == src)
            and (dst is None or f.packet.dst == dst)
        ]

    def alerts(self, code: int, device: int | None = None) -> list[DeviceAlert]:
        return [m for m in self.upstream if isinstance(m, DeviceAlert) and m.alert_code == code
                and (device is None or m.device == device)]

    def responses(self, request_id: str) -> list[CommandResponse]:
        return [m for m in self.upstream if isinstance(m, CommandResponse) and m.request_id == request_id]

    def timeline(self, last: int = 40) -> str:
        """The tail of the timeline, for failure messages."""
        lines = []
        for e in self.events[-last:]:
            device = format_eui64(e.device) if e.device is not None else "-"
            lines.append(f"{e.time:10.3f} {e.source:<10} {e.event:<28} {device} {e.fields}")
        return "\n".join(lines)

    # -- driving -------------------------------------------------------------------------------
    def start(self) -> None:
        for device in self.devices.values():
            device.start()

    def run(self, seconds: float) -> None:
        """Advance virtual time by ``seconds``, running everything that falls due."""
        self.clock.run(until=self.clock.now() + seconds)

    def run_until(self, name: str, device: int | None = None, *, within: float, **fields: Any) -> Event:
        """Run until an event ``name`` (for ``device``, with these ``fields``) happens; fail with
        the timeline if it does not within ``within`` virtual seconds."""
        start = len(self.events)
        found: list[Event] = []

        def watch(event: Event) -> None:
            if (not found and event.event == name and (device is None or event.device == device)
                    and all(event.fields.get(k) == v for k, v in fields.items())):
                found.append(event)
                self.clock.stop()

        self.bus.subscribe(watch)
        try:
            self.clock.run(until=self.clock.now() + within)
        finally:
            self.bus.unsubscribe(watch)
        if not found:
            who = format_eui64(device) if device is not None else "any device"
            raise AssertionError(
                f"no {name!r} event for {who} with {fields} within {within} s "
                f"(events since start: {len(self.events) - start}); timeline tail:\n{self.timeline()}"
            )
        return found[0]


def premises_spec(devices: Iterable[int]) -> PremisesSpec:
    """The default premises reduced to the Comms Hub and the HAN devices named."""
    wanted = set(devices)
    spec = default_premises()
    hub_types = (DeviceType.CHF, DeviceType.GPF)
    return dataclasses.replace(spec, devices=tuple(
        d for d in spec.devices if d.eui64 in wanted or d.device_type in hub_types))


def build_site(
    devices: Iterable[int],
    *,
    behaviours: Mapping[int, DeviceBehaviour] | None = None,
    policy: ServerPolicy | None = None,
    sessions: SessionStore | None = None,
    seed: int = 0,
) -> Site:
    """A premises in virtual time, its hub around ``sessions`` (default: a memory store)."""
    clock = VirtualClock()
    bus = EventBus(clock)
    premises = Premises(premises_spec(devices), clock, bus, policy=policy, sessions=sessions,
                        behaviours=behaviours, trusted_key=trusted_key(), seed=seed)
    return Site(clock, bus, premises.han, premises.hub, premises.devices)


def sample(device_type: str) -> bytes:
    """The signed TEST ONLY sample image for ``device_type`` (PPMID, ESME, GSME)."""
    image_type = {"PPMID": 0x0084, "ESME": 0x0000, "GSME": 0x0001}[device_type]
    return load_sample(device_type, image_type)


def one(items: list[T], what: str = "item") -> T:
    """The single element of ``items``; a clear failure otherwise."""
    assert len(items) == 1, f"expected exactly one {what}, got {len(items)}: {items!r}"
    return items[0]


def esme_image_version(file_version: int, *, payload_length: int = 4096) -> bytes:
    """An ESME image of another version, signed with the TEST ONLY key like the samples."""
    from emulator.ota.image import build_image, load_private_key
    from emulator.scenario.samples import SAMPLES_DIR

    key = load_private_key(str(SAMPLES_DIR / "TEST-ONLY-signing-key.pem"))
    return build_image(
        bytes((i * 7 + file_version) & 0xFF for i in range(payload_length)),
        manufacturer_code=0x121D, image_type=0x0000, file_version=file_version,
        header_string="tests ESME TEST ONLY", min_hardware_version=0x1111, max_hardware_version=0x1211,
        layout="gbcs", signing_key=key)
