"""One scripted check session: a test OTA server facing the device under test, and what it saw.

Every B check runs on a fresh :class:`CheckSession`: the hub's OTA engine (``OtaServer`` on the
shared ``EngineHost``) with the check's test policy, serving the check's image to one device, and a
record of every OTA frame the hub sent or received (:class:`AirFrame`). Verdicts are taken from
those frames, the only thing a real device shows, so the same check judges an emulated device in
virtual time (:class:`VirtualSession`) and a real one on a bench dongle in wall time
(:class:`BenchSession`). What only an emulated device can show (when it activated, its client
attributes, a power cut) is ``None`` on a bench, and checks that need it are inconclusive there.
"""

from __future__ import annotations

import abc
import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, Callable

from emulator.gbcs.messages import GbcsMessage, decode_message
from emulator.gbcs.tunnel import (
    TUNNELING_CLUSTER,
    GbcsTunnelHeader,
    RequestTunnel,
    RequestTunnelResponse,
    TransferData,
    TunnelStatus,
    TunnelError,
    decode_frame,
    encode_frame,
)
from emulator.gbcs.wire import GbcsDecodeError
from emulator.han.packet import OTA_CLUSTER, SMART_ENERGY_ENDPOINT, ApsPacket
from emulator.han.link_security import PROTECTED_CLUSTERS, SecuredApsPacket
from emulator.han.security import ke_frames
from emulator.han.security.ke_frames import KEY_ESTABLISHMENT_CLUSTER
from emulator.han.transport import HanTransport
from emulator.ota import codec
from emulator.ota.actions import FirmwareActivated
from emulator.ota.catalog import ImageCatalog, ServedImage
from emulator.ota.frames import QueryNextImageRequest, ZclFrame
from emulator.ota.host import EngineHost
from emulator.ota.image.parse import parse_image
from emulator.ota.policy import PolicyBook, ServerPolicy
from emulator.ota.server import OtaServer
from emulator.runtime.clock import Clock, VirtualClock
from emulator.runtime.events import Event, EventBus

_LOGGER = logging.getLogger(__name__)

WELL_KNOWN_TC_LINK_KEY = b"ZigBeeAlliance09"  # ZigBee HA's default TC link key: a GB device must not join with it
HUB_NWK = 0x0000
DEVICE_NWK = 0x1101
ZDO_PROFILE = 0x0000
MGMT_LEAVE_REQ = 0x0034


def mgmt_leave_request(tsn: int, device: int) -> bytes:
    """ZDO Mgmt_Leave_req: TSN, DeviceAddress (little-endian), flags: Rejoin (bit 7), keep children."""
    return bytes([tsn & 0xFF]) + device.to_bytes(8, "little") + bytes([0x80])


@dataclass(frozen=True, slots=True)
class AirFrame:
    """One OTA frame at the hub: ``sent`` by the hub, or received from the device."""

    time: float
    sent: bool
    frame: ZclFrame | None  # None: it did not decode
    packet: ApsPacket = field(repr=False)

    @property
    def command(self) -> Any:
        return None if self.frame is None else self.frame.command

    @property
    def name(self) -> str:
        return "undecodable" if self.frame is None else type(self.frame.command).__name__

    def describe(self, start: float = 0.0) -> str:
        """One line for a report: time, direction, endpoints, TSN, the command and its fields."""
        arrow = "hub -> device" if self.sent else "device -> hub"
        where = f"ep {self.packet.src_ep}->{self.packet.dst_ep}"
        if self.frame is None:
            return f"{self.time - start:9.3f} s  {arrow}  {where}  undecodable {self.packet.payload.hex()}"
        header = self.frame.header
        command = self.frame.command
        shown = []
        for name, value in command._asdict().items():
            if value is None:
                continue
            if isinstance(value, bytes):
                shown.append(f"{name}=<{len(value)} bytes>")
            elif name in ("status",):
                shown.append(f"{name}={_status_name(value)}")
            elif isinstance(value, int) and name.endswith(("version", "code", "type")) and value > 9:
                shown.append(f"{name}=0x{value:X}")
            else:
                shown.append(f"{name}={value}")
        ddr = " DDR" if header.disable_default_response else ""
        return (f"{self.time - start:9.3f} s  {arrow}  {where}  tsn {header.tsn}{ddr}  "
                f"{type(command).__name__}({', '.join(shown)})")


