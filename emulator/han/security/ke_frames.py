"""ZCL frames of the Key Establishment cluster (0x0800), SE 1.x Annex C.3.

Client → server (initiator → responder) and server → client share command ids 0x00–0x03; the
ZCL direction bit tells a request from a response. Payloads::

    Initiate KE Request/Response  suite(2, LE) ephemeral_data_generate_time(1)
                                  confirm_key_generate_time(1) identity(48 | 74)
    Ephemeral Data Request/Resp.  ephemeral data (22 | 37, compressed point)
    Confirm Key Data Req./Resp.   MACU / MACV (16)
    Terminate Key Establishment   status(1) wait_time(1) suite(2, LE)

The codec is strict like :mod:`emulator.ota.codec`: a wrong length, an unknown command or a
reserved frame type is a :class:`KeFrameError` naming the field and the offset.
"""

from __future__ import annotations

import enum
from typing import NamedTuple, Union

KEY_ESTABLISHMENT_CLUSTER = 0x0800
ATTR_KEY_ESTABLISHMENT_SUITE = 0x0000

_FC_CLUSTER_SPECIFIC = 0x01
_FC_MANUFACTURER_SPECIFIC = 0x04
_FC_SERVER_TO_CLIENT = 0x08
_FC_DISABLE_DEFAULT_RESPONSE = 0x10
_FC_RESERVED = 0xE0

CERTIFICATE_LENGTHS = (48, 74)
EPHEMERAL_DATA_LENGTHS = (22, 37)
MAC_LENGTH = 16


class KeStatus(enum.IntEnum):
    """Terminate Key Establishment status (SE 1.x Annex C; names as Wireshark shows them)."""

    UNKNOWN_ISSUER = 0x01
    BAD_KEY_CONFIRM = 0x02
    BAD_MESSAGE = 0x03
    NO_RESOURCES = 0x04
    UNSUPPORTED_SUITE = 0x05
    INVALID_CERTIFICATE = 0x06


class KeCommandId(enum.IntEnum):
    INITIATE_KEY_ESTABLISHMENT = 0x00
    EPHEMERAL_DATA = 0x01
    CONFIRM_KEY_DATA = 0x02
    TERMINATE_KEY_ESTABLISHMENT = 0x03


class InitiateKeyEstablishmentRequest(NamedTuple):
    suite: int
    ephemeral_data_generate_time: int
    confirm_key_generate_time: int
    identity: bytes


class InitiateKeyEstablishmentResponse(NamedTuple):
    suite: int
    ephemeral_data_generate_time: int
    confirm_key_generate_time: int
    identity: bytes


class EphemeralDataRequest(NamedTuple):
    ephemeral_data: bytes


class EphemeralDataResponse(NamedTuple):
    ephemeral_data: bytes


class ConfirmKeyDataRequest(NamedTuple):
    secure_message_authentication_code: bytes  # MACU


class ConfirmKeyDataResponse(NamedTuple):
    secure_message_authentication_code: bytes  # MACV


class TerminateKeyEstablishment(NamedTuple):
    """Sent by either side; the frame's direction says which."""

    status: int
    wait_time: int
    suite: int


KeCommand = Union[
    InitiateKeyEstablishmentRequest, InitiateKeyEstablishmentResponse, EphemeralDataRequest,
    EphemeralDataResponse, ConfirmKeyDataRequest, ConfirmKeyDataResponse, TerminateKeyEstablishment,
]

_TO_SERVER: dict[type, int] = {
    InitiateKeyEstablishmentRequest: KeCommandId.INITIATE_KEY_ESTABLISHMENT,
    EphemeralDataRequest: KeCommandId.EPHEMERAL_DATA,
    ConfirmKeyDataRequest: KeCommandId.CONFIRM_KEY_DATA,
}
_TO_CLIENT: dict[type, int] = {
    InitiateKeyEstablishmentResponse: KeCommandId.INITIATE_KEY_ESTABLISHMENT,
    EphemeralDataResponse: KeCommandId.EPHEMERAL_DATA,
    ConfirmKeyDataResponse: KeCommandId.CONFIRM_KEY_DATA,
}


class KeFrame(NamedTuple):
    """One decoded Key Establishment frame. ``to_server``: sent by the initiator (client)."""

    tsn: int
    to_server: bool
    command: KeCommand
    disable_default_response: bool = False


class KeFrameError(ValueError):
    """A Key Establishment frame that does not follow the spec; names field and offset."""


def _u8(name: str, value: int) -> bytes:
    if not 0 <= value <= 0xFF:
        raise KeFrameError(f"{name}={value} does not fit 8 bits")
    return bytes([value])


def _u16(name: str, value: int) -> bytes:
    if not 0 <= value <= 0xFFFF:
        raise KeFrameError(f"{name}={value} does not fit 16 bits")
    return value.to_bytes(2, "little")


def _sized(name: str, value: bytes, allowed: tuple[int, ...]) -> bytes:
    if len(value) not in allowed:
        sizes = " or ".join(str(n) for n in allowed)
        raise KeFrameError(f"{name} must be {sizes} octets, got {len(value)}")
    return bytes(value)


