"""The hub serves the Time cluster as a GB CHF does: time master and superseding, UTCTime from
the scenario calendar; answers checked with zigpy's ZCL parser."""

from __future__ import annotations

from datetime import datetime, timezone

import zigpy.zcl.foundation as foundation

from emulator.han.packet import ApsPacket
from emulator.han.virtual import VirtualHan
from emulator.hub.comms_hub import CommsHub
from emulator.hub.time_server import TIME_CLUSTER
from emulator.runtime.clock import VirtualClock
from emulator.runtime.events import EventBus

HUB, DEVICE = 0x00DB1234567890A2, 0x00DB1234567890A4


def ask(payload: bytes, at: float = 3600.0) -> list[ApsPacket]:
    clock = VirtualClock()
    han = VirtualHan(clock)
    hub = CommsHub(HUB, han.attach(HUB, 0x0000), clock, EventBus(clock))
    device = han.attach(DEVICE, 0x1101)
    heard: list[ApsPacket] = []
    device.set_receiver(heard.append)
    clock.call_later(at, device.send, ApsPacket(DEVICE, HUB, 0x1101, 0x0000, payload, cluster=TIME_CLUSTER))
    clock.run(until=at + 1)
    assert hub.time_server is not None
    return [p for p in heard if p.cluster == TIME_CLUSTER]  # the hub also opens its GBCS tunnel


def test_read_attributes_for_time_and_time_status() -> None:
    # Read Attributes (0x00), TSN 0x42: Time, TimeStatus, an unknown attribute 0x00FF.
    (reply,) = ask(bytes([0x00, 0x42, 0x00]) + (0x0000).to_bytes(2, "little") + (0x0001).to_bytes(2, "little")
                   + (0x00FF).to_bytes(2, "little"))
    header, rest = foundation.ZCLHeader.deserialize(reply.payload)
    assert (header.tsn, header.command_id, header.direction) == (0x42, 0x01, foundation.Direction.Server_to_Client)
    assert reply.cluster == TIME_CLUSTER and reply.dst == DEVICE
    records, rest = foundation.GENERAL_COMMANDS[foundation.GeneralCommand.Read_Attributes_rsp].schema.deserialize(rest)
    assert rest == b""
    by_id = {r.attrid: r for r in records.status_records}
    expected = int(datetime(2026, 1, 1, 1, 0, tzinfo=timezone.utc).timestamp()) - 946_684_800
    assert by_id[0x0000].status == foundation.Status.SUCCESS
    assert by_id[0x0000].value.type == 0xE2 and by_id[0x0000].value.value == expected
    assert by_id[0x0001].value.value == 0x09  # Master | Superseding
    assert by_id[0x00FF].status == foundation.Status.UNSUPPORTED_ATTRIBUTE


def test_an_odd_length_request_gets_malformed_command() -> None:
    (reply,) = ask(bytes([0x00, 0x07, 0x00, 0x00]))
    assert reply.payload == bytes([0x18, 0x07, 0x0B, 0x00, 0x80])
