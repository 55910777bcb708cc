"""EUI-64 identifiers in the hyphenated form DUIS and the SMI use (``00-DB-12-34-56-78-90-A0``)."""

from __future__ import annotations


def format_eui64(value: int) -> str:
    """``0x00DB1234567890A0`` -> ``"00-DB-12-34-56-78-90-A0"``."""
    if not 0 <= value < 1 << 64:
        raise ValueError(f"EUI-64 out of range: {value:#x}")
    text = f"{value:016X}"
    return "-".join(text[i : i + 2] for i in range(0, 16, 2))


def parse_eui64(text: str) -> int:
    """Accepts ``00-DB-12-34-56-78-90-A0`` (hyphens optional); raises ValueError naming the text."""
    digits = text.strip().replace("-", "")
    if len(digits) != 16:
        raise ValueError(f"{text!r} is not an EUI-64 (expected eight hex pairs like 00-DB-12-34-56-78-90-A0)")
    try:
        return int(digits, 16)
    except ValueError:
        raise ValueError(f"{text!r} is not an EUI-64 (non-hex digits)") from None
