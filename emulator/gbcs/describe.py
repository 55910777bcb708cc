"""A decoded GBCS message as plain data (for ``ch-emulator gbcs decode`` and its ``--json``)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from typing import Any

from ..eui64 import format_eui64
from . import dlms
from .framing import GeneralCiphering
from .message_codes import message_code_name
from .messages import GbcsMessage
from .protection import SecurityVerdict
from .wire import GbcsDecodeError

_EUI_FIELDS = {"entity_id", "device_id", "extended_pan_id"}


def _plain(value: Any, name: str = "") -> Any:
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return format_eui64(value) if name in _EUI_FIELDS else value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex().upper()
    if isinstance(value, dt.datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {"type": type(value).__name__}
        for item in dataclasses.fields(value):
            if item.repr:
                out[item.name] = _plain(getattr(value, item.name), item.name)
        return out
    return value


def _date_time(value: bytes | None) -> str | None:
    if value is None:
        return None
    try:
        return dlms.decode_date_time(value).isoformat().replace("+00:00", "Z")
    except GbcsDecodeError:
        return value.hex().upper()  # not a plain date (e.g. "not specified" fields): show the bytes


def describe(message: GbcsMessage, verdict: SecurityVerdict | None) -> dict[str, Any]:
    header = message.header
    other = header.other_information
    head: dict[str, Any] = {
        "cra_flag": header.cra_flag.name,
        "originator_counter": header.originator_counter,
        "originator": format_eui64(header.originator),
        "recipient": format_eui64(header.recipient),
        "date_time": _date_time(header.date_time),
        "message_code": f"0x{header.message_code:04X}",
        "message_code_name": message_code_name(header.message_code),
    }
    if other.supplementary_remote_party_id is not None:
        head["supplementary_remote_party_id"] = format_eui64(other.supplementary_remote_party_id)
    if other.supplementary_remote_party_counter is not None:
        head["supplementary_remote_party_counter"] = other.supplementary_remote_party_counter
    if other.supplementary_originator_counter is not None:
        head["supplementary_originator_counter"] = other.supplementary_originator_counter
    signing = message.signing
    envelope = message.envelope
    out: dict[str, Any] = {
        "envelope": "General-Ciphering (DD)" if isinstance(envelope, GeneralCiphering) else "General-Signing (DF)",
        "grouping_header": head,
        "payload": _plain(message.payload),
        "signature": (None if signing.signature is None else signing.signature.hex().upper() or ""),
    }
    if isinstance(envelope, GeneralCiphering):
        out["invocation_counter"] = envelope.invocation_counter
        out["mac"] = envelope.mac.hex().upper()
    if verdict is not None:
        out["verification"] = {
            "signature": verdict.signature.value,
            "mac": verdict.mac.value,
            "expected_protection": verdict.expected.value if verdict.expected else None,
            "ok": verdict.ok,
            "detail": verdict.detail,
        }
    return out


def render_text(description: dict[str, Any]) -> str:
    """Indented ``name: value`` lines, one per field."""
    lines: list[str] = []

    def walk(value: Any, indent: int, name: str) -> None:
        pad = "  " * indent
        if isinstance(value, dict):
            lines.append(f"{pad}{name}:" if name else "")
            for key, item in value.items():
                walk(item, indent + 1, key)
        elif isinstance(value, list):
            lines.append(f"{pad}{name}:")
            for index, item in enumerate(value):
                walk(item, indent + 1, f"[{index}]")
        else:
            lines.append(f"{pad}{name}: {'-' if value is None else value}")

    for key, item in description.items():
        walk(item, 0, key)
    return "\n".join(line for line in lines if line)