@dataclass(frozen=True, slots=True)
class GbcsFrame:
    """One GBCS message the device PUT through the ZSE tunnel to the hub (C checks judge on these)."""

    time: float
    message: GbcsMessage | None  # None: the PUT's content did not decode as a GBCS message
    data: bytes = field(repr=False)
    packet: ApsPacket = field(repr=False)

    @property
    def message_code(self) -> int | None:
        return None if self.message is None else self.message.header.message_code

    @property
    def alert_code(self) -> int | None:
        """The alert code of an alert's payload (DLMS or GBZ), None for anything else."""
        code = getattr(self.message.payload, "alert_code", None) if self.message is not None else None
        return code if isinstance(code, int) else None

    def describe(self, start: float = 0.0) -> str:
        where = f"ep {self.packet.src_ep}->{self.packet.dst_ep}"
        if self.message is None:
            return f"{self.time - start:9.3f} s  device -> hub  {where}  tunnel PUT, not GBCS ({len(self.data)} bytes)"
        header = self.message.header
        shown = [f"message code 0x{header.message_code:04X}", f"CRA {header.cra_flag.name.lower()}",
                 f"originator {header.originator:016X}"]
        if self.alert_code is not None:
            shown.append(f"alert code 0x{self.alert_code:04X}")
        digest = getattr(self.message.payload, "manufacturer_image_hash", None)
        if isinstance(digest, bytes):
            shown.append(f"hash {digest.hex()}")
        return f"{self.time - start:9.3f} s  device -> hub  {where}  tunnel PUT  GBCS({', '.join(shown)})"


@dataclass(frozen=True, slots=True)
class JoinAttempt:
    """A join the device attempted at the test hub's Trust Centre, as the Trust Centre saw it."""

    time: float  # session time
    admitted: bool
    install_code_key: bool  # the key offered is the install-code key of the Device Log entry
    window_open: bool  # inside the CCS01 JoinTimePeriod

    def describe(self) -> str:
        key = "its install-code key" if self.install_code_key else "another key"
        window = "inside" if self.window_open else "outside"
        return (f"{self.time:9.3f} s  join with {key}, {window} the JoinTimePeriod: "
                f"{'admitted' if self.admitted else 'refused'}")


@dataclass(frozen=True, slots=True)
class AirSecurity:
    """One OTA or Tunneling unicast from the device as it went on the air: APS-secured or not."""

    time: float  # session time
    cluster: int
    secured: bool


@dataclass(frozen=True, slots=True)
class KeExchange:
    """A Key Establishment (0x0800) command from the device (or ``sent`` by the hub), decoded, at session time ``time``."""

    time: float
    command: Any
    sent: bool = False  # by the hub

    def describe(self) -> str:
        arrow = "hub -> device" if self.sent else "device -> hub"
        return f"{self.time:9.3f} s  {arrow}  Key Establishment {type(self.command).__name__}"


def _status_name(value: int) -> str:
    from emulator.ota.timeline import status_name

    return status_name(value)


