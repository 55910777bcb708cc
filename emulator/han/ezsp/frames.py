"""EZSP frames as the NCP sees them: header layouts and parameter (de)serialisation.

The command tables (ids, parameter and response layouts) are bellows' own, used as a library so
the emulator and the host can never disagree about a layout. What is ours is the NCP direction:
decoding *commands* and encoding *responses and callbacks*.

Header layouts (EZSP UG100): legacy ``[seq, fc, id8]`` (every NCP accepts ``version`` in it),
v5-v7 extended ``[seq, fc, 0xFF, 0x00, id8]``, v8+ ``[seq, fc_lo, fc_hi, id16 LE]``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Mapping

import bellows.types as t

FC_RESPONSE = 0x80
"""Frame control (low byte): the frame goes NCP -> host."""
FC_ASYNC_CALLBACK = 0x10
"""Frame control (low byte): callback type 2, an asynchronous callback."""
FC_HI_FORMAT_V1 = 0x01
"""Frame control (high byte, v8+): frame format version 1."""
VERSION_FRAME_ID = 0x00


class FrameFormat(enum.Enum):
    LEGACY = "legacy"
    EXTENDED = "extended"  # v5-v7
    V8 = "v8"


class EzspFrameError(ValueError):
    """A host frame that cannot be an EZSP command."""


@dataclass(frozen=True, slots=True)
class EzspHeader:
    seq: int
    frame_id: int
    fmt: FrameFormat


def decode_header(data: bytes) -> tuple[EzspHeader, bytes]:
    """Split a host frame into header and parameters, recognising its layout."""
    if len(data) < 3:
        raise EzspFrameError(f"EZSP frame of {len(data)} bytes is too short: {data.hex()}")
    seq, fc_lo = data[0], data[1]
    if fc_lo & FC_RESPONSE:
        raise EzspFrameError(f"frame control 0x{fc_lo:02X} says NCP->host: {data.hex()}")
    if data[2] & FC_HI_FORMAT_V1 and data[2] != 0xFF:
        if len(data) < 5:
            raise EzspFrameError(f"v8 EZSP frame of {len(data)} bytes is too short: {data.hex()}")
        return EzspHeader(seq, int.from_bytes(data[3:5], "little"), FrameFormat.V8), data[5:]
    if data[2] == 0xFF:
        if len(data) < 5:
            raise EzspFrameError(f"extended EZSP frame too short: {data.hex()}")
        return EzspHeader(seq, data[4], FrameFormat.EXTENDED), data[5:]
    return EzspHeader(seq, data[2], FrameFormat.LEGACY), data[3:]


def encode_header(seq: int, frame_id: int, fmt: FrameFormat, *, callback: bool = False) -> bytes:
    fc_lo = FC_RESPONSE | (FC_ASYNC_CALLBACK if callback else 0)
    if fmt is FrameFormat.V8:
        return bytes([seq & 0xFF, fc_lo, FC_HI_FORMAT_V1]) + frame_id.to_bytes(2, "little")
    if fmt is FrameFormat.EXTENDED:
        return bytes([seq & 0xFF, fc_lo, 0xFF, 0x00, frame_id & 0xFF])
    return bytes([seq & 0xFF, fc_lo, frame_id & 0xFF])


Schema = Any
"""A bellows layout: a ``{name: type}`` dict, or a struct class."""


class CommandTable:
    """One EZSP version's commands, by name and by id (bellows' ``COMMANDS`` dict)."""

    def __init__(self, commands: Mapping[str, tuple[int, Schema, Schema]]) -> None:
        self._by_name = dict(commands)
        self._by_id = {cmd_id: name for name, (cmd_id, _, _) in commands.items()}

    def __contains__(self, name: str) -> bool:
        return name in self._by_name

    def name_of(self, frame_id: int) -> str | None:
        return self._by_id.get(frame_id)

    def id_of(self, name: str) -> int:
        return self._by_name[name][0]

    def request_schema(self, name: str) -> Schema:
        return self._by_name[name][1]

    def response_schema(self, name: str) -> Schema:
        return self._by_name[name][2]

    def decode_request(self, name: str, data: bytes) -> dict[str, Any]:
        """Command parameters by their UG100 names (bellows spelling)."""
        schema = self.request_schema(name)
        if isinstance(schema, dict):
            params, rest = t.deserialize_dict(data, schema)
        else:
            struct, rest = schema.deserialize(data)
            params = struct.as_dict()
        if rest:
            raise EzspFrameError(f"{name}: {len(rest)} unexpected trailing bytes {rest.hex()}")
        return params

    def encode_response(self, name: str, fields: Mapping[str, Any]) -> bytes:
        schema = self.response_schema(name)
        if isinstance(schema, dict):
            missing = [key for key in schema if key not in fields]
            if missing:
                raise KeyError(f"{name} response lacks {', '.join(missing)}")
            return t.serialize_dict((), dict(fields), schema)
        return schema(**fields).serialize()


def ok_status(status_type: type) -> Any:
    """The success value of a status type (``sl_Status.OK`` or ``…SUCCESS``)."""
    if issubclass(status_type, t.sl_Status):
        return t.sl_Status.OK
    return getattr(status_type, "SUCCESS")
