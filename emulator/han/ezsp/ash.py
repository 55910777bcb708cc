"""ASH (Asynchronous Serial Host) framing, the NCP side of Silicon Labs UG101.

Two layers, neither doing I/O:

* a codec: :func:`encode_frame` turns one frame record into the bytes on the wire (CRC, byte
  stuffing, flag) and :class:`AshDecoder` turns a byte stream back into frames, reporting a bad
  frame as :class:`CorruptFrame` instead of raising, because the protocol answers corruption
  with a NAK rather than an error;
* :class:`NcpAsh`, the NCP's state machine: RSTACK on reset, ACK/NAK of host DATA frames, a
  window of one outgoing DATA frame retransmitted on NAK or timeout. It writes bytes and hands
  EZSP frames up through callbacks and waits only through a :class:`~emulator.runtime.clock.Clock`,
  so tests drive it byte by byte in virtual time.

Faults are switches on :class:`AshFaults`: corrupt the CRC of the NCP's next DATA frames, or NAK
the host's next DATA frames as if they had arrived damaged.
"""

from __future__ import annotations

import binascii
import collections
import enum
import logging
from dataclasses import dataclass
from typing import Callable, Union

from emulator.runtime.clock import Clock, Timer

_LOGGER = logging.getLogger(__name__)

FLAG = 0x7E
ESCAPE = 0x7D
XON = 0x11
XOFF = 0x13
SUBSTITUTE = 0x18
CANCEL = 0x1A
RESERVED = frozenset({FLAG, ESCAPE, XON, XOFF, SUBSTITUTE, CANCEL})

ASH_VERSION = 2
MAX_DATA_LEN = 128
"""Longest EZSP frame a DATA frame carries (UG101: 3..128 bytes)."""

T_RX_ACK_INIT = 1.6
"""Seconds the NCP waits for the host to acknowledge a DATA frame before retransmitting."""
ACK_TIMEOUTS = 4
"""Retransmissions after a timeout before the NCP gives up and reports ERROR."""


class ResetCode(enum.IntEnum):
    """Why the NCP reset, as carried by RSTACK and ERROR frames (a subset of EmberZNet's)."""

    UNKNOWN = 0x00
    EXTERNAL = 0x01
    POWER_ON = 0x02
    WATCHDOG = 0x03
    ASSERT = 0x06
    BOOTLOADER = 0x09
    SOFTWARE = 0x0B
    EXCEEDED_MAXIMUM_ACK_TIMEOUT_COUNT = 0x51


def _lfsr_sequence(length: int) -> bytes:
    """The pseudo-random sequence DATA payloads are XORed with (seed 0x42, taps 0xB8)."""
    out = bytearray()
    value = 0x42
    for _ in range(length):
        out.append(value)
        value = (value >> 1) ^ 0xB8 if value & 1 else value >> 1
    return bytes(out)


_RANDOM = _lfsr_sequence(256)


def randomise(data: bytes) -> bytes:
    """XOR ``data`` with the ASH pseudo-random sequence (its own inverse)."""
    if len(data) > len(_RANDOM):
        raise ValueError(f"DATA payload of {len(data)} bytes exceeds {len(_RANDOM)}")
    return bytes(a ^ b for a, b in zip(data, _RANDOM))


def crc_ccitt(data: bytes) -> int:
    """CRC-CCITT with initial value 0xFFFF, as ASH appends it (big-endian)."""
    return binascii.crc_hqx(data, 0xFFFF)


def stuff(data: bytes) -> bytes:
    """Escape reserved bytes as ``0x7D, byte ^ 0x20``."""
    out = bytearray()
    for byte in data:
        if byte in RESERVED:
            out += bytes((ESCAPE, byte ^ 0x20))
        else:
            out.append(byte)
    return bytes(out)


# -- frame records -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Data:
    frm_num: int
    ack_num: int
    re_tx: bool
    payload: bytes
    """The EZSP frame, not randomised."""


@dataclass(frozen=True, slots=True)
class Ack:
    ack_num: int
    not_ready: bool = False


@dataclass(frozen=True, slots=True)
class Nak:
    ack_num: int
    not_ready: bool = False


