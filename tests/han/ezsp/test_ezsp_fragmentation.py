"""Messages longer than one frame cross bellows and the emulated dongle as APS blocks, both ways."""

from __future__ import annotations

import asyncio

from conftest import DEVICE_EUI64, DEVICE_NWK, WAIT, Bench

from emulator.han.aps_fragmentation import FRAGMENT_PAYLOAD
from emulator.han.packet import ApsPacket, DeliveryStatus

LONG = bytes((i * 7 + 1) & 0xFF for i in range(190))  # a CS06 command's size: 4 blocks


async def test_a_long_message_from_the_host_goes_as_blocks_and_arrives_whole(bench: Bench) -> None:
    packet = ApsPacket(src=bench.transport.eui64, dst=DEVICE_EUI64, src_nwk=0, dst_nwk=DEVICE_NWK, payload=LONG,
                       cluster=0x0704)
    sent_before = bench.ncp.commands.count("sendUnicast")
    assert await bench.send(packet) is DeliveryStatus.DELIVERED
    assert bench.device.heard[-1].payload == LONG
    blocks = -(-len(LONG) // FRAGMENT_PAYLOAD)
    assert bench.ncp.commands.count("sendUnicast") - sent_before == blocks, "one sendUnicast per APS block"


async def test_a_long_message_from_a_device_is_reassembled_by_bellows(bench: Bench) -> None:
    bench.device.port.send(ApsPacket(src=DEVICE_EUI64, dst=0, src_nwk=DEVICE_NWK, dst_nwk=0x0000, payload=LONG,  # type: ignore[attr-defined]
                                     cluster=0x0704))
    received = await asyncio.wait_for(bench.received.get(), WAIT)
    assert received.payload == LONG and received.cluster == 0x0704
    for _ in range(50):  # bellows acknowledges each block with sendReply in its own task
        if bench.ncp.commands.count("sendReply") >= 4:
            break
        await asyncio.sleep(0.01)
    assert bench.ncp.commands.count("sendReply") == -(-len(LONG) // FRAGMENT_PAYLOAD)
