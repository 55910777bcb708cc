"""Capture the HAN to a pcap file that Wireshark dissects down to the ZigBee OTA commands.

Frames cross the HAN boundary at the APS level (:class:`~emulator.han.packet.ApsPacket`), so the
IEEE 802.15.4 MAC and ZigBee NWK headers written here are *synthesised*, not sniffed: one hop from
sender to receiver, short addresses, no security at any layer, a MAC and a NWK sequence number per
sender. That is enough for Wireshark's ``wpan`` → ``zbee_nwk`` → ``zbee_aps`` → ``zbee_zcl``
dissectors to decode every field without keys.

:class:`PcapWriter` is a trace hook (``writer.hook(direction, packet)``); its timestamps come from
a clock callable so that a virtual-time run is written in virtual time.
"""

from __future__ import annotations

import enum
import logging
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Callable

from .aps_fragmentation import EXTENDED_HEADER_PRESENT, ApsFragment, split
from .link_security import SecuredApsPacket
from .packet import ApsPacket

_LOGGER = logging.getLogger(__name__)

PCAP_MAGIC_MICROSECONDS = 0xA1B2C3D4
PCAP_VERSION = (2, 4)
PCAP_SNAPLEN = 65535

MAX_PHY_PACKET_SIZE = 127
"""aMaxPHYPacketSize: the longest MAC frame (MHR + payload + FCS) a 2.4 GHz radio can send."""

DEFAULT_PAN_ID = 0x1A62
DEFAULT_CHANNEL = 11
DEFAULT_RADIUS = 30
"""2 × nwkMaxDepth for a ZigBee PRO stack (nwkMaxDepth 15)."""

MAC_BROADCAST = 0xFFFF
ZIGBEE_PROTOCOL_VERSION = 2  # ZigBee 2007 / ZigBee PRO


class LinkType(enum.IntEnum):
    """pcap link types for IEEE 802.15.4 that Wireshark dissects."""

    IEEE802_15_4_WITHFCS = 195
    """The MAC frame followed by its 2-byte FCS. Read by every tool that knows 802.15.4."""

    IEEE802_15_4_TAP = 283
    """A TLV header (FCS type, channel, RSS, LQI) then the MAC frame. Wireshark 3.0 and later."""


# -- IEEE 802.15.4 frame check sequence ------------------------------------------------------------

def _crc16_kermit_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC_TABLE = _crc16_kermit_table()


def fcs16(data: bytes) -> int:
    """The 802.15.4 FCS of ``data`` (MHR + MAC payload): ITU-T CRC-16, x^16+x^12+x^5+1.

    Initial value 0, bits processed least significant first, no final XOR (the catalogue calls
    this CRC-16/KERMIT). It is sent least significant byte first.
    """
    crc = 0
    table = _CRC_TABLE
    for byte in data:
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return crc


# -- header synthesis ------------------------------------------------------------------------------

# MAC frame control (IEEE 802.15.4-2006 7.2.1.1): data frame, 2003 frame version, short addresses.
_MAC_FC_DATA = 0x0001
_MAC_FC_ACK_REQUEST = 0x0020
_MAC_FC_PAN_ID_COMPRESSION = 0x0040
_MAC_FC_DST_SHORT = 0x0800
_MAC_FC_SRC_SHORT = 0x8000

# NWK frame control (ZigBee 3.3.1.1).
_NWK_FC_DATA = 0x0000
_NWK_FC_PROTOCOL_VERSION = ZIGBEE_PROTOCOL_VERSION << 2
_NWK_FC_DISCOVER_ROUTE_ENABLE = 0x0040
_NWK_FC_DST_IEEE = 0x0800
_NWK_FC_SRC_IEEE = 0x1000

# APS frame control (ZigBee 2.2.5.1.1): data frame, no security, no ack request.
_APS_FC_DATA = 0x00
_APS_FC_DELIVERY_UNICAST = 0x00
_APS_FC_DELIVERY_BROADCAST = 0x08
_APS_FC_SECURITY = 0x20  # a SecuredApsPacket: its payload is auxiliary header, ciphertext, MIC

