"""Faults the emulated dongle plays, and that the NCP and bellows above it must survive."""

from __future__ import annotations

import asyncio

import pytest

from conftest import DEVICE_EUI64, DEVICE_NWK, WAIT, Bench

from emulator.han.packet import ApsPacket, DeliveryStatus

NOTIFY = bytes.fromhex("1901000064")


def _to_device(bench: Bench, payload: bytes = NOTIFY) -> ApsPacket:
    return ApsPacket(src=bench.transport.eui64, dst=DEVICE_EUI64, src_nwk=0, dst_nwk=DEVICE_NWK, payload=payload)


async def test_corrupted_ncp_frames_are_retransmitted(bench: Bench) -> None:
    ash = bench.ncp.session.ash
    before = ash.counters.retransmissions
    bench.ncp.faults.corrupt_tx = 2
    assert await bench.send(_to_device(bench)) is DeliveryStatus.DELIVERED
    assert bench.ncp.faults.corrupt_tx == 0
    assert ash.counters.retransmissions >= before + 2
    assert bench.device.heard[-1].payload == NOTIFY


async def test_host_frames_naked_by_ncp_are_resent(bench: Bench) -> None:
    ash = bench.ncp.session.ash
    bench.ncp.faults.nak_rx = 2
    assert await bench.send(_to_device(bench)) is DeliveryStatus.DELIVERED
    assert ash.counters.naks_sent >= 2
    assert [p.payload for p in bench.device.heard].count(NOTIFY) == 1  # once, not three times


async def test_delayed_message_sent_still_delivers(bench: Bench) -> None:
    bench.ncp.faults.message_sent_delay = 0.3
    assert await bench.send(_to_device(bench)) is DeliveryStatus.DELIVERED


async def test_dropped_message_sent_reports_failure_then_recovers(bench: Bench, monkeypatch: pytest.MonkeyPatch) -> None:
    import bellows.zigbee.application as bellows_app

    monkeypatch.setattr(bellows_app, "MESSAGE_SEND_TIMEOUT_MAINS", 0.3)  # bellows waits 3 s
    bench.ncp.faults.drop_message_sent = 1
    assert await bench.send(_to_device(bench)) is DeliveryStatus.FAILED
    assert await bench.send(_to_device(bench)) is DeliveryStatus.DELIVERED


async def test_ncp_reset_mid_session_reconnects(bench: Bench) -> None:
    transport = bench.transport
    connections = bench.ncp.connections
    transport.reconnected.clear()
    bench.ncp.reset()
    await asyncio.wait_for(transport.reconnected.wait(), WAIT)
    assert transport.reconnections == 1
    assert bench.ncp.connections == connections + 1
    assert await bench.send(_to_device(bench)) is DeliveryStatus.DELIVERED
    bench.device.say(b"\x01\x08\x01\x00")
    packet = await asyncio.wait_for(bench.received.get(), WAIT)
    assert packet.src == DEVICE_EUI64

