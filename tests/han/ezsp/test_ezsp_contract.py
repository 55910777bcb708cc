"""bellows, unmodified, against the emulated dongle: the network comes up and frames flow."""

from __future__ import annotations

import asyncio

from conftest import DEVICE_EUI64, DEVICE_NWK, WAIT, Bench

from emulator.han.packet import OTA_CLUSTER, SMART_ENERGY_PROFILE, ApsPacket, DeliveryStatus

QUERY_NEXT_IMAGE_REQUEST = bytes.fromhex("01 07 01 00 3b 12 04 00 01 00 00 00".replace(" ", ""))
IMAGE_NOTIFY = bytes.fromhex("19 01 00 00 64")


async def test_network_up(bench: Bench, ezsp_version: int) -> None:
    app = bench.transport.app
    assert app._ezsp.ezsp_version == ezsp_version
    assert app.state.node_info.nwk == 0x0000
    assert app.state.node_info.logical_type == 0  # coordinator
    assert bench.transport.eui64 == bench.ncp.dongle.eui64
    assert app.state.network_info.pan_id == bench.ncp.dongle.pan_id
    assert app.state.network_info.channel == bench.ncp.dongle.channel
    assert "networkInit" in bench.ncp.commands


async def test_unicast_to_device_is_delivered(bench: Bench) -> None:
    packet = ApsPacket(
        src=bench.transport.eui64, dst=DEVICE_EUI64, src_nwk=0, dst_nwk=DEVICE_NWK, payload=IMAGE_NOTIFY
    )
    assert await bench.send(packet) is DeliveryStatus.DELIVERED
    heard = bench.device.heard[-1]
    assert (heard.payload, heard.profile, heard.cluster) == (IMAGE_NOTIFY, SMART_ENERGY_PROFILE, OTA_CLUSTER)
    assert heard.src == bench.ncp.dongle.eui64


async def test_device_frame_arrives_as_aps_packet(bench: Bench) -> None:
    bench.device.say(QUERY_NEXT_IMAGE_REQUEST)
    packet = await asyncio.wait_for(bench.received.get(), WAIT)
    assert packet.payload == QUERY_NEXT_IMAGE_REQUEST
    assert (packet.profile, packet.cluster) == (SMART_ENERGY_PROFILE, OTA_CLUSTER)
    assert (packet.src, packet.src_nwk) == (DEVICE_EUI64, DEVICE_NWK)
    assert packet.dst == bench.transport.eui64


async def test_unicast_to_absent_device_fails(bench: Bench) -> None:
    packet = ApsPacket(src=bench.transport.eui64, dst=0x00DB0000000000FF, src_nwk=0, dst_nwk=0x7777, payload=IMAGE_NOTIFY)
    assert await bench.send(packet) is DeliveryStatus.FAILED
