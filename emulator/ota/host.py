"""Runs one OTA engine (the hub's server or a device's client) on a HAN transport and a clock.

The only place where engine actions meet I/O: OTA frames are decoded and encoded here, sends,
timers and outcomes are carried out here, and nothing here knows whether the transport is virtual
or a dongle. Both roles use the same host; they differ only in the frame direction they send,
and in who a delivery failure or a malformed frame is reported about (the device concerned: the
server's peer, the client itself).
"""

from __future__ import annotations

import logging
from typing import Callable, Final, Iterable

from emulator.han.packet import OTA_CLUSTER, SMART_ENERGY_ENDPOINT, SMART_ENERGY_PROFILE, ApsPacket, DeliveryStatus
from emulator.han.transport import HanTransport
from emulator.runtime.clock import Clock
from emulator.runtime.events import EventBus
from emulator.runtime.timers import KeyedTimers

from . import codec
from .actions import Action, Activate, Outcome, Send, SetTimer, TimerKind
from .client import OtaClient
from .frames import DefaultResponse, ImageNotify, Status
from .server import OtaServer
from .timeline import render

_LOGGER = logging.getLogger(__name__)

_new: Final = tuple.__new__
_FAILED: Final = DeliveryStatus.FAILED  # a C static in the compiled build, not a look-up on the enum
_LQI, _RSSI = ApsPacket._field_defaults["lqi"], ApsPacket._field_defaults["rssi"]


OutcomeListener = Callable[[Outcome], None]
ActivateHandler = Callable[[Activate], None]