_MAC_HEADER_LEN = 9  # frame control, sequence, dst PAN, dst short, src short
_FCS_LEN = 2
_NWK_HEADER_LEN = 8  # frame control, dst, src, radius, sequence
_IEEE_LEN = 8
_APS_FC_ACK_REQUEST = 0x40
_APS_HEADER_LEN = 8  # frame control, dst ep, cluster, profile, src ep, counter

_FIELD_LIMITS: tuple[tuple[str, int], ...] = (
    ("src", 0xFFFF_FFFF_FFFF_FFFF),
    ("dst", 0xFFFF_FFFF_FFFF_FFFF),
    ("src_nwk", 0xFFFF),
    ("dst_nwk", 0xFFFF),
    ("src_ep", 0xFF),
    ("dst_ep", 0xFF),
    ("profile", 0xFFFF),
    ("cluster", 0xFFFF),
    ("aps_counter", 0xFF),
)


def _check_packet(packet: ApsPacket) -> None:
    for name, limit in _FIELD_LIMITS:
        value = getattr(packet, name)
        if not isinstance(value, int) or not 0 <= value <= limit:
            raise ValueError(
                f"cannot capture frame from {packet.src:016X}: {name}={value!r} is outside 0..0x{limit:X}"
            )


@dataclass
class FrameSynthesiser:
    """Turns APS packets into complete 802.15.4 MAC frames (FCS included).

    Holds the per-sender MAC and NWK sequence numbers, so one instance serves one capture.
    The NWK header carries the IEEE addresses (which lets Wireshark show EUI-64s next to the
    short addresses) whenever the frame still fits in 127 bytes with them.
    """

    pan_id: int = DEFAULT_PAN_ID
    include_ieee: bool = True
    radius: int = DEFAULT_RADIUS
    _mac_seq: dict[int, int] = field(default_factory=dict, init=False, repr=False)
    _nwk_seq: dict[int, int] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if not 0 <= self.pan_id <= 0xFFFE:
            raise ValueError(f"PAN ID 0x{self.pan_id:X} is outside 0x0000..0xFFFE")
        if not 1 <= self.radius <= 0xFF:
            raise ValueError(f"NWK radius {self.radius} is outside 1..255")

    def mac_frame(self, packet: ApsPacket, extended_header: bytes = b"") -> bytes:
        """The MAC frame for ``packet``, FCS included; may exceed 127 bytes (see :func:`fits`).

        With ``extended_header`` (an APS fragment's, :mod:`emulator.han.aps_fragmentation`) the
        APS header says so and asks for an APS acknowledgement, as fragments do."""
        _check_packet(packet)
        broadcast = packet.is_broadcast
        aps = self._aps_frame(packet, broadcast, extended_header)
        base = _MAC_HEADER_LEN + _NWK_HEADER_LEN + len(aps) + _FCS_LEN
        src_ieee = self.include_ieee and base + _IEEE_LEN <= MAX_PHY_PACKET_SIZE
        dst_ieee = (
            src_ieee and not broadcast and packet.dst != 0
            and base + 2 * _IEEE_LEN <= MAX_PHY_PACKET_SIZE
        )
        nwk = self._nwk_header(packet, broadcast, src_ieee, dst_ieee)
        mhr = self._mac_header(packet, broadcast)
        body = mhr + nwk + aps
        return body + fcs16(body).to_bytes(2, "little")

    def _mac_header(self, packet: ApsPacket, broadcast: bool) -> bytes:
        fc = _MAC_FC_DATA | _MAC_FC_PAN_ID_COMPRESSION | _MAC_FC_DST_SHORT | _MAC_FC_SRC_SHORT
        if broadcast:
            dst = MAC_BROADCAST
        else:
            fc |= _MAC_FC_ACK_REQUEST
            dst = packet.dst_nwk
        seq = self._next(self._mac_seq, packet.src)
        return struct.pack("<HBHHH", fc, seq, self.pan_id, dst, packet.src_nwk)

    def _nwk_header(self, packet: ApsPacket, broadcast: bool, src_ieee: bool, dst_ieee: bool) -> bytes:
        fc = _NWK_FC_DATA | _NWK_FC_PROTOCOL_VERSION
        if not broadcast:
            fc |= _NWK_FC_DISCOVER_ROUTE_ENABLE
        if dst_ieee:
            fc |= _NWK_FC_DST_IEEE
        if src_ieee:
            fc |= _NWK_FC_SRC_IEEE
        seq = self._next(self._nwk_seq, packet.src)
        header = struct.pack("<HHHBB", fc, packet.dst_nwk, packet.src_nwk, self.radius, seq)
        if dst_ieee:
            header += packet.dst.to_bytes(8, "little")
        if src_ieee:
            header += packet.src.to_bytes(8, "little")
        return header

    @staticmethod
    def _aps_frame(packet: ApsPacket, broadcast: bool, extended_header: bytes = b"") -> bytes:
        delivery = _APS_FC_DELIVERY_BROADCAST if broadcast else _APS_FC_DELIVERY_UNICAST
        control = _APS_FC_DATA | delivery
        if isinstance(packet, SecuredApsPacket):
            control |= _APS_FC_SECURITY
        if extended_header:
            control |= EXTENDED_HEADER_PRESENT | _APS_FC_ACK_REQUEST
        header = struct.pack(
            "<BBHHBB", control, packet.dst_ep, packet.cluster, packet.profile,
            packet.src_ep, packet.aps_counter,
        )
        return header + extended_header + bytes(packet.payload)

    @staticmethod
    def _next(counters: dict[int, int], sender: int) -> int:
        value = counters.get(sender, 0)
        counters[sender] = (value + 1) & 0xFF
        return value


