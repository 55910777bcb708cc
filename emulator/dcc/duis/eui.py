"""EUI-64 device identifiers as DUIS writes them: eight hex pairs joined by hyphens."""

from __future__ import annotations

import re

from .errors import DuisError

_EUI64 = re.compile(r"[0-9A-Fa-f]{2}(?:-[0-9A-Fa-f]{2}){7}")


def parse_eui64(text: str, *, element: str) -> int:
    """``90-B3-D5-1F-30-01-00-00`` -> int; anything else is a :class:`DuisError` on ``element``."""
    candidate = text.strip()
    if not _EUI64.fullmatch(candidate):
        shown = candidate if len(candidate) <= 40 else candidate[:40] + "..."
        raise DuisError(
            f"{shown!r} is not an EUI-64 (expected eight hex pairs like 00-DB-12-34-56-78-90-A0)",
            element=element,
        )
    return int(candidate.replace("-", ""), 16)


def format_eui64(value: int) -> str:
    """int -> ``00-DB-12-34-56-78-90-A0`` (upper case, as DCC's samples write it)."""
    if not 0 <= value < 1 << 64:
        raise ValueError(f"EUI-64 out of range: {value:#x}")
    raw = f"{value:016X}"
    return "-".join(raw[i : i + 2] for i in range(0, 16, 2))
