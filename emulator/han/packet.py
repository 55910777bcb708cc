"""The one packet type that crosses the HAN boundary, in both directions.

It sits at the APS level so that a virtual medium and a zigpy ``ControllerApplication`` can carry
it alike: addresses, endpoints, profile and cluster, and the ZCL payload as bytes. Nothing above
the transport sees MAC or NWK details.
"""

from __future__ import annotations

import enum
from typing import NamedTuple

from emulator.eui64 import format_eui64, parse_eui64

__all__ = ["ApsPacket", "DeliveryStatus", "format_eui64", "parse_eui64"]

SMART_ENERGY_PROFILE = 0x0109
OTA_CLUSTER = 0x0019
SMART_ENERGY_ENDPOINT = 1
BROADCAST_NWK = 0xFFFF


class ApsPacket(NamedTuple):
    """One APS data frame.

    ``src``/``dst`` are EUI-64s (ints); ``src_nwk``/``dst_nwk`` the 16-bit network addresses.
    ``dst == 0`` with ``dst_nwk == 0xFFFF`` is a broadcast. A tuple, because a fleet makes two of
    these per block exchange and a tuple is the cheapest immutable record in CPython.
    """

    src: int
    dst: int
    src_nwk: int
    dst_nwk: int
    payload: bytes
    src_ep: int = SMART_ENERGY_ENDPOINT
    dst_ep: int = SMART_ENERGY_ENDPOINT
    profile: int = SMART_ENERGY_PROFILE
    cluster: int = OTA_CLUSTER
    aps_counter: int = 0
    lqi: int = 255
    rssi: int = -40

    @property
    def is_broadcast(self) -> bool:
        return self.dst_nwk >= 0xFFF8


class DeliveryStatus(enum.Enum):
    """Outcome of a unicast as the sender's radio reports it (APS ack / messageSent)."""

    DELIVERED = "delivered"
    FAILED = "failed"


class LinkResult(NamedTuple):
    """What happened to one unicast: whether and when (seconds after it was sent) the receiver got
    it, and whether and when the sender learned of it (its MAC/APS acknowledgement)."""

    delivered: bool
    delay: float
    confirmed: bool
    confirm_delay: float
