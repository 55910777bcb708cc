"""The Comms Hub's end of the GBCS tunnels (ZSE Tunneling cluster 0x0704), one per HAN device.

As GBCS has it (and the reference CHF implementations do): the hub requests the tunnel of an
ESME, HCALCS or PPMID (it is the tunnel's client) as soon as it hears the device, then sends each
GBCS message at once in a PUT; a GSME, which sleeps, requests its own tunnel to the hub (the hub
is its server), and the hub *queues* its messages: the GSME pulls them with GET, each answered by
a GET-RESPONSE carrying one message (or none) and how many remain. Messages from any device arrive
in a PUT. Messages queued before a tunnel is up wait for it.

A PUT or GET-RESPONSE whose delivery fails (the sender's APS layer gave up, e.g. a block of a
fragmented message ran out of retries) puts its message back at the head of the queue: a GSME
gets it at its next GET, another device when the hub next hears it; after
:data:`MAX_RESENDS` failures in a row the message is dropped (``tunnel_message_dropped``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

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
from emulator.han.packet import ApsPacket, DeliveryStatus
from emulator.han.transport import HanTransport
from emulator.runtime.events import EventBus

_LOGGER = logging.getLogger(__name__)

MAX_RESENDS = 3
"""Failed deliveries of one GBCS message in a row before the hub gives it up."""

class TunnelHub(Protocol):
    """What the tunnels need of their hub."""

    eui64: int
    transport: HanTransport
    bus: EventBus

    @property
    def ota(self) -> Any: ...  # next_aps(): the node's one APS counter

    def is_sleepy(self, device: int) -> bool: ...

    def _on_gbcs_message(self, device: int, message: bytes) -> None:
        """Each GBCS message a device sent (the bytes of a PUT)."""


@dataclass(slots=True)
class _Tunnel:
    hub_is_client: bool
    tunnel_id: int | None = None  # None: requested, not yet answered
    queue: list[bytes] | None = None  # messages waiting (a GSME's, or any before the tunnel is up)
    failures: int = 0  # failed deliveries in a row of the message at the head of the queue

    def put(self, message: bytes) -> None:
        if self.queue is None:
            self.queue = []
        self.queue.append(message)

    def take(self) -> bytes:
        return self.queue.pop(0) if self.queue else b""

    @property
    def waiting(self) -> int:
        return len(self.queue) if self.queue else 0


class HubTunnels:
    """Tunnels of one hub; ``sleepy(device)`` says whether a device pulls (a GSME)."""

    __slots__ = ("hub", "_tunnels", "_next_id", "_tsn")  # one per hub of a fleet: references, no copies

    def __init__(self, hub: "TunnelHub") -> None:
        self.hub = hub
        self._tunnels: dict[int, _Tunnel] = {}
        self._next_id = 0
        self._tsn = 0

    def heard(self, device: int, nwk: int) -> None:
        """A frame came from ``device``: a non-sleepy device with no tunnel gets its RequestTunnel."""
        tunnel = self._tunnels.get(device)
        if tunnel is None:
            if not self.hub.is_sleepy(device):
                self._tunnels[device] = _Tunnel(hub_is_client=True)
                self._send(device, nwk, encode_frame(RequestTunnel(), self._next_tsn()))
        elif tunnel.queue and tunnel.hub_is_client and tunnel.tunnel_id is not None:
            self._put(device, nwk, tunnel, tunnel.take())  # its delivery failed: again, now it is heard

    def send(self, device: int, nwk: int, message: bytes) -> None:
        """Send (non-sleepy) or queue (sleepy, or tunnel not up) one GBCS message for ``device``."""
        tunnel = self._tunnels.get(device)
        if tunnel is None:
            if self.hub.is_sleepy(device):
                tunnel = self._tunnels[device] = _Tunnel(hub_is_client=False)
            else:
                self.heard(device, nwk)
                tunnel = self._tunnels[device]
        if tunnel.tunnel_id is None or not tunnel.hub_is_client:
            tunnel.put(message)
            return
        self._put(device, nwk, tunnel, message)

    def pending(self, device: int) -> int:
        tunnel = self._tunnels.get(device)
        return tunnel.waiting if tunnel is not None else 0

    def forget(self, device: int) -> None:
        self._tunnels.pop(device, None)

    # -- receive -------------------------------------------------------------------------------
    def receive(self, packet: ApsPacket) -> None:
        try:
            frame = decode_frame(packet.payload)
        except TunnelError as exc:
            self.hub.bus.emit("comms_hub", "malformed_frame", packet.src, cluster="0x0704", reason=str(exc))
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
                self.hub.bus.emit("comms_hub", "malformed_frame", device, cluster="0x0704",
                              reason=f"TransferData on tunnel {payload.tunnel_id}, which this hub did not open")
                return
            if payload.header is GbcsTunnelHeader.PUT:
                self.hub._on_gbcs_message(device, payload.message)
            elif payload.header is GbcsTunnelHeader.GET and not tunnel.hub_is_client:
                message = tunnel.take()
                self._send(device, packet.src_nwk, encode_frame(
                    TransferData(payload.tunnel_id, GbcsTunnelHeader.GET_RESPONSE, message, tunnel.waiting),
                    self._next_tsn(), from_server=True), (tunnel, message) if message else None)
            else:
                self.hub.bus.emit("comms_hub", "malformed_frame", device, cluster="0x0704",
                              reason=f"unexpected {payload.header.name} from a device")

    def _on_request(self, packet: ApsPacket, request: RequestTunnel) -> None:
        device = packet.src
        if request.protocol_id != RequestTunnel().protocol_id:
            self._send(device, packet.src_nwk, encode_frame(
                RequestTunnelResponse(0xFFFF, TunnelStatus.PROTOCOL_NOT_SUPPORTED), self._next_tsn()))
            return
        tunnel = self._tunnels.get(device)
        queued = tunnel.queue if tunnel is not None else None
        tunnel = self._tunnels[device] = _Tunnel(hub_is_client=False, tunnel_id=self._new_id(), queue=queued)
        assert tunnel.tunnel_id is not None
        self._send(device, packet.src_nwk, encode_frame(RequestTunnelResponse(tunnel.tunnel_id), self._next_tsn()))
        self.hub.bus.emit("comms_hub", "tunnel_opened", device, tunnel_id=tunnel.tunnel_id, by="device")

    def _on_response(self, packet: ApsPacket, response: RequestTunnelResponse) -> None:
        device = packet.src
        tunnel = self._tunnels.get(device)
        if tunnel is None or not tunnel.hub_is_client:
            return
        if response.status is not TunnelStatus.SUCCESS:
            self.hub.bus.emit("comms_hub", "tunnel_refused", device, status=response.status.name)
            self._tunnels.pop(device, None)
            return
        tunnel.tunnel_id = response.tunnel_id
        self.hub.bus.emit("comms_hub", "tunnel_opened", device, tunnel_id=response.tunnel_id, by="hub")
        queued, tunnel.queue = tunnel.queue or [], None
        for message in queued:
            self._put(device, packet.src_nwk, tunnel, message)

    # -- send ----------------------------------------------------------------------------------
    def _put(self, device: int, nwk: int, tunnel: _Tunnel, message: bytes) -> None:
        assert tunnel.tunnel_id is not None
        self._send(device, nwk, encode_frame(TransferData(tunnel.tunnel_id, GbcsTunnelHeader.PUT, message),
                                             self._next_tsn(), from_server=not tunnel.hub_is_client), (tunnel, message))

    def _send(self, device: int, nwk: int, zcl: bytes, carrying: tuple[_Tunnel, bytes] | None = None) -> None:
        hub = self.hub
        packet = ApsPacket(hub.eui64, device, hub.transport.nwk, nwk, zcl, cluster=TUNNELING_CLUSTER,
                           aps_counter=hub.ota.next_aps())
        if carrying is None:
            hub.transport.send(packet)
            return
        tunnel, message = carrying

        def delivered(_packet: ApsPacket, status: DeliveryStatus) -> None:
            if status is DeliveryStatus.DELIVERED:
                tunnel.failures = 0
                return
            tunnel.failures += 1
            if tunnel.failures > MAX_RESENDS:
                tunnel.failures = 0
                hub.bus.emit("comms_hub", "tunnel_message_dropped", device, octets=len(message),
                             failures=MAX_RESENDS + 1)
                return
            hub.bus.emit("comms_hub", "tunnel_delivery_failed", device, octets=len(message),
                         failures=tunnel.failures)
            if tunnel.queue is None:
                tunnel.queue = []
            tunnel.queue.insert(0, message)  # the GSME's next GET, or the next time the device is heard

        hub.transport.send(packet, delivered)

    def _new_id(self) -> int:
        self._next_id = (self._next_id + 1) & 0xFFFF
        return self._next_id

    def _next_tsn(self) -> int:
        self._tsn = (self._tsn + 1) & 0xFF
        return self._tsn