def encode_payload(command: KeCommand) -> bytes:
    if isinstance(command, (InitiateKeyEstablishmentRequest, InitiateKeyEstablishmentResponse)):
        return (_u16("suite", command.suite) + _u8("ephemeral_data_generate_time", command.ephemeral_data_generate_time)
                + _u8("confirm_key_generate_time", command.confirm_key_generate_time)
                + _sized("identity", command.identity, CERTIFICATE_LENGTHS))
    if isinstance(command, (EphemeralDataRequest, EphemeralDataResponse)):
        return _sized("ephemeral_data", command.ephemeral_data, EPHEMERAL_DATA_LENGTHS)
    if isinstance(command, (ConfirmKeyDataRequest, ConfirmKeyDataResponse)):
        return _sized("secure_message_authentication_code", command.secure_message_authentication_code,
                      (MAC_LENGTH,))
    if isinstance(command, TerminateKeyEstablishment):
        return _u8("status", command.status) + _u8("wait_time", command.wait_time) + _u16("suite", command.suite)
    raise KeFrameError(f"{type(command).__name__} is not a Key Establishment command")


def encode(frame: KeFrame) -> bytes:
    """The ZCL frame (header + payload) for ``frame``."""
    command = frame.command
    command_id: int
    if isinstance(command, TerminateKeyEstablishment):
        command_id = KeCommandId.TERMINATE_KEY_ESTABLISHMENT
        to_server = frame.to_server
    elif type(command) in _TO_SERVER:
        command_id, to_server = _TO_SERVER[type(command)], True
    elif type(command) in _TO_CLIENT:
        command_id, to_server = _TO_CLIENT[type(command)], False
    else:
        raise KeFrameError(f"{type(command).__name__} is not a Key Establishment command")
    if to_server != frame.to_server:
        raise KeFrameError(f"{type(command).__name__} is sent {'to' if to_server else 'by'} the server, "
                           f"the frame says otherwise")
    fc = _FC_CLUSTER_SPECIFIC | (0 if to_server else _FC_SERVER_TO_CLIENT)
    if frame.disable_default_response:
        fc |= _FC_DISABLE_DEFAULT_RESPONSE
    return bytes([fc]) + _u8("tsn", frame.tsn) + bytes([command_id]) + encode_payload(command)


def decode(data: bytes) -> KeFrame:
    """Decode one ZCL frame of the Key Establishment cluster."""
    if len(data) < 3:
        raise KeFrameError(f"ZCL header is 3 octets, frame has {len(data)}")
    fc = data[0]
    if fc & 0x03 != _FC_CLUSTER_SPECIFIC:
        raise KeFrameError(f"frame type {fc & 0x03} at offset 0 is not cluster-specific (1)")
    if fc & _FC_MANUFACTURER_SPECIFIC:
        raise KeFrameError("manufacturer-specific Key Establishment commands are not defined (offset 0)")
    if fc & _FC_RESERVED:
        raise KeFrameError(f"reserved frame control bits set: 0x{fc:02X} at offset 0")
    to_server = not fc & _FC_SERVER_TO_CLIENT
    tsn, command_id = data[1], data[2]
    payload = bytes(data[3:])
    command = _decode_payload(command_id, to_server, payload)
    return KeFrame(tsn, to_server, command, bool(fc & _FC_DISABLE_DEFAULT_RESPONSE))


def _expect(name: str, payload: bytes, allowed: tuple[int, ...], base: int = 3) -> bytes:
    if len(payload) not in allowed:
        sizes = " or ".join(str(n) for n in allowed)
        raise KeFrameError(f"{name} at offset {base} must be {sizes} octets, got {len(payload)}")
    return payload


def _decode_payload(command_id: int, to_server: bool, payload: bytes) -> KeCommand:
    if command_id == KeCommandId.INITIATE_KEY_ESTABLISHMENT:
        if len(payload) < 4:
            raise KeFrameError(f"Initiate Key Establishment needs 4 octets before the identity, got {len(payload)}")
        identity = _expect("identity", payload[4:], CERTIFICATE_LENGTHS, 7)
        fields = (int.from_bytes(payload[0:2], "little"), payload[2], payload[3], identity)
        return InitiateKeyEstablishmentRequest(*fields) if to_server else InitiateKeyEstablishmentResponse(*fields)
    if command_id == KeCommandId.EPHEMERAL_DATA:
        data = _expect("ephemeral data", payload, EPHEMERAL_DATA_LENGTHS)
        return EphemeralDataRequest(data) if to_server else EphemeralDataResponse(data)
    if command_id == KeCommandId.CONFIRM_KEY_DATA:
        mac = _expect("MACU" if to_server else "MACV", payload, (MAC_LENGTH,))
        return ConfirmKeyDataRequest(mac) if to_server else ConfirmKeyDataResponse(mac)
    if command_id == KeCommandId.TERMINATE_KEY_ESTABLISHMENT:
        _expect("Terminate Key Establishment payload", payload, (4,))
        return TerminateKeyEstablishment(payload[0], payload[1], int.from_bytes(payload[2:4], "little"))
    raise KeFrameError(f"unknown Key Establishment command 0x{command_id:02X} at offset 2")
