"""EUI-64 identifiers as DCC writes them (``00-DB-12-34-56-78-90-A4``), for every layer."""

from __future__ import annotations


def format_eui64(value: int) -> str:
    """``0x00DB1234567890A4`` -> ``"00-DB-12-34-56-78-90-A4"``."""
    try:  # one C call: a fleet formats every device ID several times over
        return value.to_bytes(8, "big").hex("-").upper()
    except OverflowError:
        raise ValueError(f"EUI-64 out of range: {value:#x}") from None


def parse_eui64(text: str) -> int:
    """Accepts ``00-DB-12-34-56-78-90-A4``, ``00:DB:…`` or 16 plain hex digits; a ValueError names the text."""
    digits = text.strip().replace("-", "").replace(":", "")
    if len(digits) != 16:
        raise ValueError(f"EUI-64 {text!r} must have 8 bytes (16 hex digits), like 00-DB-12-34-56-78-90-A0")
    try:
        return int(digits, 16)
    except ValueError:
        raise ValueError(f"EUI-64 {text!r} is not hexadecimal") from None