class CheckSession(abc.ABC):
    """A test hub's OTA server facing one device; frames recorded; waits bounded by a budget."""

    virtual: bool = False

    def __init__(self, clock: Clock, transport: HanTransport, device_eui64: int, device_nwk: int,
                 policy: ServerPolicy, *, endpoint: int = SMART_ENERGY_ENDPOINT) -> None:
        self.clock = clock
        self.bus = EventBus(clock)
        self.catalog = ImageCatalog()
        self.policies = PolicyBook(policy)
        self.server = OtaServer(self.catalog, self.policies)
        self.device = device_eui64
        self.device_nwk = device_nwk
        self.endpoint = endpoint
        self.frames: list[AirFrame] = []
        self.gbcs_frames: list[GbcsFrame] = []  # GBCS messages from the device through the ZSE tunnel
        self.ke_frames: list[KeExchange] = []  # Key Establishment at the test hub's Trust Centre (D checks)
        self.joins: list[JoinAttempt] = []  # join attempts the test hub's Trust Centre saw (virtual HAN only)
        self.air_frames: list[AirSecurity] = []  # the device's OTA/Tunneling unicasts, secured or not (D4)
        self._tunnel_tsn = 0
        self.events: list[Event] = []
        self.started = clock.now()
        self.transport = transport
        self.host = EngineHost(self.server, transport, clock, self.bus, source="test_hub", endpoint=endpoint)
        transport.set_receiver(self._receive)
        transport.add_trace_hook(self._trace)
        self.bus.subscribe(self._event)

    # -- what the hub sees ---------------------------------------------------------------------
    def _trace(self, direction: str, packet: ApsPacket) -> None:
        if packet.cluster == KEY_ESTABLISHMENT_CLUSTER and direction == "tx":
            self._hub_ke_frame(packet)
            return
        if packet.cluster == TUNNELING_CLUSTER:
            if direction == "rx" and packet.src == self.device:
                self._tunnel_frame(packet)
            return
        if packet.cluster != OTA_CLUSTER:
            return
        if direction == "rx" and packet.src != self.device:
            return
        try:
            frame: ZclFrame | None = codec.decode(packet.payload)
        except codec.FrameError:
            frame = None
        self.frames.append(AirFrame(self.clock.now(), direction == "tx", frame, packet))
        self._changed()

    def _changed(self) -> None:
        """Something was seen (a frame, an event): a bench wakes its waiting script."""

    def _event(self, event: Event) -> None:
        self.events.append(event)
        self._changed()

    def _receive(self, packet: ApsPacket) -> None:
        if packet.cluster == KEY_ESTABLISHMENT_CLUSTER and self.trust_centre is not None:
            self._receive_ke(packet)
            return
        # Only frames for the endpoint the OTA server is on reach it (as on a real hub).
        if packet.cluster == OTA_CLUSTER and packet.src == self.device and packet.dst_ep == self.endpoint:
            self.host.receive(packet)

    # -- the test hub as Trust Centre (D checks) -----------------------------------------------
    trust_centre: Any = None
    install_code: bytes = b""
    busy_initiates = 0
    """D3: how many Initiate Key Establishment Requests the test hub answers Terminate NO_RESOURCES."""
    busy_wait_s = 0
    ke_mangle: Callable[["ke_frames.KeFrame"], "ke_frames.KeFrame | None"] | None = None
    """D3's negative exchanges: what the test hub's Trust Centre sends the device goes through this
    first (a changed frame is sent instead; None leaves it as it is)."""

    @property
    def link_key_established(self) -> bool:
        """Whether CBKE gave the hub a link key for the device."""
        entry = self.trust_centre.device_log.get(self.device) if self.trust_centre is not None else None
        return entry is not None and entry.link_key is not None

    def update_device_log(self, join_time_period_s: float | None) -> None:
        """CCS01 for the device (its install code, the JoinTimePeriod window from now)."""
        self.trust_centre.update_device_log(self.device, self.install_code, join_time_period_s, report=False)

    def _receive_ke(self, packet: ApsPacket) -> None:
        try:
            frame = ke_frames.decode(packet.payload)
        except ke_frames.KeFrameError:
            frame = None
        if packet.src == self.device and frame is not None:
            self.ke_frames.append(KeExchange(self.now(), frame.command))
            self._changed()
            if isinstance(frame.command, ke_frames.InitiateKeyEstablishmentRequest) and self.busy_initiates > 0:
                self.busy_initiates -= 1
                self._terminate_busy(packet, frame)
                return
        self.trust_centre.receive(packet)

    def _terminate_busy(self, packet: ApsPacket, frame: "ke_frames.KeFrame") -> None:
        """Terminate NO_RESOURCES with ``busy_wait_s``, as a Trust Centre busy with another device does."""
        suite = frame.command.suite if isinstance(frame.command, ke_frames.InitiateKeyEstablishmentRequest) else 1
        reply = ke_frames.KeFrame(frame.tsn, False, ke_frames.TerminateKeyEstablishment(
            int(ke_frames.KeStatus.NO_RESOURCES), self.busy_wait_s, suite))
        self.transport.send(ApsPacket(self.transport.eui64, self.device, self.transport.nwk, packet.src_nwk,
                                      ke_frames.encode(reply), cluster=KEY_ESTABLISHMENT_CLUSTER,
                                      aps_counter=self.host.next_aps()))

    def established_after(self, time: float) -> bool:
        """Whether the Trust Centre completed CBKE with the device after session time ``time``
        (its ``cbke_established``: the device's Confirm Key Data Request verified)."""
        return any(e.event == "cbke_established" and e.source == "test_hub" and e.time - self.started > time
                   for e in self.events)

    def _hub_ke_frame(self, packet: ApsPacket) -> None:
        """A Key Establishment frame the hub (its Trust Centre) sent the device (D2 times the device from these)."""
        if packet.dst != self.device:
            return
        try:
            frame = ke_frames.decode(packet.payload)
        except ke_frames.KeFrameError:
            return
        self.ke_frames.append(KeExchange(self.now(), frame.command, sent=True))

    def _tunnel_frame(self, packet: ApsPacket) -> None:
        """A GBCS message the device PUT to the hub is recorded; tunnel set-up frames are not."""
        try:
            frame = decode_frame(packet.payload)
        except TunnelError:
            return
        payload = frame.payload
        if isinstance(payload, RequestTunnelResponse) and payload.status is TunnelStatus.SUCCESS:
            self.tunnel_id = payload.tunnel_id
            return
        if not isinstance(payload, TransferData) or payload.header is not GbcsTunnelHeader.PUT:
            return
        try:
            message: GbcsMessage | None = decode_message(payload.message, allow_unmodelled=True)
        except GbcsDecodeError:
            message = None
        self.gbcs_frames.append(GbcsFrame(self.clock.now(), message, payload.message, packet))
        self._changed()

    def open_tunnel(self) -> None:
        """The hub's RequestTunnel (GB-HRGP): an ESME, HCALCS or PPMID serves the tunnel, and
        sends its queued alerts through it once it is up (docs/gbcs.md)."""
        self._tunnel_tsn = (self._tunnel_tsn + 1) & 0xFF
        zcl = encode_frame(RequestTunnel(), self._tunnel_tsn)
        self.transport.send(ApsPacket(self.transport.eui64, self.device, self.transport.nwk, self.device_nwk, zcl,
                                      cluster=TUNNELING_CLUSTER, aps_counter=self.host.next_aps()))

    tunnel_id: int | None = None  # the device's answer to open_tunnel

    def put_gbcs(self, message: bytes) -> bool:
        """PUT ``message`` (an encoded GBCS command) through the open tunnel; False when it is not open."""
        if self.tunnel_id is None:
            return False
        self._tunnel_tsn = (self._tunnel_tsn + 1) & 0xFF
        zcl = encode_frame(TransferData(self.tunnel_id, GbcsTunnelHeader.PUT, message), self._tunnel_tsn)
        self.execute_send(ApsPacket(self.transport.eui64, self.device, self.transport.nwk, self.device_nwk, zcl,
                                    cluster=TUNNELING_CLUSTER, aps_counter=self.host.next_aps()))
        return True

    def execute_send(self, packet: ApsPacket) -> None:
        self.transport.send(packet)

    def gbcs_received(self, since: int = 0) -> list[GbcsFrame]:
        return self.gbcs_frames[since:]

    def received(self, kind: type, since: int = 0) -> list[AirFrame]:
        """Frames of command type ``kind`` from the device, from frame index ``since`` on."""
        return [f for f in self.frames[since:] if not f.sent and isinstance(f.command, kind)]

    def sent(self, kind: type, since: int = 0) -> list[AirFrame]:
        return [f for f in self.frames[since:] if f.sent and isinstance(f.command, kind)]

    # -- the hub's moves -----------------------------------------------------------------------
    def offer(self, data: bytes) -> ServedImage:
        """Offer ``data`` (an OTA file) to the device."""
        served = ServedImage.from_ota_image(parse_image(data, source="certify image"))
        self.catalog.add(served)
        return served

    def set_policy(self, **changes: Any) -> None:
        self.policies.override(self.device, **changes)

    def notify(self, image: ServedImage | None = None, *, payload_type: int | None = None,
               query_jitter: int | None = None) -> None:
        """A unicast Image Notify (the policy's payload type and jitter unless given)."""
        self.execute(self.server.image_notify(self.device, self.device_nwk, image, query_jitter=query_jitter,
                                              payload_type=payload_type))

    def upgrade_now(self) -> None:
        self.execute(self.server.upgrade_now(self.clock.now(), self.device))

    def execute(self, actions: list[Any]) -> None:
        """Carry out the hub's actions (send frames, set timers)."""
        self.host.execute(actions)

    def now(self) -> float:
        return self.clock.now() - self.started

    # -- waiting -------------------------------------------------------------------------------
    @abc.abstractmethod
    def wait(self, until: Callable[[], bool] | None, budget_s: float) -> bool:
        """Let time pass until ``until()`` holds (True) or ``budget_s`` passed (False)."""

    def wait_for(self, kind: type, budget_s: float, *, since: int | None = None,
                 where: Callable[[Any], bool] = lambda command: True) -> AirFrame | None:
        """The first frame of ``kind`` from the device (after frame index ``since``) within the budget."""
        start = len(self.frames) if since is None else since
        found: list[AirFrame] = []
        scanned = [start]  # frames before this index were looked at already

        def seen() -> bool:
            frames = self.frames
            for index in range(scanned[0], len(frames)):
                item = frames[index]
                if not item.sent and isinstance(item.command, kind) and where(item.command):
                    found.append(item)
                    return True
            scanned[0] = len(frames)
            return False

        self.wait(seen, budget_s)
        return found[0] if found else None

    def probe_version(self, budget_s: float = 30.0) -> int | None:
        """The file version the device reports in a Query Next Image Request after an Image
        Notify (payload type 0, jitter 100): how a bench tells what a device now runs."""
        mark = len(self.frames)
        self.notify(payload_type=0, query_jitter=100)
        query = self.wait_for(QueryNextImageRequest, budget_s, since=mark)
        return None if query is None else query.command.current_file_version

    # -- what only an emulated device shows ----------------------------------------------------
    def activations(self) -> list[tuple[float, int]] | None:
        """(time, version) of every activation, or ``None`` when it cannot be observed."""
        return None

    def attributes(self) -> dict[str, int | None] | None:
        """The device's OTA client attributes, or ``None`` when they cannot be read."""
        return None

    can_power_cycle = False

    def power_cycle(self, off_s: float, reannounce_delay_s: float | None = None) -> bool:
        """Cut the device's power for ``off_s`` seconds; False when the harness cannot."""
        return False

    def close(self) -> None:
        self.host.stop()


