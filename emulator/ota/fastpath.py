"""The OTA fast path: a running transfer's block exchanges advanced in one go, exactly.

A steady-state block exchange (Image Block Request, SUCCESS Image Block Response, next request)
produces no outcome, no timer and no state change beyond counters; on the virtual HAN the only
thing that makes it cost is the machinery around it (encode, decode, packets, scheduler). When
a client's Image Block Request goes on the air, :class:`OtaFastPath` asks the two engines how
many exchanges from here are plain (:meth:`OtaServer.plain_blocks`,
:meth:`OtaClient.pending_block_request`), draws their frames on the premises' channel one after
another with the radio model's own code (:meth:`VirtualHan.fast_arrival`), applies the engines'
batch transitions (:meth:`OtaServer.serve_blocks`, :meth:`OtaClient.receive_blocks`) and hands
the last frame back to the per-frame path at the time it lands.

Exactness: a segment ends before the first frame that fails or reaches the premises' *horizon*
(its next pending timer, :meth:`PremisesClock.horizon`: nothing else of this premises can happen
before it, and premises never interact), and before the block that reaches a progress step or
ends the image (those produce outcomes, which therefore come from the per-frame path at their
per-frame times). A frame that was drawn but not sent is kept by the channel for the per-frame
send (:meth:`RadioChannel.carry`), so the random draws are the same, in the same order.
It does not run with hooks, a manipulator, sleepy ends, loss outside the radio model, another
transport than the plain virtual port, or anything but plain Image Block Requests (docs/fleet.md).
"""

from __future__ import annotations

import logging
from typing import Mapping, Protocol

from emulator.han.packet import OTA_CLUSTER, ApsPacket, DeliveryStatus
from emulator.han.radio import RadioChannel
from emulator.han.transport import DeliveryCallback, HanTransport
from emulator.han.virtual import VirtualHan, VirtualPort, _arrive
from emulator.runtime.clock import PremisesClock

from . import codec
from .actions import Send, SetTimer, TimerKind
from .frames import ImageBlockResponse, Status
from .host import EngineHost

_LOGGER = logging.getLogger(__name__)

_IMAGE_BLOCK_REQUEST = 0x03
# A response in a segment lands at least this long before its request's response timer expires
# (KeyedTimers fires 1e-9 s early at most): a timer that does fire runs per frame.
_TIMER_MARGIN_S = 1e-6


class OtaNode(Protocol):
    """A hub or a device: its OTA host and its transport (the host may be replaced: a restart)."""

    @property
    def ota(self) -> EngineHost: ...

    @property
    def transport(self) -> HanTransport: ...


class OtaFastPath:
    """The fast path of one premises' virtual HAN; installed as ``VirtualHan.fast_path``."""

    def __init__(self, han: VirtualHan, clock: PremisesClock, hub: OtaNode, devices: Mapping[int, OtaNode]) -> None:
        self._han = han
        self._clock = clock
        self._hub = hub
        self._devices = devices
        self._response_len: dict[int, int] = {}
        self.segments = 0
        self.exchanges = 0  # block exchanges advanced by segments

    def __call__(self, packet: ApsPacket, on_delivery: DeliveryCallback | None) -> bool:
        payload = packet.payload
        # Cheap test first: a cluster-specific, client-to-server, not manufacturer-specific
        # Image Block Request on the OTA cluster.
        if (len(payload) < 3 or payload[2] != _IMAGE_BLOCK_REQUEST or payload[0] & 0x0F != 0x01
                or packet.cluster != OTA_CLUSTER):
            return False
        device = self._devices.get(packet.src)
        if device is None:
            return False
        hub = self._hub
        client_host, server_host = device.ota, hub.ota
        dport, hport = device.transport, hub.transport
        client, server = client_host.client, server_host.server
        han = self._han
        if (client is None or server is None or not client_host.up or not server_host.up
                or type(dport) is not VirtualPort or type(hport) is not VirtualPort
                or dport.security is not None or hport.security is not None  # APS security: per frame
                or not dport.attached or not hport.attached or dport._hooks or hport._hooks
                or packet.dst != hport.eui64 or on_delivery != client_host.delivery_callback() or han.loss):
            return False
        link = han.link
        if link is not None and (not isinstance(link, RadioChannel) or link.is_sleepy(dport.eui64)
                                 or link.is_sleepy(hport.eui64)):
            return False
        pending = client.pending_block_request()
        if pending is None:
            return False
        request, tsn = pending
        try:
            frame = codec.decode(payload)
        except codec.FrameError:
            return False
        if frame.command != request or frame.header.tsn != tsn or frame.header.direction != 0:
            return False  # not the engine's own request as the host encodes it
        dev, hub_eui = dport.eui64, hport.eui64
        count, size = server.plain_blocks(dev, packet.src_nwk, request)
        if count == 0:
            return False
        session = server.sessions.get(dev)
        assert session is not None and session.image is not None
        image = session.image.data
        response_len = self._response_len.get(size)
        if response_len is None:
            sample = ImageBlockResponse(Status.SUCCESS, request.manufacturer_code, request.image_type,
                                        request.file_version, request.file_offset, image[:size])
            response_len = self._response_len[size] = len(codec.encode(sample, tsn=0, direction=1))

        # The client's response timer is no horizon: each request of the segment re-arms it, and
        # each response lands before it expires (`within`), so it never fires in the segment.
        # The timer as the segment's last request sets it is set at `now`, right after this
        # request's own SetTimer (the host executes that when this returns).
        clock = self._clock
        now = clock.now()
        period = han.fast_exchanges(dev, hub_eui, len(payload), response_len, now, count,
                                    clock.horizon(client_host.armed_timer(TimerKind.RESPONSE)),
                                    client.profile.response_timeout_s - _TIMER_MARGIN_S)
        done, sent, previous_sent, last_request_at, request_lands = period
        if request_lands is None and done == 0:
            return False  # the first request is sent per frame (with the draw already made)
        self.segments += 1
        self.exchanges += done
        if request_lands is not None:
            # The client took `done` blocks and sent the next request, which lands at the hub.
            if done:
                server.serve_blocks(dev, done, size, tsn, last_request_at)  # tsn unused for these
                server_host.aps = (server_host.aps + done) & 0xFF
                resend: Send
                resend, timer = client.receive_blocks(done, size, image)
                client_host.aps = (client_host.aps + done) & 0xFF
                out = client_host.packet_for(resend, client_host.aps)
                clock.call_at(now, client_host.set_timer_at, timer, sent)
                clock.call_at(request_lands, _arrive, hport, out, on_delivery, DeliveryStatus.DELIVERED)
            else:
                clock.call_at(request_lands, _arrive, hport, packet, on_delivery, DeliveryStatus.DELIVERED)
            return True
        # The request after `done` exchanges failed or lands too late: the client takes the
        # last block per frame (and sends that request per frame, with the carried draw).
        timer_fix: SetTimer | None = None
        if done > 1:
            _, timer_fix = client.receive_blocks(done - 1, size, image)
            client_host.aps = (client_host.aps + done - 1) & 0xFF
            clock.call_at(now, client_host.set_timer_at, timer_fix, previous_sent)
        last_tsn = client.pending_block_request()
        assert last_tsn is not None
        send = server.serve_blocks(dev, done, size, last_tsn[1], last_request_at)
        server_host.aps = (server_host.aps + done) & 0xFF
        out = server_host.packet_for(send, server_host.aps)
        clock.call_at(sent, _arrive, dport, out, server_host.delivery_callback(), DeliveryStatus.DELIVERED)
        return True

