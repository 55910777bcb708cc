"""EUI-64 device identifiers as DUIS writes them: eight hex pairs joined by hyphens."""

from __future__ import annotations

import re

from emulator.eui64 import format_eui64 as _format_eui64

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


format_eui64 = _format_eui64  # one implementation for every layer
