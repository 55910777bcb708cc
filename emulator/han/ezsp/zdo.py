"""ZDO answers the NCP gives about itself.

bellows interviews the coordinator like any device (Node_Desc_req to 0x0000, sometimes
Active_EP_req and Simple_Desc_req); real firmware answers from its own descriptors, so the
emulator does too, from the endpoints the host registered with ``addEndpoint``.
"""

from __future__ import annotations

import struct
from typing import Iterable

from .dongle import DongleState
from .session import Endpoint

NWK_ADDR_REQ = 0x0000
IEEE_ADDR_REQ = 0x0001
NODE_DESC_REQ = 0x0002
SIMPLE_DESC_REQ = 0x0004
ACTIVE_EP_REQ = 0x0005
RESPONSE_BIT = 0x8000

SUCCESS = 0x00
INVALID_EP = 0x82
NOT_ACTIVE = 0x83
NOT_SUPPORTED = 0x84

_MAC_CAPABILITIES = 0x8F
"""Alternate PAN coordinator, full-function device, mains powered, RX on when idle, allocate address."""
_SERVER_MASK = 0x2C41
"""Primary trust centre, network manager, stack compliance revision 22."""


def node_descriptor(dongle: DongleState) -> bytes:
    """The 13-byte node descriptor of a ZigBee PRO coordinator on 2.4 GHz."""
    return struct.pack(
        "<BBBHBHHHB",
        0x00,  # logical type coordinator, no complex/user descriptor
        0x40,  # APS flags 0, frequency band 2.4 GHz
        _MAC_CAPABILITIES,
        dongle.manufacturer_code,
        0x52,  # maximum buffer size
        0x0080,  # maximum incoming transfer size
        _SERVER_MASK,
        0x0080,  # maximum outgoing transfer size
        0x00,  # descriptor capabilities
    )


def simple_descriptor(ep: Endpoint) -> bytes:
    body = struct.pack("<BHHB", ep.endpoint, ep.profile, ep.device_id, ep.device_version & 0x0F)
    body += bytes([len(ep.input_clusters)]) + b"".join(c.to_bytes(2, "little") for c in ep.input_clusters)
    body += bytes([len(ep.output_clusters)]) + b"".join(c.to_bytes(2, "little") for c in ep.output_clusters)
    return body


def answer(
    cluster: int, request: bytes, dongle: DongleState, endpoints: Iterable[Endpoint]
) -> tuple[int, bytes] | None:
    """The coordinator's ZDO response ``(cluster, payload)`` to ``request``, or ``None`` for a
    response or a frame too short to carry a transaction sequence number."""
    if cluster & RESPONSE_BIT or not request:
        return None
    tsn = request[0]
    nwk = dongle.nwk.to_bytes(2, "little")
    eps = {ep.endpoint: ep for ep in endpoints}
    if cluster == NODE_DESC_REQ:
        return cluster | RESPONSE_BIT, bytes([tsn, SUCCESS]) + nwk + node_descriptor(dongle)
    if cluster == ACTIVE_EP_REQ:
        return cluster | RESPONSE_BIT, bytes([tsn, SUCCESS]) + nwk + bytes([len(eps), *sorted(eps)])
    if cluster == SIMPLE_DESC_REQ:
        wanted = request[3] if len(request) >= 4 else -1
        ep = eps.get(wanted)
        if ep is None:
            return cluster | RESPONSE_BIT, bytes([tsn, NOT_ACTIVE]) + nwk + b"\x00"
        desc = simple_descriptor(ep)
        return cluster | RESPONSE_BIT, bytes([tsn, SUCCESS]) + nwk + bytes([len(desc)]) + desc
    if cluster in (NWK_ADDR_REQ, IEEE_ADDR_REQ):
        ieee = dongle.eui64.to_bytes(8, "little")
        return cluster | RESPONSE_BIT, bytes([tsn, SUCCESS]) + ieee + nwk
    return cluster | RESPONSE_BIT, bytes([tsn, NOT_SUPPORTED])
