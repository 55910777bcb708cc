"""The hub's Time cluster (0x000A) server: GB devices take their clock from the Comms Hub.

The CHF is the HAN's time master: TimeStatus has Master (bit 0) and Superseding (bit 3) set, so
a device prefers it over any other time server. It answers ZCL Read Attributes for Time
(UTCTime, seconds since 2000-01-01 00:00 UTC), TimeStatus, TimeZone and LocalTime; any other
attribute gets UNSUPPORTED_ATTRIBUTE, a malformed request a Default Response MALFORMED_COMMAND.
"""

from __future__ import annotations

import logging
import struct
from typing import Callable

from emulator.han.packet import ApsPacket
from emulator.han.transport import HanTransport
from emulator.runtime.clock import Clock
from emulator.runtime.events import EventBus

_LOGGER = logging.getLogger(__name__)

TIME_CLUSTER = 0x000A
ZIGBEE_EPOCH_UNIX = 946_684_800  # 2000-01-01T00:00:00Z
DEFAULT_EPOCH_UNIX = 1_767_225_600.0  # 2026-01-01T00:00:00Z, the scenarios' calendar start

ATTR_TIME = 0x0000
ATTR_TIME_STATUS = 0x0001
ATTR_TIME_ZONE = 0x0002
ATTR_LOCAL_TIME = 0x0007
TIME_STATUS_MASTER = 0x01
TIME_STATUS_SUPERSEDING = 0x08

_TYPE_UTC_TIME = 0xE2
_TYPE_BITMAP8 = 0x18
_TYPE_INT32 = 0x2B
_TYPE_UINT32 = 0x23
_STATUS_SUCCESS = 0x00
_STATUS_UNSUPPORTED_ATTRIBUTE = 0x86
_STATUS_MALFORMED_COMMAND = 0x80
_CMD_READ_ATTRIBUTES = 0x00
_CMD_READ_ATTRIBUTES_RESPONSE = 0x01
_CMD_DEFAULT_RESPONSE = 0x0B
_FC_SERVER_TO_CLIENT = 0x08
_FC_DISABLE_DEFAULT_RESPONSE = 0x10
_FC_MANUFACTURER_SPECIFIC = 0x04


class TimeServer:
    """Answers Read Attributes on cluster 0x000A for the hub node."""

    __slots__ = ("transport", "clock", "bus", "epoch_unix", "time_zone_s", "next_aps", "source")

    def __init__(self, transport: HanTransport, clock: Clock, bus: EventBus, *,
                 epoch_unix: float = DEFAULT_EPOCH_UNIX, time_zone_s: int = 0,
                 next_aps: Callable[[], int] = lambda: 0, source: str = "comms_hub") -> None:
        """``epoch_unix``: the UNIX time of clock time 0 (the scenario's calendar start)."""
        self.transport = transport
        self.clock = clock
        self.bus = bus
        self.epoch_unix = epoch_unix
        self.time_zone_s = time_zone_s
        self.next_aps = next_aps
        self.source = source

    def utc_time(self) -> int:
        """ZigBee UTCTime now: whole seconds since 2000-01-01 00:00 UTC."""
        return int(self.epoch_unix + self.clock.now()) - ZIGBEE_EPOCH_UNIX

    def attribute(self, attribute_id: int) -> tuple[int, bytes] | None:
        """(ZCL data type, value octets) of a supported attribute, else None."""
        if attribute_id == ATTR_TIME:
            return _TYPE_UTC_TIME, struct.pack("<I", self.utc_time())
        if attribute_id == ATTR_TIME_STATUS:
            return _TYPE_BITMAP8, bytes([TIME_STATUS_MASTER | TIME_STATUS_SUPERSEDING])
        if attribute_id == ATTR_TIME_ZONE:
            return _TYPE_INT32, struct.pack("<i", self.time_zone_s)
        if attribute_id == ATTR_LOCAL_TIME:
            return _TYPE_UINT32, struct.pack("<I", self.utc_time() + self.time_zone_s)
        return None

    def receive(self, packet: ApsPacket) -> None:
        data = bytes(packet.payload)
        if len(data) < 3 or data[0] & 0x03 != 0 or data[0] & (_FC_SERVER_TO_CLIENT | _FC_MANUFACTURER_SPECIFIC):
            self.bus.emit(self.source, "frame_ignored", packet.src, cluster="0x000A",
                          reason="not a client-to-server profile-wide ZCL command")
            return
        tsn, command = data[1], data[2]
        if command != _CMD_READ_ATTRIBUTES:
            self.bus.emit(self.source, "frame_ignored", packet.src, cluster="0x000A", command=f"0x{command:02X}")
            return
        body = data[3:]
        if len(body) % 2:
            self._reply(packet, tsn, _CMD_DEFAULT_RESPONSE, bytes([command, _STATUS_MALFORMED_COMMAND]))
            return
        records = b""
        for (attribute_id,) in struct.iter_unpack("<H", body):
            value = self.attribute(attribute_id)
            if value is None:
                records += struct.pack("<HB", attribute_id, _STATUS_UNSUPPORTED_ATTRIBUTE)
            else:
                records += struct.pack("<HBB", attribute_id, _STATUS_SUCCESS, value[0]) + value[1]
        self.bus.emit(self.source, "time_read", packet.src, utc_time=self.utc_time())
        self._reply(packet, tsn, _CMD_READ_ATTRIBUTES_RESPONSE, records)

    def _reply(self, request: ApsPacket, tsn: int, command: int, payload: bytes) -> None:
        frame = bytes([_FC_SERVER_TO_CLIENT | _FC_DISABLE_DEFAULT_RESPONSE, tsn, command]) + payload
        self.transport.send(ApsPacket(self.transport.eui64, request.src, self.transport.nwk, request.src_nwk,
                                      frame, request.dst_ep, request.src_ep, request.profile, TIME_CLUSTER,
                                      aps_counter=self.next_aps()))