@dataclass(frozen=True, slots=True)
class Rst:
    pass


@dataclass(frozen=True, slots=True)
class RstAck:
    reset_code: int
    version: int = ASH_VERSION


@dataclass(frozen=True, slots=True)
class Error:
    reset_code: int
    version: int = ASH_VERSION


@dataclass(frozen=True, slots=True)
class CorruptFrame:
    """Bytes between two flags that are not a valid frame; ``reason`` says why."""

    raw: bytes
    reason: str

    @property
    def looks_like_data(self) -> bool:
        return bool(self.raw) and not self.raw[0] & 0x80


Frame = Union[Data, Ack, Nak, Rst, RstAck, Error]


def frame_body(frame: Frame) -> bytes:
    """Control byte and payload, before CRC and stuffing."""
    if isinstance(frame, Data):
        control = ((frame.frm_num & 7) << 4) | (int(frame.re_tx) << 3) | (frame.ack_num & 7)
        return bytes([control]) + randomise(frame.payload)
    if isinstance(frame, Ack):
        return bytes([0x80 | (int(frame.not_ready) << 3) | (frame.ack_num & 7)])
    if isinstance(frame, Nak):
        return bytes([0xA0 | (int(frame.not_ready) << 3) | (frame.ack_num & 7)])
    if isinstance(frame, Rst):
        return b"\xc0"
    if isinstance(frame, RstAck):
        return bytes([0xC1, frame.version, frame.reset_code])
    if isinstance(frame, Error):
        return bytes([0xC2, frame.version, frame.reset_code])
    raise TypeError(f"not an ASH frame: {frame!r}")


def encode_frame(frame: Frame, *, corrupt_crc: bool = False) -> bytes:
    """The bytes on the wire for ``frame``, flag included.

    ``corrupt_crc`` inverts the CRC (fault injection: the host must NAK the frame).
    """
    body = frame_body(frame)
    crc = crc_ccitt(body)
    if corrupt_crc:
        crc ^= 0xFFFF
    return stuff(body + crc.to_bytes(2, "big")) + bytes([FLAG])


def decode_frame(unstuffed: bytes) -> Frame | CorruptFrame:
    """Decode one frame (unstuffed, without flag)."""
    if len(unstuffed) < 3:
        return CorruptFrame(unstuffed, f"frame of {len(unstuffed)} bytes is too short")
    body, crc = unstuffed[:-2], int.from_bytes(unstuffed[-2:], "big")
    if crc_ccitt(body) != crc:
        return CorruptFrame(unstuffed, f"bad CRC 0x{crc:04X}, expected 0x{crc_ccitt(body):04X}")
    control, payload = body[0], body[1:]
    if not control & 0x80:
        if not payload:
            return CorruptFrame(unstuffed, "DATA frame without payload")
        if len(payload) > MAX_DATA_LEN:
            return CorruptFrame(unstuffed, f"DATA payload of {len(payload)} bytes is too long")
        return Data((control >> 4) & 7, control & 7, bool(control & 0x08), randomise(payload))
    if control & 0xE0 == 0x80:
        return Ack(control & 7, bool(control & 0x08))
    if control & 0xE0 == 0xA0:
        return Nak(control & 7, bool(control & 0x08))
    if control == 0xC0 and not payload:
        return Rst()
    if control in (0xC1, 0xC2) and len(payload) == 2:
        cls = RstAck if control == 0xC1 else Error
        return cls(reset_code=payload[1], version=payload[0])
    return CorruptFrame(unstuffed, f"unknown control byte 0x{control:02X} with {len(payload)} bytes")