def fits(mac_frame: bytes) -> bool:
    """Whether a MAC frame (FCS included) fits a single 2.4 GHz PHY packet."""
    return len(mac_frame) <= MAX_PHY_PACKET_SIZE


# -- TAP pseudo-header -----------------------------------------------------------------------------

_TAP_TLV_FCS_TYPE = 0
_TAP_TLV_RSS = 1
_TAP_TLV_CHANNEL = 3
_TAP_TLV_LQI = 10
_TAP_FCS_16BIT = 1


def _tlv(tlv_type: int, value: bytes) -> bytes:
    padding = b"\x00" * (-len(value) % 4)
    return struct.pack("<HH", tlv_type, len(value)) + value + padding


def tap_header(channel: int, rssi: float, lqi: int) -> bytes:
    """IEEE 802.15.4 TAP header: FCS type (16-bit), RSS in dBm, channel on page 0, LQI."""
    tlvs = (
        _tlv(_TAP_TLV_FCS_TYPE, bytes([_TAP_FCS_16BIT]))
        + _tlv(_TAP_TLV_RSS, struct.pack("<f", float(rssi)))
        + _tlv(_TAP_TLV_CHANNEL, struct.pack("<HB", channel, 0))
        + _tlv(_TAP_TLV_LQI, bytes([max(0, min(255, int(lqi)))]))
    )
    return struct.pack("<BBH", 0, 0, 4 + len(tlvs)) + tlvs


# -- the writer ------------------------------------------------------------------------------------

TimestampSource = Callable[[], float]


