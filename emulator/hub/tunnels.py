"""The Comms Hub's end of the GBCS tunnels (ZSE Tunneling cluster 0x0704), one per HAN device.

As GBCS has it (and the reference CHF implementations do): the hub requests the tunnel of an
ESME, HCALCS or PPMID (it is the tunnel's client) as soon as it hears the device, then sends each
GBCS message at once in a PUT; a GSME, which sleeps, requests its own tunnel to the hub (the hub
is its server), and the hub *queues* its messages: the GSME pulls them with GET, each answered by
a GET-RESPONSE carrying one message (or none) and how many remain. Messages from any device arrive
in a PUT. Messages queued before a tunnel is up wait for it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

from emulator.gbcs.tunnel import (
    TUNNELING_CLUSTER,
    GbcsTunnelHeader,
    RequestTunnel,
    RequestTunnelResponse,
    TransferData,
    TunnelError,
    TunnelStatus,
    decode_frame,
    encode_frame,
)
from emulator.han.packet import ApsPacket
from emulator.han.transport import HanTransport
from emulator.runtime.events import EventBus

_LOGGER = logging.getLogger(__name__)

MessageHandler = Callable[[int, bytes], None]
"""Called with the device and each GBCS message it sent (the bytes of a PUT)."""


@dataclass(slots=True)
class _Tunnel:
    hub_is_client: bool
    tunnel_id: int | None = None  # None: requested, not yet answered
    queue: list[bytes] = field(default_factory=list)


class HubTunnels:
    """Tunnels of one hub; ``sleepy(device)`` says whether a device pulls (a GSME)."""

    def __init__(self, hub: int, transport: HanTransport, next_aps: Callable[[], int], bus: EventBus,
                 on_message: MessageHandler, *, sleepy: Callable[[int], bool] = lambda device: False) -> None:
        self.hub = hub
        self.transport = transport
        self.next_aps = next_aps
        self.bus = bus
        self.on_message = on_message
        self.sleepy = sleepy
        self._tunnels: dict[int, _Tunnel] = {}
        self._next_id = 0
        self._tsn = 0

    def heard(self, device: int, nwk: int) -> None:
        """A frame came from ``device``: a non-sleepy device with no tunnel gets its RequestTunnel."""
        if device not in self._tunnels and not self.sleepy(device):
            self._tunnels[device] = _Tunnel(hub_is_client=True)
            self._send(device, nwk, encode_frame(RequestTunnel(), self._next_tsn()))

    def send(self, device: int, nwk: int, message: bytes) -> None:
        """Send (non-sleepy) or queue (sleepy, or tunnel not up) one GBCS message for ``device``."""
        tunnel = self._tunnels.get(device)
        if tunnel is None:
            if self.sleepy(device):
                tunnel = self._tunnels[device] = _Tunnel(hub_is_client=False)
            else:
                self.heard(device, nwk)
                tunnel = self._tunnels[device]
        if tunnel.tunnel_id is None or not tunnel.hub_is_client:
            tunnel.queue.append(message)
            return
        self._put(device, nwk, tunnel, message)

    def pending(self, device: int) -> int:
        tunnel = self._tunnels.get(device)
        return len(tunnel.queue) if tunnel is not None else 0

    def forget(self, device: int) -> None:
        self._tunnels.pop(device, None)

    # -- receive -------------------------------------------------------------------------------
    def receive(self, packet: ApsPacket) -> None:
        try:
            frame = decode_frame(packet.payload)
        except TunnelError as exc:
            self.bus.emit("comms_hub", "malformed_frame", packet.src, cluster="0x0704", reason=str(exc))
            return
        payload = frame.payload
        device = packet.src
        if isinstance(payload, RequestTunnel):
            self._on_request(packet, payload)
        elif isinstance(payload, RequestTunnelResponse):
            self._on_response(packet, payload)
        else:
            tunnel = self._tunnels.get(device)
            if tunnel is None or tunnel.tunnel_id != payload.tunnel_id:
                self.bus.emit("comms_hub", "malformed_frame", device, cluster="0x0704",
                              reason=f"TransferData on tunnel {payload.tunnel_id}, which this hub did not open")
                return
            if payload.header is GbcsTunnelHeader.PUT:
                self.on_message(device, payload.message)
            elif payload.header is GbcsTunnelHeader.GET and not tunnel.hub_is_client:
                message = tunnel.queue.pop(0) if tunnel.queue else b""
                self._send(device, packet.src_nwk, encode_frame(
                    TransferData(payload.tunnel_id, GbcsTunnelHeader.GET_RESPONSE, message, len(tunnel.queue)),
                    self._next_tsn(), from_server=True))
            else:
                self.bus.emit("comms_hub", "malformed_frame", device, cluster="0x0704",
                              reason=f"unexpected {payload.header.name} from a device")

    def _on_request(self, packet: ApsPacket, request: RequestTunnel) -> None:
        device = packet.src
        if request.protocol_id != RequestTunnel().protocol_id:
            self._send(device, packet.src_nwk, encode_frame(
                RequestTunnelResponse(0xFFFF, TunnelStatus.PROTOCOL_NOT_SUPPORTED), self._next_tsn()))
            return
        tunnel = self._tunnels.get(device)
        queued = tunnel.queue if tunnel is not None else []
        tunnel = self._tunnels[device] = _Tunnel(hub_is_client=False, tunnel_id=self._new_id(), queue=queued)
        assert tunnel.tunnel_id is not None
        self._send(device, packet.src_nwk, encode_frame(RequestTunnelResponse(tunnel.tunnel_id), self._next_tsn()))
        self.bus.emit("comms_hub", "tunnel_opened", device, tunnel_id=tunnel.tunnel_id, by="device")

    def _on_response(self, packet: ApsPacket, response: RequestTunnelResponse) -> None:
        device = packet.src
        tunnel = self._tunnels.get(device)
        if tunnel is None or not tunnel.hub_is_client:
            return
        if response.status is not TunnelStatus.SUCCESS:
            self.bus.emit("comms_hub", "tunnel_refused", device, status=response.status.name)
            self._tunnels.pop(device, None)
            return
        tunnel.tunnel_id = response.tunnel_id
        self.bus.emit("comms_hub", "tunnel_opened", device, tunnel_id=response.tunnel_id, by="hub")
        queued, tunnel.queue = tunnel.queue, []
        for message in queued:
            self._put(device, packet.src_nwk, tunnel, message)

    # -- send ----------------------------------------------------------------------------------
    def _put(self, device: int, nwk: int, tunnel: _Tunnel, message: bytes) -> None:
        assert tunnel.tunnel_id is not None
        self._send(device, nwk, encode_frame(TransferData(tunnel.tunnel_id, GbcsTunnelHeader.PUT, message),
                                             self._next_tsn(), from_server=not tunnel.hub_is_client))

    def _send(self, device: int, nwk: int, zcl: bytes) -> None:
        self.transport.send(ApsPacket(self.hub, device, self.transport.nwk, nwk, zcl,
                                      cluster=TUNNELING_CLUSTER, aps_counter=self.next_aps()))

    def _new_id(self) -> int:
        self._next_id = (self._next_id + 1) & 0xFFFF
        return self._next_id

    def _next_tsn(self) -> int:
        self._tsn = (self._tsn + 1) & 0xFF
        return self._tsn