class AshDecoder:
    """Splits a byte stream into frames, honouring CANCEL, SUBSTITUTE and XON/XOFF."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._escaped = False
        self._damaged = False

    def feed(self, data: bytes) -> list[Frame | CorruptFrame]:
        frames: list[Frame | CorruptFrame] = []
        for byte in data:
            if byte == FLAG:
                if self._damaged:
                    frames.append(CorruptFrame(bytes(self._buffer), "SUBSTITUTE byte in frame"))
                elif self._escaped:
                    frames.append(CorruptFrame(bytes(self._buffer), "frame ends with ESCAPE"))
                elif self._buffer:
                    frames.append(decode_frame(bytes(self._buffer)))
                self._reset()
            elif byte == CANCEL:
                self._reset()  # everything since the previous flag is void
            elif byte == SUBSTITUTE:
                self._damaged = True
            elif byte in (XON, XOFF):
                continue  # software flow control: not modelled, never part of a frame
            elif byte == ESCAPE:
                self._escaped = True
            elif self._escaped:
                self._buffer.append(byte ^ 0x20)
                self._escaped = False
            else:
                self._buffer.append(byte)
        return frames

    def _reset(self) -> None:
        self._buffer.clear()
        self._escaped = False
        self._damaged = False


# -- NCP state machine -------------------------------------------------------------------------
@dataclass
class AshFaults:
    """Switchable ASH-level faults; each counter is consumed one frame at a time."""

    corrupt_tx: int = 0
    """Send the NCP's next N DATA frames (first transmissions) with a wrong CRC."""
    nak_rx: int = 0
    """Reject the host's next N in-sequence DATA frames with a NAK, as if damaged."""
    ignore_rx: int = 0
    """Take no notice of the host's next N DATA frames (no ACK, not delivered), as if lost on the
    line: the host waits for its ACK timeout and retransmits."""


@dataclass
class AshCounters:
    data_rx: int = 0
    data_tx: int = 0
    retransmissions: int = 0
    naks_sent: int = 0
    naks_received: int = 0
    corrupt_rx: int = 0
    resets: int = 0


