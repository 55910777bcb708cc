"""The HAN boundary: leaving and rejoining the network is part of every transport."""

from __future__ import annotations

from emulator.han.packet import ApsPacket, DeliveryStatus
from emulator.han.transport import HanTransport
from emulator.han.virtual import VirtualHan
from emulator.runtime.clock import VirtualClock

HUB, DEVICE = 0x00DB1234567890A2, 0x00DB1234567890A4


def _packet(src: int, dst: int) -> ApsPacket:
    return ApsPacket(src=src, dst=dst, src_nwk=0x0000, dst_nwk=0x1101, cluster=0x0019, payload=b"\x01\x02\x03")


class _Radio(HanTransport):
    """A backend that cannot model leaving the network (like a real dongle)."""

    def __init__(self) -> None:
        super().__init__(DEVICE, 0x1101)
        self.sent: list[ApsPacket] = []

    def _send(self, packet, on_delivery):
        self.sent.append(packet)


def test_a_detached_virtual_node_hears_nothing_until_it_reattaches() -> None:
    clock = VirtualClock()
    han = VirtualHan(clock)
    hub, device = han.attach(HUB, 0x0000), han.attach(DEVICE, 0x1101)
    heard: list[ApsPacket] = []
    device.set_receiver(heard.append)
    reports: list[DeliveryStatus] = []
    device.detach()
    hub.send(_packet(HUB, DEVICE), lambda _p, status: reports.append(status))
    clock.run()
    assert heard == [] and reports == [DeliveryStatus.FAILED]
    device.reattach()
    hub.send(_packet(HUB, DEVICE), lambda _p, status: reports.append(status))
    clock.run()
    assert len(heard) == 1 and reports[-1] is DeliveryStatus.DELIVERED


def test_a_transport_that_cannot_leave_keeps_working_after_detach() -> None:
    radio = _Radio()
    radio.detach()
    radio.reattach()
    radio.send(_packet(DEVICE, HUB))
    assert len(radio.sent) == 1
