"""APS fragmentation (ZigBee PRO 2.2.8.4.5): a payload longer than one frame can carry is sent as
numbered blocks, all with the message's APS counter, each acknowledged. I/O-free: the pcap
writer, the emulated EZSP dongle and the project's zigpy transport all split and reassemble here.

On the air each block carries the APS *extended header* (APS frame control bit 0x80):
extended frame control ``01`` (first block) or ``10`` (a later block), then the block number,
which in the first block is the number of blocks. GBCS HAN frames carry NWK and APS security and
GBCS sizes its blocks so that one fits a 127-byte frame with both: :data:`FRAGMENT_PAYLOAD`.
The window is one block (GBCS devices use 1): a sender sends a block, waits for its APS ack,
resends up to :data:`MAX_RETRIES` times, then sends the next.
"""

from __future__ import annotations

import math

from dataclasses import dataclass, field

from .packet import ApsPacket

MAX_UNFRAGMENTED_PAYLOAD = 82
"""The longest APS payload sent in one frame (EZSP's maximum for an unfragmented unicast)."""
FRAGMENT_PAYLOAD = 61
"""Bytes of payload in each block but the last."""
MAX_RETRIES = 3
"""apscMaxFrameRetries: resends of a block before the message fails."""
WINDOW_SIZE = 1
EXTENDED_HEADER_PRESENT = 0x80
"""APS frame control bit: an extended header follows the APS counter."""
ACK_REQUEST = 0x40
"""APS frame control bit: acknowledgement requested (every block asks for one)."""
EXTENDED_HEADER_LENGTH = 2
FIRST_FRAGMENT = 0b01
LATER_FRAGMENT = 0b10


class FragmentationError(ValueError):
    """A message that cannot be split, or a block that cannot belong to one."""


@dataclass(frozen=True, slots=True)
class Fragment:
    """Block ``index`` (0-based) of ``count``."""

    index: int
    count: int
    data: bytes

    @property
    def extended_header(self) -> bytes:
        """The APS extended header of this block on the air."""
        if self.index == 0:
            return bytes([FIRST_FRAGMENT, self.count])
        return bytes([LATER_FRAGMENT, self.index])

    @property
    def group_id(self) -> int:
        """How EmberZNet hands a block to its host: ``count << 8 | index`` in the APS frame's groupId."""
        return (self.count << 8) | self.index


class ApsFragment(ApsPacket):
    """One APS block as it is on the air: ``payload`` is what follows the APS header there,
    i.e. the extended header (2 octets) and then the block (plain, or for a secured block its
    auxiliary header, ciphertext and MIC). All blocks of a message carry its APS counter."""

    __slots__ = ()

    @property
    def extended_header(self) -> bytes:
        return bytes(self.payload[:EXTENDED_HEADER_LENGTH])

    @property
    def body(self) -> bytes:
        return bytes(self.payload[EXTENDED_HEADER_LENGTH:])


def block_packet(message: ApsPacket, fragment: Fragment) -> ApsFragment:
    """Block ``fragment`` of ``message`` as it goes on the air (before any APS security)."""
    return ApsFragment._make((*message[:4], fragment.extended_header + fragment.data, *message[5:]))


def needs_fragmentation(payload_len: int, limit: int = MAX_UNFRAGMENTED_PAYLOAD) -> bool:
    return payload_len > limit


def split(payload: bytes, size: int = FRAGMENT_PAYLOAD) -> list[Fragment]:
    """``payload`` as blocks of ``size`` bytes (the last shorter); at most 255 blocks."""
    if size <= 0:
        raise FragmentationError(f"block size must be positive, got {size}")
    count = max(1, -(-len(payload) // size))
    if count > 0xFF:
        raise FragmentationError(f"a payload of {len(payload)} bytes needs {count} blocks of {size}; APS allows 255")
    return [Fragment(i, count, payload[i * size:(i + 1) * size]) for i in range(count)]


def parse_extended_header(data: bytes, count_hint: int | None = None) -> tuple[int, int | None]:
    """(block index, block count or None) from an extended header; count is only in the first."""
    if len(data) < 2:
        raise FragmentationError(f"APS extended header needs 2 bytes, got {len(data)}")
    kind = data[0] & 0x03
    if kind == FIRST_FRAGMENT:
        return 0, data[1]
    if kind == LATER_FRAGMENT:
        return data[1], count_hint
    raise FragmentationError(f"APS extended frame control 0x{data[0]:02X} is not a fragment")


@dataclass(slots=True)
class _Partial:
    count: int
    blocks: dict[int, bytes] = field(default_factory=dict)
    started: float = 0.0


@dataclass
class Reassembler:
    """Collects blocks per (sender, APS counter); a message whose blocks do not all arrive
    within ``timeout_s`` is dropped (apsFragmentationTimeout)."""

    timeout_s: float = 10.0
    _partial: dict[tuple[int, int], _Partial] = field(default_factory=dict)
    _oldest: float = math.inf
    """No partial message here started before this (a lower bound): :meth:`_expire` looks at
    them all only when one may be stale, not on every block (dozens are in flight under load)."""

    def add(self, sender: int, aps_counter: int, fragment: Fragment, now: float = 0.0) -> bytes | None:
        """The whole payload once its last missing block arrives, else None (duplicates ignored)."""
        self._expire(now)
        if not 0 <= fragment.index < fragment.count:
            raise FragmentationError(f"block {fragment.index} of {fragment.count} from {sender:#x}")
        key = (sender, aps_counter & 0xFF)
        partial = self._partial.get(key)
        if partial is None or partial.count != fragment.count:
            partial = self._partial[key] = _Partial(fragment.count, started=now)
            if now < self._oldest:
                self._oldest = now
        partial.blocks.setdefault(fragment.index, fragment.data)
        if len(partial.blocks) < partial.count:
            return None
        del self._partial[key]
        return b"".join(partial.blocks[i] for i in range(partial.count))

    def add_block(self, block: ApsFragment, now: float = 0.0) -> bytes | None:
        """:meth:`add` for a block as it came off the air (unsecured). A later block carries
        only its number, so its count comes from the message's first block; a later block
        with no first block before it cannot be placed and is dropped (None)."""
        self._expire(now)
        key = (block.src, block.aps_counter & 0xFF)
        partial = self._partial.get(key)
        index, count = parse_extended_header(block.extended_header, None if partial is None else partial.count)
        if count is None:
            return None
        return self.add(block.src, block.aps_counter, Fragment(index, count, block.body), now)

    def pending(self) -> int:
        return len(self._partial)

    def _expire(self, now: float) -> None:
        if not self._partial or now - self._oldest <= self.timeout_s:
            return
        stale = [key for key, p in self._partial.items() if now - p.started > self.timeout_s]
        for key in stale:
            del self._partial[key]
        self._oldest = min((p.started for p in self._partial.values()), default=math.inf)
