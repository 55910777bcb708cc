"""APS fragmentation: blocks, extended headers and reassembly."""

from __future__ import annotations

import pytest

from emulator.han.aps_fragmentation import (
    FRAGMENT_PAYLOAD,
    Fragment,
    FragmentationError,
    Reassembler,
    needs_fragmentation,
    parse_extended_header,
    split,
)

MESSAGE = bytes(range(200))


def test_blocks_carry_the_count_first_then_their_number() -> None:
    blocks = split(MESSAGE)
    assert [len(b.data) for b in blocks] == [FRAGMENT_PAYLOAD] * 3 + [200 - 3 * FRAGMENT_PAYLOAD]
    assert [b.extended_header for b in blocks] == [b"\x01\x04", b"\x02\x01", b"\x02\x02", b"\x02\x03"]
    assert [parse_extended_header(b.extended_header, 4) for b in blocks] == [(0, 4), (1, 4), (2, 4), (3, 4)]
    assert blocks[2].group_id == 0x0402


def test_reassembly_in_any_order_with_duplicates() -> None:
    blocks = split(MESSAGE)
    reassembler = Reassembler()
    assert reassembler.add(0x1234, 7, blocks[2]) is None
    assert reassembler.add(0x1234, 7, blocks[0]) is None
    assert reassembler.add(0x1234, 7, blocks[0]) is None
    assert reassembler.add(0x9999, 7, blocks[1]) is None, "another sender's block is another message"
    assert reassembler.add(0x1234, 7, blocks[1]) is None
    assert reassembler.add(0x1234, 7, blocks[3]) == MESSAGE
    assert reassembler.pending() == 1


def test_an_incomplete_message_is_dropped_after_the_timeout() -> None:
    blocks = split(MESSAGE)
    reassembler = Reassembler(timeout_s=10.0)
    reassembler.add(1, 1, blocks[0], now=0.0)
    assert reassembler.add(1, 2, blocks[0], now=11.0) is None
    assert reassembler.pending() == 1, "the stale message is gone, the new one waits"


def test_limits_and_bad_headers_are_named() -> None:
    assert not needs_fragmentation(82) and needs_fragmentation(83)
    with pytest.raises(FragmentationError, match="255"):
        split(bytes(256 * 2), size=2)
    with pytest.raises(FragmentationError, match="not a fragment"):
        parse_extended_header(b"\x00\x01")
    with pytest.raises(FragmentationError, match="block 5 of 4"):
        Reassembler().add(1, 1, Fragment(5, 4, b""))