class VirtualSession(CheckSession):
    """The device under test is an emulated device on a virtual HAN, in virtual time."""

    virtual = True
    can_power_cycle = True

    def __init__(self, make_device: Callable[[Any, VirtualClock, EventBus], Any], device_eui64: int,
                 policy: ServerPolicy, *, hub_eui64: int, endpoint: int = SMART_ENERGY_ENDPOINT) -> None:
        from emulator.han.virtual import VirtualHan

        clock = VirtualClock()
        self.han = VirtualHan(clock, latency=0.005)
        transport = self.han.attach(hub_eui64, HUB_NWK)
        super().__init__(clock, transport, device_eui64, DEVICE_NWK, policy, endpoint=endpoint)
        self.virtual_clock = clock
        self.device_bus = EventBus(clock)
        self._activations: list[tuple[float, int]] = []
        self.device_bus.subscribe(self._device_event)
        self.emulated = make_device(self.han.attach(device_eui64, DEVICE_NWK), clock, self.device_bus)

    def _device_event(self, event: Event) -> None:
        if isinstance(event.outcome, FirmwareActivated):
            self._activations.append((event.time - self.started, event.outcome.firmware_version))
        self.events.append(event)

    def start_device(self) -> None:
        self.emulated.start()

    def secure(self, join_time_period_s: float | None, *, seed: int = 1) -> None:
        """Make the test hub the HAN's Trust Centre, as ``[han] security = "cbke"`` does on a premises
        (docs/cbke.md): the Device Log holds the device's install code (CCS01, ``join_time_period_s``
        window), every node gets its TEST ONLY CBKE certificate, and the device joins and runs CBKE
        before its OTA client starts. Call before the device starts."""
        from emulator.devices.key_establishment import DeviceKeyEstablishment
        from emulator.han.link_security import ApsLinkSecurity
        from emulator.hub.trust_centre import TrustCentre
        from emulator.scenario.han_security import key_material

        keys = key_material(seed)
        hub = self.transport.eui64
        hub_security = ApsLinkSecurity(hub)
        self.transport.security = hub_security  # type: ignore[attr-defined]
        self.trust_centre = TrustCentre(hub, _KeSends(self), self.clock, self.bus, keys.identity(hub),  # type: ignore[arg-type]
                                        security=hub_security, ephemeral_source=keys.ephemeral_source(hub),
                                        next_aps=self.host.next_aps, source="test_hub")
        self.han.set_admission(self._admit)
        self.install_code = keys.install_code(self.device)
        self.update_device_log(join_time_period_s)
        device = self.emulated
        port = device.transport
        device_security = ApsLinkSecurity(self.device, require=not device.faults.accepts_plaintext_aps)
        self.han.add_trace_hook(self._air)
        port.security = device_security
        ke = DeviceKeyEstablishment(self.device, port, self.clock, self.device_bus, keys.identity(self.device),
                                    self.install_code, security=device_security, trust_centre=hub,
                                    trust_centre_nwk=self.transport.nwk,
                                    ephemeral_source=keys.ephemeral_source(self.device),
                                    next_aps=device.ota.next_aps, source=device.source)
        if device.faults.joins_with_well_known_key:
            ke.install_code_key = WELL_KNOWN_TC_LINK_KEY
        ke.ignores_no_resources_wait = device.faults.ignores_no_resources_wait
        ke.trusts_any_issuer = device.faults.trusts_any_issuer
        ke.send_delay_s = device.faults.cbke_send_delay_s
        device.key_establishment = ke

    def _air(self, direction: str, packet: ApsPacket) -> None:
        """The device's OTA and Tunneling unicasts to the hub as they go on the air (D4)."""
        if packet.src == self.device and packet.cluster in PROTECTED_CLUSTERS and not packet.is_broadcast:
            self.air_frames.append(AirSecurity(self.now(), packet.cluster, isinstance(packet, SecuredApsPacket)))

    def send_plaintext(self, send: Callable[[], None]) -> None:
        """Run ``send`` with the hub's APS security off: what it sends goes on the air unencrypted."""
        security, self.transport.security = self.transport.security, None  # type: ignore[attr-defined]
        try:
            send()
        finally:
            self.transport.security = security  # type: ignore[attr-defined]

    def _admit(self, device: int, link_key: bytes) -> bool:
        """The Trust Centre decides; the attempt is recorded as the hub saw it (D1 judges on these)."""
        entry = self.trust_centre.device_log.get(device)
        window_open = entry is not None and (entry.join_until is None or self.clock.now() <= entry.join_until)
        install_code_key = entry is not None and link_key == entry.install_code_key
        admitted = bool(self.trust_centre.admit(device, link_key))
        if device == self.device:
            self.joins.append(JoinAttempt(self.now(), admitted, install_code_key, window_open))
            self._changed()
        return admitted

    def wait(self, until: Callable[[], bool] | None, budget_s: float) -> bool:
        clock = self.virtual_clock
        deadline = clock.now() + budget_s
        if until is None:
            clock.run(until=deadline)
            return True
        if until():
            return True
        seen = len(self.frames), len(self.events), len(self.gbcs_frames), len(self.joins), len(self.ke_frames)
        while clock.now() < deadline:
            if clock.run(until=deadline, max_callbacks=1) == 0:
                break
            now_seen = (len(self.frames), len(self.events), len(self.gbcs_frames), len(self.joins),
                        len(self.ke_frames))
            if now_seen != seen:
                seen = now_seen
                if until():
                    return True
        return until()

    def activations(self) -> list[tuple[float, int]]:
        return list(self._activations)

    def attributes(self) -> dict[str, int | None]:
        return {attr.name: value for attr, value in self.emulated.client.attributes().items()}

    def power_cycle(self, off_s: float, reannounce_delay_s: float | None = None) -> bool:
        self.emulated.power_off()
        self.clock.call_later(off_s, lambda: self.emulated.power_on(reannounce_delay_s=reannounce_delay_s))
        return True


