"""The link between ``serve --workers 2``'s core and its edge process: typed frames over a socket.

The core (DSP, CSP, Comms Hubs, devices, SQLite) and the edge (HTTP, DUIS parsing, signatures,
the outbox's delivery) are one program split over two processes; the link carries the records
they already share in one process (:class:`ServiceRequest`, :class:`DspResponse`,
:class:`UserMessage`) as length-prefixed pickles. Only the project's own record classes (and
``datetime``) may be rebuilt from a frame, and the socket is a ``socketpair`` the core hands its
child: nobody else can write to it.
"""

from __future__ import annotations

import asyncio
import io
import pickle
import struct
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from emulator.dcc.messages import DspResponse, UserMessage
from emulator.dcc.outbox import DeliveryPolicy
from emulator.dcc.service_requests import ServiceRequest

MAX_FRAME = 64 * 1024 * 1024
"""Larger than any request ``serve`` takes (8 MiB of XML)."""
_LENGTH = struct.Struct(">I")
_BUILTINS = {("datetime", "datetime"), ("datetime", "timezone"), ("datetime", "timedelta"),
             ("builtins", "set"), ("builtins", "frozenset")}


class LinkError(Exception):
    """A frame that is not one of the link's records (a bug, or not our peer)."""


# -- frames: core -> edge ----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class EdgeConfig:
    """The first frame: what the edge serves with (the core parsed and checked the options)."""

    db: str
    user_endpoint: str | None
    endpoints: dict[str, str]
    policy: DeliveryPolicy
    journal: str | None
    """A path, ``"-"`` for the edge's standard output (the core's), or None."""
    keystore: str | None
    require_signatures: bool
    max_in_flight: int | None
    request_deadline: float | None
    epoch: datetime
    """The DSP's epoch: asynchronous responses are stamped with it."""
    log_level: int = 30


@dataclass(frozen=True, slots=True)
class Answer:
    """The DSP's synchronous answer to :class:`Submit` ``ticket``; its commit is on disk."""

    ticket: int
    response: DspResponse


@dataclass(frozen=True, slots=True)
class Failed:
    """The DSP raised on :class:`Submit` ``ticket`` (a bug): the edge answers HTTP 500."""

    ticket: int
    error: str


@dataclass(frozen=True, slots=True)
class Deliver:
    """A message for a DCC User, committed in the DSP's ledger: into the outbox with it."""

    message: UserMessage


# -- frames: edge -> core ----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Ready:
    """The edge is listening; ``pid`` is its process."""

    pid: int


@dataclass(frozen=True, slots=True)
class Submit:
    """A parsed, checked Service Request for the DSP, in the order the bodies arrived."""

    ticket: int
    request: ServiceRequest


@dataclass(frozen=True, slots=True)
class FrontDoorNote:
    """One of the front door's own timeline events (``create_app(on_event=...)``)."""

    name: str
    fields: dict[str, Any] = field(default_factory=dict)


Frame = EdgeConfig | Answer | Failed | Deliver | Ready | Submit | FrontDoorNote


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module.startswith("emulator.") or (module, name) in _BUILTINS:
            return super().find_class(module, name)
        raise LinkError(f"frame refers to {module}.{name}, which the link does not carry")


def encode(frame: Frame) -> bytes:
    payload = pickle.dumps(frame, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(payload)) + payload


def decode(payload: bytes) -> Frame:
    frame = _Unpickler(io.BytesIO(payload)).load()
    if not isinstance(frame, (EdgeConfig, Answer, Failed, Deliver, Ready, Submit, FrontDoorNote)):
        raise LinkError(f"frame is a {type(frame).__name__}, not a link record")
    return frame


async def read_frame(reader: asyncio.StreamReader) -> Frame | None:
    """The next frame, or None at the end of the stream (the peer is gone)."""
    try:
        header = await reader.readexactly(_LENGTH.size)
        (size,) = _LENGTH.unpack(header)
        if size > MAX_FRAME:
            raise LinkError(f"frame of {size} bytes, larger than {MAX_FRAME}")
        return decode(await reader.readexactly(size))
    except (asyncio.IncompleteReadError, ConnectionError):
        return None



class FrameWriter:
    """Writes frames to the link, those of one pass of the event loop in one ``send``."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        self._queued: list[bytes] = []

    @property
    def open(self) -> bool:
        return not self._writer.is_closing()

    def send(self, frame: Frame) -> None:
        if not self._queued:
            asyncio.get_running_loop().call_soon(self._flush)
        self._queued.append(encode(frame))

    def _flush(self) -> None:
        data, self._queued = b"".join(self._queued), []
        if not self._writer.is_closing():
            self._writer.write(data)

    def close(self) -> None:
        self._flush()
        self._writer.close()