class NcpAsh:
    """The NCP end of an ASH link.

    ``write(bytes)`` puts bytes on the serial line; ``deliver(ezsp_frame)`` hands a host DATA
    payload up; ``on_reset()`` tells the EZSP layer the host reset the link (it must forget the
    negotiated protocol version). :meth:`send` queues an EZSP frame for the host.
    """

    def __init__(
        self,
        clock: Clock,
        write: Callable[[bytes], None],
        deliver: Callable[[bytes], None],
        on_reset: Callable[[], None] = lambda: None,
        *,
        faults: AshFaults | None = None,
        t_rx_ack: float = T_RX_ACK_INIT,
    ) -> None:
        self._clock = clock
        self._write = write
        self._deliver = deliver
        self._on_reset = on_reset
        self.faults = faults if faults is not None else AshFaults()
        self.counters = AshCounters()
        self.t_rx_ack = t_rx_ack
        self._decoder = AshDecoder()
        self._queue: collections.deque[bytes] = collections.deque()
        self._rx_seq = 0  # next frame number expected from the host
        self._tx_seq = 0  # frame number of the next new DATA frame
        self._outstanding: Data | None = None
        self._timer: Timer | None = None
        self._timeouts = 0
        self._rejecting = False
        self._failed = False
        self.connected = False

    # -- inputs ----------------------------------------------------------------------------
    def start(self, reset_code: int = ResetCode.POWER_ON) -> None:
        """The NCP has (re)booted: announce it with RSTACK."""
        self._restart()
        self._emit(RstAck(reset_code))

    def fail(self, reset_code: int) -> None:
        """Enter the FAILED state and tell the host with an ERROR frame."""
        self._restart()
        self.connected = False
        self._failed = True
        self._emit(Error(reset_code))

    def send(self, ezsp_frame: bytes) -> None:
        """Queue an EZSP frame (response or callback) for the host."""
        if self._failed:
            _LOGGER.debug("ASH failed: dropping %s", ezsp_frame.hex())
            return
        self._queue.append(ezsp_frame)
        self._pump()

    def receive(self, data: bytes) -> None:
        """Bytes from the host."""
        for frame in self._decoder.feed(data):
            self._handle(frame)

    def close(self) -> None:
        self._cancel_timer()
        self._queue.clear()
        self._outstanding = None

    # -- frame handling --------------------------------------------------------------------
    def _handle(self, frame: Frame | CorruptFrame) -> None:
        if isinstance(frame, CorruptFrame):
            self.counters.corrupt_rx += 1
            _LOGGER.debug("ASH: corrupt frame from host (%s): %s", frame.reason, frame.raw.hex())
            if frame.looks_like_data:
                self._reject()
            return
        if isinstance(frame, Rst):
            self.counters.resets += 1
            self._on_reset()
            self.start(ResetCode.SOFTWARE)
            return
        if self._failed or not self.connected:
            _LOGGER.debug("ASH: %r ignored before RST", frame)
            return
        if isinstance(frame, Data):
            self._handle_ack_num(frame.ack_num)
            self._handle_data(frame)
        elif isinstance(frame, Ack):
            self._handle_ack_num(frame.ack_num)
        elif isinstance(frame, Nak):
            self.counters.naks_received += 1
            self._handle_ack_num(frame.ack_num)
            if self._outstanding is not None:
                self._retransmit()
        else:
            _LOGGER.debug("ASH: unexpected %r from host ignored", frame)

    def _handle_data(self, frame: Data) -> None:
        if self.faults.ignore_rx > 0:
            self.faults.ignore_rx -= 1
            _LOGGER.info("ASH fault: host DATA frame %d ignored (lost on the line)", frame.frm_num)
            return
        if frame.frm_num == self._rx_seq:
            if self.faults.nak_rx > 0:
                self.faults.nak_rx -= 1
                _LOGGER.info("ASH fault: rejecting host DATA frame %d with NAK", frame.frm_num)
                self.counters.naks_sent += 1
                self._emit(Nak(self._rx_seq))
                return
            self._rx_seq = (self._rx_seq + 1) % 8
            self._rejecting = False
            self.counters.data_rx += 1
            self._emit(Ack(self._rx_seq))
            self._deliver(frame.payload)
        elif frame.re_tx:
            self._emit(Ack(self._rx_seq))  # a duplicate: acknowledge again, deliver once
        else:
            self._reject()

    def _reject(self) -> None:
        if self._rejecting:
            return
        self._rejecting = True
        self.counters.naks_sent += 1
        self._emit(Nak(self._rx_seq))

    def _handle_ack_num(self, ack_num: int) -> None:
        out = self._outstanding
        if out is not None and ack_num == (out.frm_num + 1) % 8:
            self._outstanding = None
            self._timeouts = 0
            self._cancel_timer()
            self._pump()

    # -- transmission ----------------------------------------------------------------------
    def _pump(self) -> None:
        if self._outstanding is not None or not self._queue or not self.connected:
            return
        frame = Data(self._tx_seq, self._rx_seq, False, self._queue.popleft())
        self._tx_seq = (self._tx_seq + 1) % 8
        self._outstanding = frame
        corrupt = False
        if self.faults.corrupt_tx > 0:
            self.faults.corrupt_tx -= 1
            corrupt = True
            _LOGGER.info("ASH fault: sending DATA frame %d with a bad CRC", frame.frm_num)
        self.counters.data_tx += 1
        self._emit(frame, corrupt_crc=corrupt)
        self._arm_timer()

    def _retransmit(self) -> None:
        out = self._outstanding
        assert out is not None
        out = Data(out.frm_num, self._rx_seq, True, out.payload)
        self._outstanding = out
        self.counters.retransmissions += 1
        self._emit(out)
        self._arm_timer()

    def _on_ack_timeout(self) -> None:
        self._timer = None
        if self._outstanding is None:
            return
        self._timeouts += 1
        if self._timeouts > ACK_TIMEOUTS:
            _LOGGER.warning("ASH: host acknowledged nothing after %d retransmissions", ACK_TIMEOUTS)
            self.fail(ResetCode.EXCEEDED_MAXIMUM_ACK_TIMEOUT_COUNT)
            return
        self._retransmit()

    def _arm_timer(self) -> None:
        self._cancel_timer()
        self._timer = self._clock.call_later(self.t_rx_ack, self._on_ack_timeout)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _restart(self) -> None:
        self.close()
        self._rx_seq = 0
        self._tx_seq = 0
        self._timeouts = 0
        self._rejecting = False
        self._failed = False
        self.connected = True

    def _emit(self, frame: Frame, *, corrupt_crc: bool = False) -> None:
        _LOGGER.debug("ASH -> host %r", frame)
        self._write(encode_frame(frame, corrupt_crc=corrupt_crc))