class EngineHost:
    """Carries out the actions of ``engine`` (an :class:`OtaServer` or an :class:`OtaClient`)."""

    # A fleet keeps one host per node: slots, and the engine called directly (no adapters).
    __slots__ = ("server", "client", "transport", "clock", "bus", "source", "endpoint", "peer_endpoint", "aps",
                 "up", "_on_outcome", "_on_activate", "_direction", "_timers")

    def __init__(
        self,
        engine: OtaServer | OtaClient,
        transport: HanTransport,
        clock: Clock,
        bus: EventBus,
        *,
        source: str,
        on_outcome: OutcomeListener | None = None,
        on_activate: ActivateHandler | None = None,
        endpoint: int = SMART_ENERGY_ENDPOINT,
    ) -> None:
        self.server = engine if isinstance(engine, OtaServer) else None
        self.client = engine if isinstance(engine, OtaClient) else None
        self.transport = transport
        self.clock = clock
        self.bus = bus
        self.source = source
        self.endpoint = endpoint
        # Where the peer's OTA endpoint is: a client talks to the endpoint the server's frames come
        # from (the emulator's stand-in for a Match Descriptor answer); a server answers devices on
        # the Smart Energy endpoint.
        self.peer_endpoint = SMART_ENERGY_ENDPOINT
        self.aps = 0  # the node's APS counter: its OTA and its tunnel frames count together
        self.up = True  # False: a powered-off node sends nothing and its timers do not fire
        self._on_outcome = on_outcome  # node logic: the hub's CCS08 alerts, a device's GBCS alerts
        self._on_activate = on_activate
        self._direction = 1 if self.server is not None else 0  # ZCL: 1 = server to client
        self._timers = KeyedTimers(clock)  # keyed (device, kind) for the server, kind for a client

    def stop(self) -> None:
        self._timers.cancel_all()

    def next_aps(self) -> int:
        """The node's next APS counter value (for any frame it sends, OTA or not)."""
        self.aps = (self.aps + 1) & 0xFF
        return self.aps

    # -- receive -----------------------------------------------------------------------------
    def receive(self, packet: ApsPacket) -> None:
        """One OTA-cluster frame for this node."""
        server = self.server
        try:
            frame = codec.decode(packet.payload)
        except codec.FrameError as exc:
            self.bus.emit(self.source, "malformed_frame", self._concerned(packet.src), reason=str(exc))
            if server is not None:
                self._reply_malformed(packet)
            return
        if server is not None:
            if frame.header.direction != 0:
                self.bus.emit(self.source, "frame_ignored", packet.src, reason="server-to-client frame received")
                return
            self.execute(server.on_frame(self.clock.now(), packet.src, packet.src_nwk, frame))
        else:
            assert self.client is not None
            if packet.src_ep != self.peer_endpoint and not self.client.profile.fixed_server_endpoint:
                self.peer_endpoint = packet.src_ep
            self.execute(self.client.on_frame(self.clock.now(), frame))

    def _concerned(self, peer: int) -> int:
        """The device an event is about: the server reports on its peer, a client on itself."""
        return peer if self.server is not None else self.transport.eui64

    def _reply_malformed(self, packet: ApsPacket) -> None:
        payload = packet.payload
        if len(payload) < 3:
            return
        manufacturer_specific = bool(payload[0] & 0x04)
        if manufacturer_specific and len(payload) < 5:
            return
        tsn = payload[3] if manufacturer_specific else payload[1]
        command_id = payload[4] if manufacturer_specific else payload[2]
        self._transmit(Send(packet.src, packet.src_nwk, DefaultResponse(command_id, Status.MALFORMED_COMMAND), tsn))

    # -- actions -----------------------------------------------------------------------------
    def execute(self, actions: Iterable[Action]) -> None:
        for action in actions:
            if isinstance(action, Send):
                if action.delay > 0:
                    self.clock.call_later(action.delay, self._transmit, action)
                else:
                    self._transmit(action)
            elif isinstance(action, SetTimer):
                device, timer, delay = action
                self._timers.set(timer if self.client is not None else (device, timer), delay,
                                 self._timer_fired, device, timer)
            elif isinstance(action, Activate):
                if self._on_activate is None:
                    raise TypeError(f"nothing here can activate firmware: {action!r}")
                self._on_activate(action)
            else:
                self.report(action)

    def report(self, outcome: Outcome) -> None:
        """An outcome to the timeline (rendered only if someone listens) and to the node."""
        self.bus.report(self.source, outcome.device, outcome, render)
        if self._on_outcome is not None:
            self._on_outcome(outcome)

    def _timer_fired(self, device: int, kind: TimerKind) -> None:
        if not self.up:
            return
        if self.server is not None:
            self.execute(self.server.on_timer(self.clock.now(), device, kind))
        else:
            assert self.client is not None
            self.execute(self.client.on_timer(self.clock.now(), kind))

    def _transmit(self, action: Send) -> None:
        if not self.up:
            return
        self.aps = aps = (self.aps + 1) & 0xFF  # next_aps()
        self.transport.send(self.packet_for(action, aps), None if action.nwk >= 0xFFF8 else self._on_delivery)

    def packet_for(self, action: Send, aps_counter: int) -> ApsPacket:
        """The frame this host puts on the air for ``action`` (the fast path builds the frame it
        hands back to the per-frame path with it)."""
        transport = self.transport
        command = action.command
        # A unicast Image Notify lets the client answer (Disable Default Response clear, OTA spec
        # 6.10.3.5.1); every other server frame, and a broadcast, keeps the bit set.
        ddr = False if type(command) is ImageNotify and action.nwk < 0xFFF8 else None
        return _new(ApsPacket, (  # every field in order: no keyword handling, two frames a block exchange
            transport.eui64, action.device, transport.nwk, action.nwk,
            codec.encode(command, tsn=action.tsn, direction=self._direction, disable_default_response=ddr),
            self.endpoint, self.peer_endpoint, SMART_ENERGY_PROFILE, OTA_CLUSTER, aps_counter, _LQI, _RSSI,
        ))

    def set_timer_at(self, action: SetTimer, sent_at: float) -> None:
        """Carry out ``action`` as if it had been executed at ``sent_at`` (the fast path)."""
        device, timer, delay = action
        self._timers.set_at(timer if self.client is not None else (device, timer), sent_at + delay,
                            self._timer_fired, device, timer)

    def armed_timer(self, kind: TimerKind, device: int = 0) -> object:
        """The clock timer armed for this client's timer ``kind`` (a server's: for ``device``),
        or ``None``; the fast path leaves a response timer it re-arms out of the horizon."""
        return self._timers.armed(kind if self.client is not None else (device, kind))

    def delivery_callback(self) -> Callable[[ApsPacket, DeliveryStatus], None]:
        return self._on_delivery

    def _on_delivery(self, packet: ApsPacket, status: DeliveryStatus) -> None:
        if status is _FAILED:
            # The client retries on its own timeout; the host only reports the loss.
            if self.server is not None:
                self.bus.emit(self.source, "delivery_failed", packet.dst, cluster=f"0x{packet.cluster:04X}")
            else:
                self.bus.emit(self.source, "delivery_failed", self.transport.eui64)
