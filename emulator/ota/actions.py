"""What the OTA engines ask their runtime to do. Engines return these; they never do I/O."""

from __future__ import annotations

from typing import Any, NamedTuple, Union


class Send(NamedTuple):
    """Send ``command`` to ``device`` (EUI-64; NWK ``nwk``) with ZCL sequence number ``tsn``,
    after ``delay`` seconds (server-side pacing, page response spacing)."""

    device: int
    nwk: int
    command: Any
    tsn: int
    delay: float = 0.0


class SetTimer(NamedTuple):
    """Call the engine's ``on_timer(now, device, kind)`` after ``delay`` seconds."""

    device: int
    kind: str
    delay: float


class Emit(NamedTuple):
    """Report ``event`` (snake_case) about ``device`` with extra ``fields`` to the timeline."""

    event: str
    device: int
    fields: dict[str, Any]


class Activate(NamedTuple):
    """Client only: the device should now run ``file_version`` from the downloaded image."""

    device: int
    file_version: int


Action = Union[Send, SetTimer, Emit, Activate]
