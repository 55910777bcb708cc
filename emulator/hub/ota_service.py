"""Runs the OTA server engine on a HAN transport and a clock.

The only place where server actions meet I/O: frames are decoded here, actions are carried out
here, and nothing here knows whether the transport is virtual or a dongle.
"""

from __future__ import annotations

import logging
from typing import Callable, Iterable

from emulator.han.packet import ApsPacket, DeliveryStatus, OTA_CLUSTER
from emulator.han.transport import HanTransport
from emulator.ota import codec
from emulator.ota.actions import Action, Emit, Send, SetTimer
from emulator.ota.frames import DefaultResponse, Status
from emulator.ota.server import OtaServer
from emulator.runtime.clock import Clock
from emulator.runtime.events import EventBus
from emulator.runtime.timers import KeyedTimers

_LOGGER = logging.getLogger(__name__)

EmitListener = Callable[[Emit], None]


class OtaService:
    """The hub's OTA server endpoint (Smart Energy profile, endpoint 1, cluster 0x0019)."""

    def __init__(
        self,
        server: OtaServer,
        transport: HanTransport,
        clock: Clock,
        bus: EventBus,
        *,
        source: str = "comms_hub",
        endpoint: int = 1,
    ) -> None:
        self.server = server
        self.transport = transport
        self.clock = clock
        self.bus = bus
        self.source = source
        self.endpoint = endpoint
        self._timers = KeyedTimers(clock)
        self._listeners: list[EmitListener] = []
        self._aps_counter = 0
        self.frames_in = 0
        self.frames_out = 0

    def add_listener(self, listener: EmitListener) -> None:
        """Hub logic (CCS08 alerts) listens to the engine's reports here."""
        self._listeners.append(listener)

    def restore(self) -> None:
        self.execute(self.server.restore(self.clock.now()))

    def stop(self) -> None:
        self._timers.cancel_all()

    # -- receive -----------------------------------------------------------------------------
    def handle_packet(self, packet: ApsPacket) -> None:
        self.frames_in += 1
        try:
            frame = codec.decode(packet.payload)
        except codec.FrameError as exc:
            self.bus.emit(self.source, "malformed_frame", packet.src, reason=str(exc))
            self._reply_malformed(packet)
            return
        if frame.header.direction != 0:
            self.bus.emit(self.source, "frame_ignored", packet.src, reason="server-to-client frame received")
            return
        self.execute(self.server.on_frame(self.clock.now(), packet.src, packet.src_nwk, frame))

    def _reply_malformed(self, packet: ApsPacket) -> None:
        payload = packet.payload
        if len(payload) < 3:
            return
        manufacturer_specific = bool(payload[0] & 0x04)
        if manufacturer_specific and len(payload) < 5:
            return
        tsn = payload[3] if manufacturer_specific else payload[1]
        command_id = payload[4] if manufacturer_specific else payload[2]
        self._transmit(packet.src, packet.src_nwk,
                       Send(packet.src, packet.src_nwk, DefaultResponse(command_id, Status.MALFORMED_COMMAND), tsn))

    # -- actions -----------------------------------------------------------------------------
    def execute(self, actions: Iterable[Action]) -> None:
        for action in actions:
            if type(action) is Send:
                if action.delay > 0:
                    self.clock.call_later(action.delay, self._transmit, action.device, action.nwk, action)
                else:
                    self._transmit(action.device, action.nwk, action)
            elif type(action) is SetTimer:
                self._timers.set((action.device, action.kind), action.delay, self._on_timer, action.device, action.kind)
            elif type(action) is Emit:
                self.bus.emit(self.source, action.event, action.device, **action.fields)
                for listener in self._listeners:
                    listener(action)

    def _on_timer(self, device: int, kind: str) -> None:
        self.execute(self.server.on_timer(self.clock.now(), device, kind))

    def _transmit(self, device: int, nwk: int, action: Send) -> None:
        direction = 1
        payload = codec.encode(action.command, tsn=action.tsn, direction=direction)
        self._aps_counter = (self._aps_counter + 1) & 0xFF
        packet = ApsPacket(
            src=self.transport.eui64,
            dst=device,
            src_nwk=self.transport.nwk,
            dst_nwk=nwk,
            payload=payload,
            src_ep=self.endpoint,
            dst_ep=self.endpoint,
            cluster=OTA_CLUSTER,
            aps_counter=self._aps_counter,
        )
        self.frames_out += 1
        self.transport.send(packet, None if packet.is_broadcast else self._on_delivery)

    def _on_delivery(self, packet: ApsPacket, status: DeliveryStatus) -> None:
        if status is DeliveryStatus.FAILED:
            # The client retries on its own timeout; the server only reports the loss.
            self.bus.emit(self.source, "delivery_failed", packet.dst, cluster=f"0x{packet.cluster:04X}")
