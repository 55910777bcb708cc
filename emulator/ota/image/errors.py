"""What the image tooling reports: fatal problems and tolerated deviations.

Real vendor files deviate from the ZigBee OTA file format in small ways that devices accept. The
parser tolerates those and records each one as an :class:`ImageWarning`, so nothing is skipped
silently; a file it cannot make sense of raises :class:`ImageError` naming where and why.
"""

from __future__ import annotations

from dataclasses import dataclass


class ImageError(ValueError):
    """An OTA file that cannot be used; the message names the source, byte offset and field."""

    def __init__(self, source: str, offset: int, field: str, problem: str) -> None:
        self.source = source
        self.offset = offset
        self.field = field
        self.problem = problem
        if field == "file":  # the file itself, not a place in it
            super().__init__(f"{source}: {problem}")
        else:
            super().__init__(f"{source}: offset {offset} ({field}): {problem}")


@dataclass(frozen=True)
class ImageWarning:
    """A deviation the parser tolerated; ``offset`` is a byte offset in the input."""

    code: str
    offset: int
    message: str

    def __str__(self) -> str:
        return f"{self.code} at offset {self.offset}: {self.message}"
