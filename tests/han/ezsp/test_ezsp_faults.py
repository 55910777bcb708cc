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



async def test_dongle_unplugged_mid_fragmented_message_leaves_no_unretrieved_task_error(bench: Bench) -> None:
    """bellows acknowledges each APS block of a long message in a task of its own; a connection
    that drops while those are in flight must not leave "Task exception was never retrieved"."""
    import gc

    from emulator.han.aps_fragmentation import MAX_UNFRAGMENTED_PAYLOAD

    loop = asyncio.get_running_loop()
    unhandled: list[dict] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: unhandled.append(context))
    try:
        transport = bench.transport
        for round_ in range(2):  # the first connection, then the one the reconnection made
            transport.reconnected.clear()
            bench.ncp.faults.disconnect_after = "incomingMessageHandler"  # unplugged after the first block
            bench.device.say(b"\x01\x08\x01" + bytes(range(256))[:3 * MAX_UNFRAGMENTED_PAYLOAD])
            await asyncio.wait_for(transport.reconnected.wait(), WAIT)
            assert bench.ncp.faults.disconnect_after is None, "the fault was played"
            assert transport.reconnections == round_ + 1
        assert await bench.send(_to_device(bench)) is DeliveryStatus.DELIVERED  # the link is back
        for _ in range(3):  # a task's unretrieved exception is reported when it is collected
            gc.collect()
            await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(previous)
    assert [c["message"] for c in unhandled] == []


async def test_stopping_while_a_send_awaits_its_ash_ack_leaves_no_unretrieved_task_error(ezsp_version: int) -> None:
    """The hub shuts its radio down while bellows still waits for the NCP's ASH acknowledgement
    of a send (the frame was lost on the line): the send reports FAILED and bellows' shielded
    write does not fail later with nobody to retrieve it."""
    import gc

    from emulator.han.ezsp.ncp import EzspNcp, NcpFaults
    from emulator.han.ezsp.transport import open_ezsp_transport

    loop = asyncio.get_running_loop()
    unhandled: list[dict] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: unhandled.append(context))
    try:
        faults = NcpFaults()
        ncp = EzspNcp(ezsp_version=ezsp_version, faults=faults,
                      populate=lambda han, _clock: han.attach(DEVICE_EUI64, DEVICE_NWK).set_receiver(lambda _p: None))
        await ncp.start("127.0.0.1", 0)
        try:
            transport = await asyncio.wait_for(open_ezsp_transport(ncp.url), 15)
            done: asyncio.Future[DeliveryStatus] = loop.create_future()
            faults.ignore_rx = 1000  # every host frame from now on is lost on the line: no ACK
            packet = ApsPacket(src=transport.eui64, dst=DEVICE_EUI64, src_nwk=0, dst_nwk=DEVICE_NWK, payload=NOTIFY)
            transport.send(packet, lambda _p, status: done.set_result(status))
            while not ncp.session or ncp.faults.ignore_rx == 1000:  # the send reached the line
                await asyncio.sleep(0.01)
            await asyncio.wait_for(transport.stop(), WAIT)
            assert await asyncio.wait_for(done, WAIT) is DeliveryStatus.FAILED
        finally:
            await ncp.stop()
        for _ in range(3):  # a task's unretrieved exception is reported when it is collected
            gc.collect()
            await asyncio.sleep(0.05)
    finally:
        loop.set_exception_handler(previous)
    assert [c["message"] for c in unhandled] == []
