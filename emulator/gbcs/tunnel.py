"""The ZSE Tunneling cluster (0x0704) frames that carry GBCS messages over the HAN, and GBCS's
tunnel header. I/O-free: the hub and the devices encode and decode with it.

ZCL commands (Smart Energy Tunneling cluster), with the fields GBCS uses:

| direction | id | command | payload |
|---|---|---|---|
| client → server | 0x00 | RequestTunnel | protocol id u8 (6 = GB-HRGP), manufacturer code u16 (0xFFFF), flow control u8, max incoming transfer size u16 |
| client → server | 0x02 | TransferData | tunnel id u16, data |
| server → client | 0x00 | RequestTunnelResponse | tunnel id u16, status u8 (0 = success), max incoming transfer size u16 |
| server → client | 0x01 | TransferData | tunnel id u16, data |

The data of every TransferData starts with GBCS's tunnel header: ``01`` GET (a device asks the
hub for a queued message), ``02 <remaining>`` GET-RESPONSE (the hub's answer: one queued message,
or none, and how many remain), ``03`` PUT (a message follows). Integers are little-endian (ZCL).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

TUNNELING_CLUSTER = 0x0704
GB_HRGP_PROTOCOL_ID = 6
"""ZSE Tunneling protocol id GBCS uses ("GB-HRGP")."""
NO_MANUFACTURER = 0xFFFF
MAX_INCOMING_TRANSFER_SIZE = 1500
"""What our nodes announce: enough for any message of the firmware flow."""

_CLUSTER_SPECIFIC = 0x01
_SERVER_TO_CLIENT = 0x08
_DISABLE_DEFAULT_RESPONSE = 0x10


class TunnelError(ValueError):
    """A Tunneling-cluster frame we cannot read; the message names the field and offset."""


class TunnelCommand(enum.IntEnum):
    """ZCL command ids; the same id means different commands in the two directions."""

    REQUEST_TUNNEL = 0x00  # client -> server
    TRANSFER_DATA_FROM_CLIENT = 0x02  # client -> server
    REQUEST_TUNNEL_RESPONSE = 0x00  # server -> client (alias value)
    TRANSFER_DATA_FROM_SERVER = 0x01  # server -> client


class GbcsTunnelHeader(enum.IntEnum):
    GET = 0x01
    GET_RESPONSE = 0x02
    PUT = 0x03


class TunnelStatus(enum.IntEnum):
    SUCCESS = 0x00
    BUSY = 0x01
    NO_MORE_TUNNEL_IDS = 0x02
    PROTOCOL_NOT_SUPPORTED = 0x03
    FLOW_CONTROL_NOT_SUPPORTED = 0x04


@dataclass(frozen=True, slots=True)
class RequestTunnel:
    protocol_id: int = GB_HRGP_PROTOCOL_ID
    manufacturer_code: int = NO_MANUFACTURER
    flow_control: bool = False
    max_incoming_transfer_size: int = MAX_INCOMING_TRANSFER_SIZE


@dataclass(frozen=True, slots=True)
class RequestTunnelResponse:
    tunnel_id: int
    status: TunnelStatus = TunnelStatus.SUCCESS
    max_incoming_transfer_size: int = MAX_INCOMING_TRANSFER_SIZE


@dataclass(frozen=True, slots=True)
class TransferData:
    """One GBCS tunnel exchange: ``header`` GET (no message), GET-RESPONSE (``remaining`` and a
    message or none) or PUT (a message)."""

    tunnel_id: int
    header: GbcsTunnelHeader
    message: bytes = b""
    remaining: int = 0


TunnelPayload = RequestTunnel | RequestTunnelResponse | TransferData


@dataclass(frozen=True, slots=True)
class TunnelFrame:
    """A decoded ZCL frame of the Tunneling cluster; ``from_server`` is its direction."""

    tsn: int
    from_server: bool
    payload: TunnelPayload


def encode_frame(payload: TunnelPayload, tsn: int, *, from_server: bool = False) -> bytes:
    """The ZCL frame (header and payload) for ``payload``.

    RequestTunnel goes client to server, its response server to client; a TransferData goes
    from whichever end the sender is in this tunnel (``from_server``): the hub is the client of
    the tunnels it requests (ESME, HCALCS, PPMID) and the server of a GSME's.
    """
    if isinstance(payload, RequestTunnel):
        return (bytes([_CLUSTER_SPECIFIC, tsn & 0xFF, TunnelCommand.REQUEST_TUNNEL, payload.protocol_id])
                + payload.manufacturer_code.to_bytes(2, "little") + bytes([1 if payload.flow_control else 0])
                + payload.max_incoming_transfer_size.to_bytes(2, "little"))
    if isinstance(payload, RequestTunnelResponse):
        return (bytes([_CLUSTER_SPECIFIC | _SERVER_TO_CLIENT | _DISABLE_DEFAULT_RESPONSE, tsn & 0xFF,
                       TunnelCommand.REQUEST_TUNNEL_RESPONSE])
                + payload.tunnel_id.to_bytes(2, "little") + bytes([payload.status])
                + payload.max_incoming_transfer_size.to_bytes(2, "little"))
    command = TunnelCommand.TRANSFER_DATA_FROM_SERVER if from_server else TunnelCommand.TRANSFER_DATA_FROM_CLIENT
    control = _CLUSTER_SPECIFIC | _DISABLE_DEFAULT_RESPONSE | (_SERVER_TO_CLIENT if from_server else 0)
    data = (bytes([payload.header, payload.remaining & 0xFF]) if payload.header is GbcsTunnelHeader.GET_RESPONSE
            else bytes([payload.header]))
    return bytes([control, tsn & 0xFF, command]) + payload.tunnel_id.to_bytes(2, "little") + data + payload.message


def decode_frame(data: bytes) -> TunnelFrame:
    """A Tunneling-cluster ZCL frame; TunnelError names what is wrong and where."""
    if len(data) < 3:
        raise TunnelError(f"ZCL header at offset 0: needs 3 bytes, the frame has {len(data)}")
    control, tsn, command = data[0], data[1], data[2]
    if control & 0x03 != _CLUSTER_SPECIFIC:
        raise TunnelError(f"frame control at offset 0: 0x{control:02X} is not a cluster-specific command")
    if control & 0x04:
        raise TunnelError("frame control at offset 0: manufacturer-specific Tunneling commands are not GBCS")
    from_server = bool(control & _SERVER_TO_CLIENT)
    body = data[3:]

    def need(n: int, what: str) -> None:
        if len(body) < n:
            raise TunnelError(f"{what} at offset 3: needs {n} bytes, {len(body)} remain")

    if not from_server and command == TunnelCommand.REQUEST_TUNNEL:
        need(6, "RequestTunnel")
        return TunnelFrame(tsn, False, RequestTunnel(body[0], int.from_bytes(body[1:3], "little"), bool(body[3]),
                                                     int.from_bytes(body[4:6], "little")))
    if from_server and command == TunnelCommand.REQUEST_TUNNEL_RESPONSE:
        need(5, "RequestTunnelResponse")
        try:
            status = TunnelStatus(body[2])
        except ValueError:
            raise TunnelError(f"RequestTunnelResponse status at offset 5: 0x{body[2]:02X} is not a tunnel status") from None
        return TunnelFrame(tsn, True, RequestTunnelResponse(int.from_bytes(body[0:2], "little"), status,
                                                            int.from_bytes(body[3:5], "little")))
    expected = TunnelCommand.TRANSFER_DATA_FROM_SERVER if from_server else TunnelCommand.TRANSFER_DATA_FROM_CLIENT
    if command != expected:
        raise TunnelError(f"command id at offset 2: 0x{command:02X} is not a Tunneling command GBCS uses "
                          f"({'server to client' if from_server else 'client to server'})")
    need(3, "TransferData")
    tunnel_id = int.from_bytes(body[0:2], "little")
    try:
        header = GbcsTunnelHeader(body[2])
    except ValueError:
        raise TunnelError(f"GBCS tunnel header at offset 5: 0x{body[2]:02X} is not GET, GET-RESPONSE or PUT") from None
    if header is GbcsTunnelHeader.GET_RESPONSE:
        need(4, "GET-RESPONSE remaining count")
        return TunnelFrame(tsn, from_server, TransferData(tunnel_id, header, bytes(body[4:]), body[3]))
    if header is GbcsTunnelHeader.GET and len(body) > 3:
        raise TunnelError(f"GET at offset 6: {len(body) - 3} unexpected byte(s) after the header")
    if header is GbcsTunnelHeader.PUT and len(body) == 3:
        raise TunnelError("PUT at offset 6: no GBCS message follows the header")
    return TunnelFrame(tsn, from_server, TransferData(tunnel_id, header, bytes(body[3:])))