class BenchSession(CheckSession):
    """The device under test is real: the hub's server runs on the bench dongle, in wall time.

    The session owns an event loop; :meth:`wait` runs it, so check scripts stay plain functions."""

    def __init__(self, loop: asyncio.AbstractEventLoop, transport: HanTransport, device_eui64: int,
                 policy: ServerPolicy, *, endpoint: int = SMART_ENERGY_ENDPOINT) -> None:
        from emulator.runtime.clock import AsyncioClock

        self.loop = loop
        self._wake: asyncio.Event | None = None
        nwk = transport.nwk_of(device_eui64)
        super().__init__(AsyncioClock(loop), transport, device_eui64, nwk if nwk is not None else 0xFFFE,
                         policy, endpoint=endpoint)

    def _changed(self) -> None:
        if self._wake is not None:
            self._wake.set()

    hub_identity: Any = None
    """The hub's CBKE identity on this bench (``[cbke] hub_identity``); None: the seed's, TEST ONLY."""

    def secure(self, join_time_period_s: float | None, *, seed: int = 1, install_code: bytes | None = None,
               hub_identity: Any = None) -> None:
        """Make the test hub the Trust Centre's CBKE partner with the CBKE computed by the host, as
        for an NCP without CBKE data (docs/cbke.md): the hub's Key Establishment server runs here,
        so D2 times the device and D3 plays wrong exchanges over the real transport, and the link
        key it agrees goes into the NCP's key table (``importLinkKey`` / ``addOrUpdateKeyTableEntry``).
        The device joined through the dongle's own Trust Centre with its install code (docs/hil.md);
        ``join_time_period_s`` is not scripted on the dongle."""
        from emulator.han.link_security import ApsLinkSecurity
        from emulator.hub.trust_centre import TrustCentre
        from emulator.scenario.han_security import key_material

        keys = key_material(seed)
        transport: Any = self.transport
        hub = transport.eui64
        hub_identity = hub_identity or self.hub_identity
        transport.aps_encrypted_clusters = PROTECTED_CLUSTERS  # the NCP encrypts OTA and Tunneling unicasts
        radio = getattr(transport, "radio_eui64", None) or hub  # devices check the certificate's subject
        self.install_code = install_code or keys.install_code(self.device)
        self.trust_centre = TrustCentre(hub, _KeSends(self), self.clock, self.bus,  # type: ignore[arg-type]
                                        hub_identity or keys.identity(radio), security=ApsLinkSecurity(hub),
                                        ephemeral_source=keys.ephemeral_source(hub),
                                        on_link_key=transport.install_link_key, next_aps=self.host.next_aps,
                                        source="test_hub")
        self.update_device_log(None)
        self.trust_centre.joined_through_ncp(self.device)
        transport.on_aps_security = self._air

    def _air(self, packet: ApsPacket, secured: bool) -> None:
        """The device's OTA and Tunneling unicasts as the NCP received them: APS-encrypted or not
        (the APS_OPTION_ENCRYPTION flag of incomingMessageHandler, D4)."""
        if packet.src == self.device and packet.cluster in PROTECTED_CLUSTERS and not packet.is_broadcast:
            self.air_frames.append(AirSecurity(self.now(), packet.cluster, secured))

    def start_device(self) -> None:
        """Make the device join and run CBKE afresh: ZDO Mgmt_Leave_req with Rejoin set (a real
        device then rejoins with its install code and starts Key Establishment)."""
        transport: Any = self.transport

        async def inside() -> None:
            if self.device_nwk == 0xFFFE:
                nwk = await transport.resolve_nwk(self.device)
                if nwk is not None:
                    self.device_nwk = nwk
            self.transport.send(ApsPacket(transport.eui64, self.device, transport.nwk, self.device_nwk,
                                          mgmt_leave_request(self.host.next_aps(), self.device), src_ep=0, dst_ep=0,
                                          profile=ZDO_PROFILE, cluster=MGMT_LEAVE_REQ, aps_counter=self.host.next_aps()))

        self.loop.run_until_complete(inside())

    def send_plaintext(self, send: Callable[[], None]) -> None:
        """Run ``send`` with the APS ENCRYPTION option off: the NCP sends it unencrypted."""
        transport: Any = self.transport
        clusters, transport.aps_encrypted_clusters = transport.aps_encrypted_clusters, frozenset()
        try:
            send()
            self.loop.run_until_complete(asyncio.sleep(0.05))  # the send task builds its frame first
        finally:
            transport.aps_encrypted_clusters = clusters

    def execute(self, actions: list[Any]) -> None:
        async def inside() -> None:  # the dongle's transport sends from its event loop
            self.host.execute(actions)

        self.loop.run_until_complete(inside())

    def open_tunnel(self) -> None:
        async def inside() -> None:
            CheckSession.open_tunnel(self)

        self.loop.run_until_complete(inside())

    def execute_send(self, packet: ApsPacket) -> None:
        async def inside() -> None:  # the dongle's transport sends from its event loop
            self.transport.send(packet)

        self.loop.run_until_complete(inside())

    def wait(self, until: Callable[[], bool] | None, budget_s: float) -> bool:
        async def watch() -> bool:
            deadline = self.loop.time() + budget_s
            self._wake = asyncio.Event()
            try:
                while until is None or not until():
                    left = deadline - self.loop.time()
                    if left <= 0:
                        return until is None
                    self._wake.clear()
                    try:
                        await asyncio.wait_for(self._wake.wait(), left)
                    except asyncio.TimeoutError:
                        pass
                return True
            finally:
                self._wake = None

        return self.loop.run_until_complete(watch())

    def close(self) -> None:
        super().close()
        self.transport.set_receiver(None)
        self.transport.remove_trace_hook(self._trace)
        transport: Any = self.transport
        if self.trust_centre is not None:
            transport.on_aps_security = None
            transport.aps_encrypted_clusters = frozenset()


class _KeSends:
    """The test hub's transport as its Trust Centre sees it: Key Establishment frames pass through
    the session's ``ke_mangle`` (D3), so a negative exchange goes on the air as the check wants."""

    def __init__(self, session: CheckSession) -> None:
        self._session = session

    @property
    def nwk(self) -> int:
        return self._session.transport.nwk

    @property
    def eui64(self) -> int:
        return self._session.transport.eui64

    def send(self, packet: ApsPacket, on_delivery: Any = None) -> None:
        mangle = self._session.ke_mangle
        if mangle is not None and packet.cluster == KEY_ESTABLISHMENT_CLUSTER:
            changed = mangle(ke_frames.decode(packet.payload))
            if changed is not None:
                packet = packet._replace(payload=ke_frames.encode(changed))
        self._session.transport.send(packet, on_delivery)
