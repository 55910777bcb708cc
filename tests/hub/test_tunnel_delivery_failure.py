"""A GBCS message the HAN fails to deliver (a block of its fragmented PUT ran out of retries) is
not lost: the hub sends it again when it next hears the device, and gives up after MAX_RESENDS
failures in a row (docs/gbcs.md, "The tunnel")."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

from emulator.gbcs.tunnel import (
    TUNNELING_CLUSTER,
    GbcsTunnelHeader,
    RequestTunnelResponse,
    TransferData,
    decode_frame,
    encode_frame,
)
from emulator.han.aps_fragmentation import ApsFragment
from emulator.han.packet import ApsPacket
from emulator.han.virtual import Verdict, VirtualHan
from emulator.hub.tunnels import MAX_RESENDS, HubTunnels
from emulator.runtime.clock import VirtualClock
from emulator.runtime.events import EventBus, EventCollector

HUB, METER, METER_NWK = 0x00DB0000000000A2, 0x00DB0000000000A0, 0x1234
MESSAGE = bytes(range(140))  # a GBCS message: three APS blocks in a PUT


class _Hub:
    def __init__(self, han: VirtualHan, bus: EventBus) -> None:
        self.eui64 = HUB
        self.transport = han.attach(HUB, 0x0000)
        self.bus = bus
        self.ota = SimpleNamespace(next_aps=itertools.count(1).__next__)
        self.tunnels = HubTunnels(self)
        self.transport.set_receiver(self._on_packet)

    def is_sleepy(self, device: int) -> bool:
        return False

    def _on_gbcs_message(self, device: int, message: bytes) -> None:
        pass

    def _on_packet(self, packet: ApsPacket) -> None:
        self.tunnels.heard(packet.src, packet.src_nwk)
        self.tunnels.receive(packet)


def _premises(drops: int):
    clock = VirtualClock()
    bus = EventBus(clock)
    events = EventCollector()
    bus.subscribe(events)
    han = VirtualHan(clock)
    hub = _Hub(han, bus)
    meter = han.attach(METER, METER_NWK)
    puts: list[bytes] = []

    def on_meter(packet: ApsPacket) -> None:
        frame = decode_frame(packet.payload)
        if isinstance(frame.payload, TransferData):
            puts.append(frame.payload.message)
        else:  # RequestTunnel: the meter opens tunnel 9
            meter.send(ApsPacket(METER, HUB, METER_NWK, 0x0000, encode_frame(RequestTunnelResponse(9), frame.tsn),
                                 cluster=TUNNELING_CLUSTER))

    meter.set_receiver(on_meter)
    left = [drops]

    def drop_last_block(packet: ApsPacket) -> Verdict | None:
        if left[0] and isinstance(packet, ApsFragment) and packet.dst == METER and packet.extended_header == b"\x02\x02":
            left[0] -= 1
            return Verdict(drop=True)
        return None

    han.set_manipulator(drop_last_block)
    hub.tunnels.heard(METER, METER_NWK)
    clock.run()
    hub.tunnels.send(METER, METER_NWK, MESSAGE)
    clock.run()

    def meter_talks() -> None:  # any frame from the meter: the hub hears it
        meter.send(ApsPacket(METER, HUB, METER_NWK, 0x0000,
                             encode_frame(TransferData(9, GbcsTunnelHeader.PUT, b"\x01"), 2), cluster=TUNNELING_CLUSTER))
        clock.run()

    return events, puts, meter_talks


def test_a_failed_put_goes_again_when_the_device_is_next_heard() -> None:
    events, puts, meter_talks = _premises(drops=1)
    assert puts == []
    (failed,) = events.named("tunnel_delivery_failed", METER)
    assert failed.fields == {"octets": len(MESSAGE), "failures": 1}
    meter_talks()
    assert puts == [MESSAGE]
    meter_talks()
    assert puts == [MESSAGE]  # delivered once: nothing left to send


def test_after_max_resends_the_message_is_dropped() -> None:
    events, puts, meter_talks = _premises(drops=MAX_RESENDS + 1)
    for _ in range(MAX_RESENDS + 1):
        meter_talks()
    assert puts == []
    assert len(events.named("tunnel_delivery_failed", METER)) == MAX_RESENDS
    (dropped,) = events.named("tunnel_message_dropped", METER)
    assert dropped.fields["octets"] == len(MESSAGE)
