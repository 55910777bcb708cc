"""Fixtures: an emulated EZSP dongle with one echoing OTA client behind it, and bellows on top."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import AsyncIterator

import pytest

from emulator.han.ezsp.ncp import EzspNcp, NcpFaults
from emulator.han.ezsp.transport import ZigpyTransport, open_ezsp_transport
from emulator.han.packet import ApsPacket, DeliveryStatus

DEVICE_EUI64 = 0x00DB123456789001
DEVICE_NWK = 0x4A21
WAIT = 5.0
"""Upper bound for any single await in these tests: a hang fails fast instead of stalling CI."""


@dataclass
class EchoDevice:
    """An OTA client stand-in: records what it hears and can speak first."""

    port: object
    heard: list[ApsPacket] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def receive(self, packet: ApsPacket) -> None:
        self.heard.append(packet)
        self.arrived.set()

    def say(self, payload: bytes) -> None:
        self.port.send(  # type: ignore[attr-defined]
            ApsPacket(src=DEVICE_EUI64, dst=0, src_nwk=DEVICE_NWK, dst_nwk=0x0000, payload=payload)
        )


@dataclass
class Bench:
    ncp: EzspNcp
    transport: ZigpyTransport
    device: EchoDevice
    received: asyncio.Queue = field(default_factory=asyncio.Queue)

    async def send(self, packet: ApsPacket) -> DeliveryStatus:
        done: asyncio.Future[DeliveryStatus] = asyncio.get_running_loop().create_future()
        self.transport.send(packet, lambda _p, status: done.set_result(status))
        return await asyncio.wait_for(done, WAIT)


@pytest.fixture(params=[8, 13], ids=["ezsp8", "ezsp13"])
def ezsp_version(request: pytest.FixtureRequest) -> int:
    return request.param


@pytest.fixture
async def bench(ezsp_version: int) -> AsyncIterator[Bench]:
    devices: list[EchoDevice] = []

    def populate(han, clock) -> None:
        device = EchoDevice(han.attach(DEVICE_EUI64, DEVICE_NWK))
        device.port.set_receiver(device.receive)
        devices.append(device)

    ncp = EzspNcp(ezsp_version=ezsp_version, populate=populate, faults=NcpFaults())
    await ncp.start("127.0.0.1", 0)
    try:
        transport = await asyncio.wait_for(open_ezsp_transport(ncp.url), 15)
    except BaseException:
        await ncp.stop()
        raise
    bench = Bench(ncp, transport, devices[0])
    transport.set_receiver(bench.received.put_nowait)
    try:
        yield bench
    finally:
        await transport.stop()
        await ncp.stop()
