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
import dataclasses
import io
import operator
import pickle
import struct
import sys
from dataclasses import dataclass, field
from datetime import datetime
from types import ModuleType
from typing import Any, AsyncIterator, Callable

from emulator.dcc import messages, outbox, service_requests
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


_FOUND: dict[tuple[str, str], Any] = {}


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        found = _FOUND.get((module, name))
        if found is not None:
            return found
        if module.startswith("emulator.") or (module, name) in _BUILTINS:
            found = _FOUND[module, name] = super().find_class(module, name)
            return found
        raise LinkError(f"frame refers to {module}.{name}, which the link does not carry")


def _reducers(*modules: ModuleType) -> dict[type, Callable[[Any], tuple[Any, ...]]]:
    """Each record class of ``modules`` pickled as its constructor and its fields (a C getter):
    the default for a slotted dataclass goes through ``dataclasses.fields`` at both ends, about
    ten times slower (tens of microseconds per frame)."""
    table: dict[type, Callable[[Any], tuple[Any, ...]]] = {}
    for module in modules:
        for cls in vars(module).values():
            if not (isinstance(cls, type) and dataclasses.is_dataclass(cls) and cls.__module__ == module.__name__):
                continue
            fields = dataclasses.fields(cls)
            if not fields or not all(f.init and not f.kw_only for f in fields):
                continue
            table[cls] = _reducer(cls, [f.name for f in fields])
    return table


def _reducer(cls: type, names: list[str]) -> Callable[[Any], tuple[Any, ...]]:
    getter = operator.attrgetter(*names)
    if len(names) == 1:
        return lambda record: (cls, (getter(record),))
    return lambda record: (cls, getter(record))


_DISPATCH = _reducers(sys.modules[__name__], service_requests, messages, outbox)


def encode(frame: Frame) -> bytes:
    buffer = io.BytesIO()
    buffer.write(b"\0\0\0\0")
    pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = _DISPATCH
    pickler.dump(frame)
    data = buffer.getbuffer()
    data[:4] = _LENGTH.pack(len(data) - 4)
    del data
    return buffer.getvalue()


def decode(payload: bytes) -> Frame:
    frame = _Unpickler(io.BytesIO(payload)).load()
    if not isinstance(frame, (EdgeConfig, Answer, Failed, Deliver, Ready, Submit, FrontDoorNote)):
        raise LinkError(f"frame is a {type(frame).__name__}, not a link record")
    return frame


async def read_frames(reader: asyncio.StreamReader) -> AsyncIterator[list[Frame]]:
    """Every frame until the peer is gone, in the batches that arrived together (one wake-up of
    the loop for all the frames of one read)."""
    buffer = bytearray()
    while True:
        try:
            chunk = await reader.read(1 << 18)
        except ConnectionError:
            return
        if not chunk:
            return
        buffer += chunk
        frames: list[Frame] = []
        start = 0
        while len(buffer) - start >= _LENGTH.size:
            (size,) = _LENGTH.unpack_from(buffer, start)
            if size > MAX_FRAME:
                raise LinkError(f"frame of {size} bytes, larger than {MAX_FRAME}")
            end = start + _LENGTH.size + size
            if end > len(buffer):
                break
            frames.append(decode(bytes(buffer[start + _LENGTH.size:end])))
            start = end
        del buffer[:start]
        if frames:
            yield frames


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