class PcapWriter:
    """Writes HAN frames to a classic pcap file (microsecond timestamps).

    ``target`` is a path (created or truncated, closed by :meth:`close`) or a binary stream
    (flushed but left open). ``clock`` gives each frame's time in seconds; pass a virtual
    clock's ``now`` to write virtual time (the default is wall-clock Unix time). ``epoch`` is added to it, e.g. a Unix time so that
    Wireshark shows calendar dates instead of 1970-01-01.

    Use it as a trace hook: ``medium.add_trace_hook(writer.hook)``. Attach it to one place per
    HAN (the virtual medium, or the Comms Hub's transport), or frames are written twice.
    """

    def __init__(
        self,
        target: str | Path | BinaryIO,
        *,
        clock: TimestampSource = time.time,
        link_type: LinkType = LinkType.IEEE802_15_4_WITHFCS,
        pan_id: int = DEFAULT_PAN_ID,
        channel: int = DEFAULT_CHANNEL,
        include_ieee: bool = True,
        epoch: float = 0.0,
    ) -> None:
        self._link_type = LinkType(link_type)
        if not 11 <= channel <= 26:
            raise ValueError(f"channel {channel} is not a 2.4 GHz IEEE 802.15.4 channel (11..26)")
        self._synth = FrameSynthesiser(pan_id=pan_id, include_ieee=include_ieee)
        self._channel = channel
        self._clock = clock
        self._epoch = epoch
        if isinstance(target, (str, Path)):
            self.name = str(target)
            self._stream: BinaryIO = open(target, "wb")  # noqa: SIM115 - closed by close()
            self._owns_stream = True
        else:
            self.name = str(getattr(target, "name", "<stream>"))
            self._stream = target
            self._owns_stream = False
        self._closed = False
        self.frames_written = 0
        self.oversize_frames = 0
        self.fragmented_messages = 0  # written as APS blocks, one frame each
        major, minor = PCAP_VERSION
        self._stream.write(
            struct.pack("<IHHiIII", PCAP_MAGIC_MICROSECONDS, major, minor, 0, 0, PCAP_SNAPLEN,
                        int(self._link_type))
        )

    @property
    def link_type(self) -> LinkType:
        return self._link_type

    @property
    def closed(self) -> bool:
        return self._closed

    def hook(self, direction: str, packet: ApsPacket) -> None:
        """Trace-hook entry point: every frame is written, whatever its direction."""
        self.write(packet)

    def write(self, packet: ApsPacket, timestamp: float | None = None) -> None:
        """Write one frame, stamped ``timestamp`` (seconds) or the clock's current time."""
        if self._closed:
            raise ValueError(f"pcap capture {self.name} is closed; frame from {packet.src:016X} not written")
        when = (self._clock() if timestamp is None else timestamp) + self._epoch
        if not 0 <= when < 2**32:
            raise ValueError(
                f"pcap capture {self.name}: timestamp {when} s for frame from {packet.src:016X} "
                "is outside what pcap can hold (0 .. 2**32 s after 1970-01-01)"
            )
        if isinstance(packet, ApsFragment):  # a block the virtual HAN sent as such: written as it went
            self._write_frame(self._synth.mac_frame(packet._replace(payload=packet.body), packet.extended_header),
                              when, packet)
            return
        frame = self._synth.mac_frame(packet)
        if not fits(frame) and not packet.is_broadcast:
            # What a radio sends: APS blocks (window 1), one frame each, 10 ms apart.
            for n, fragment in enumerate(split(packet.payload)):
                self._write_frame(self._synth.mac_frame(packet._replace(payload=fragment.data),
                                                        fragment.extended_header), when + n * 0.01, packet)
            self.fragmented_messages += 1
            return
        if not fits(frame):
            self.oversize_frames += 1
            _LOGGER.warning(
                "%s: frame %d from %016X to 0x%04X is %d bytes, longer than the %d a 802.15.4 "
                "frame may have; written anyway (a real radio would need APS fragmentation)",
                self.name, self.frames_written + 1, packet.src, packet.dst_nwk, len(frame),
                MAX_PHY_PACKET_SIZE,
            )
        self._write_frame(frame, when, packet)

    def _write_frame(self, frame: bytes, when: float, packet: ApsPacket) -> None:
        if self._link_type is LinkType.IEEE802_15_4_TAP:
            frame = tap_header(self._channel, packet.rssi, packet.lqi) + frame
        micros = round(when * 1_000_000)
        seconds, micros = divmod(micros, 1_000_000)
        self._stream.write(struct.pack("<IIII", seconds, micros, len(frame), len(frame)) + frame)
        self.frames_written += 1

    def flush(self) -> None:
        if not self._closed:
            self._stream.flush()

    def close(self) -> None:
        """Flush, and close the file if this writer opened it. Closing twice is harmless."""
        if self._closed:
            return
        self._closed = True
        self._stream.flush()
        if self._owns_stream:
            self._stream.close()
        _LOGGER.info("%s: %d frames captured", self.name, self.frames_written)

    def __enter__(self) -> "PcapWriter":
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
