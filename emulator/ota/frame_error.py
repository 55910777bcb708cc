"""The codec's error, in a module of its own so that it stays an ordinary Python class.

:mod:`emulator.ota.codec` raises it and re-exports it (``codec.FrameError``). The compiled build
(mypyc, docs/fleet.md) compiles the codec; an exception class compiled with it could not be
subclassed by interpreted code, and users and test harnesses subclass and pickle exceptions.
"""

from __future__ import annotations

from typing import Any


class FrameError(ValueError):
    """A frame (or a command to encode) that breaks the ZCL OTA layout.

    ``offset`` is the byte offset in the frame (in the payload for the ``*_payload`` functions)
    where the fault lies; ``field`` names the ZCL field, or is ``None`` for the frame as a whole.
    """

    def __init__(self, reason: str, offset: int, field: str | None = None) -> None:
        self.reason = reason
        self.offset = offset
        self.field = field
        where = f"offset {offset}" if field is None else f"offset {offset}, field {field}"
        super().__init__(f"{reason} ({where})")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.reason, self.offset, self.field))
