"""PcapWriter without tshark: FCS, file structure, size limits and misuse."""

from __future__ import annotations

import io
import logging
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulator.han.packet import ApsPacket, DeliveryStatus
from emulator.han.pcap import (
    MAX_PHY_PACKET_SIZE,
    FrameSynthesiser,
    LinkType,
    PcapWriter,
    fcs16,
)
from emulator.han.transport import HanTransport
from emulator.runtime.clock import VirtualClock

HUB = 0x00DB_1234_5678_9000
METER = 0x00DB_1234_5678_90A1


def _packet(payload: bytes = b"\x01\x02\x03", **overrides: object) -> ApsPacket:
    fields: dict[str, object] = dict(src=HUB, dst=METER, src_nwk=0x0000, dst_nwk=0x2B1C, payload=payload)
    fields.update(overrides)
    return ApsPacket(**fields)  # type: ignore[arg-type]


def _records(data: bytes) -> tuple[int, list[tuple[float, bytes]]]:
    """A minimal pcap reader written from the format description, independent of the writer."""
    magic, major, minor, _zone, _sigfigs, _snaplen, link_type = struct.unpack_from("<IHHiIII", data)
    assert (magic, major, minor) == (0xA1B2C3D4, 2, 4)
    records, offset = [], 24
    while offset < len(data):
        sec, usec, incl, orig = struct.unpack_from("<IIII", data, offset)
        assert incl == orig
        offset += 16
        records.append((sec + usec / 1e6, data[offset:offset + incl]))
        offset += incl
    return link_type, records


# -- FCS ---------------------------------------------------------------------------------------

def test_fcs_of_the_acknowledgment_frame_worked_in_ieee_802_15_4():
    # IEEE 802.15.4 (FCS clause): the ack frame 0100 0000 0000 0000 0101 0110 (b0 first), i.e.
    # bytes 02 00 6A, has FCS 0010 0111 1001 1110 (r0 first), i.e. bytes E4 79 on air.
    assert fcs16(bytes([0x02, 0x00, 0x6A])).to_bytes(2, "little") == bytes([0xE4, 0x79])


def test_fcs_is_crc16_kermit():
    assert fcs16(b"123456789") == 0x2189  # the CRC catalogue's check value


@settings(max_examples=200, deadline=None)
@given(
    payload=st.binary(max_size=140),
    dst_nwk=st.integers(0, 0xFFFF),
    src_nwk=st.integers(0, 0xFFF7),
    src=st.integers(1, 2**64 - 1),
    dst=st.integers(0, 2**64 - 1),
    counter=st.integers(0, 255),
)
def test_every_synthesised_frame_checks_against_its_fcs(payload, dst_nwk, src_nwk, src, dst, counter):
    # A received frame, FCS included, leaves a zero remainder: the receiver's check.
    frame = FrameSynthesiser().mac_frame(
        _packet(payload, dst_nwk=dst_nwk, src_nwk=src_nwk, src=src, dst=dst, aps_counter=counter))
    assert fcs16(frame) == 0
    assert frame.endswith(payload + frame[-2:])
    # The IEEE addresses are optional: they never push a frame that would fit over the limit.
    if len(payload) <= MAX_PHY_PACKET_SIZE - 27:
        assert len(frame) <= MAX_PHY_PACKET_SIZE


def test_unicast_frame_bytes():
    frame = FrameSynthesiser(pan_id=0x1A62).mac_frame(_packet(b"\xAA", aps_counter=0x33))
    mhr, nwk_fc = frame[:9], frame[9:11]
    assert mhr == bytes.fromhex("6188 00 621a 1c2b 0000")  # data, ack request, PAN compression
    assert nwk_fc == bytes.fromhex("4818")  # data, version 2, discover route, both IEEE present
    aps = frame[-2 - 9:-2]
    assert aps == bytes.fromhex("00 01 1900 0901 01 33 aa")


def test_broadcast_becomes_a_mac_broadcast_without_ack_request():
    frame = FrameSynthesiser().mac_frame(_packet(dst=0, dst_nwk=0xFFFD))
    fc, _seq, _pan, mac_dst = struct.unpack_from("<HBHH", frame)
    assert mac_dst == 0xFFFF
    assert not fc & 0x0020
    nwk_dst = struct.unpack_from("<H", frame, 11)[0]
    assert nwk_dst == 0xFFFD


def test_without_ieee_option_the_nwk_header_is_short():
    with_ieee = FrameSynthesiser().mac_frame(_packet())
    without = FrameSynthesiser(include_ieee=False).mac_frame(_packet())
    assert len(with_ieee) - len(without) == 16


# -- the file ----------------------------------------------------------------------------------

def test_pcap_file_holds_one_record_per_frame_at_virtual_times(tmp_path: Path):
    clock = VirtualClock()
    path = tmp_path / "han.pcap"
    with PcapWriter(path, clock=clock.now) as writer:
        for delay in (0.0, 0.001, 59.999999, 3600.0):
            clock.advance(delay)
            writer.hook("tx", _packet())
        assert writer.frames_written == 4
    link_type, records = _records(path.read_bytes())
    assert link_type == 195
    assert [ts for ts, _ in records] == pytest.approx([0.0, 0.001, 60.000999, 3660.000999], abs=1e-6)
    assert all(fcs16(frame) == 0 for _, frame in records)


def test_empty_capture_is_a_valid_file(tmp_path: Path):
    path = tmp_path / "empty.pcap"
    PcapWriter(path, clock=lambda: 0.0).close()
    assert _records(path.read_bytes()) == (195, [])


def test_tap_link_type_prefixes_each_frame_with_its_header():
    stream = io.BytesIO()
    with PcapWriter(stream, clock=lambda: 1.0, link_type=LinkType.IEEE802_15_4_TAP) as writer:
        writer.write(_packet())
    link_type, [(_, record)] = _records(stream.getvalue())
    assert link_type == 283
    tap_length = struct.unpack_from("<H", record, 2)[0]
    assert fcs16(record[tap_length:]) == 0


def test_a_stream_is_flushed_and_left_open():
    stream = io.BytesIO()
    writer = PcapWriter(stream, clock=lambda: 5.0)
    writer.write(_packet())
    writer.close()
    assert not stream.closed
    assert len(_records(stream.getvalue())[1]) == 1


def test_records_rx_and_tx_alike_and_rejects_frames_after_close():
    stream = io.BytesIO()
    writer = PcapWriter(stream, clock=lambda: 0.5)
    writer.hook("tx", _packet())
    writer.hook("rx", _packet(src=METER, dst=HUB, src_nwk=0x2B1C, dst_nwk=0))
    writer.close()
    assert writer.closed and writer.frames_written == 2
    with pytest.raises(ValueError, match="closed"):
        writer.hook("tx", _packet())
    writer.close()  # harmless


def test_a_unicast_longer_than_one_frame_is_written_as_aps_blocks():
    stream = io.BytesIO()
    payload = bytes(range(150))
    with PcapWriter(stream, clock=lambda: 0.0) as writer:
        writer.write(_packet(payload))
    assert writer.oversize_frames == 0 and writer.fragmented_messages == 1
    _, records = _records(stream.getvalue())
    assert len(records) == 3 and all(len(frame) <= 127 for _, frame in records)
    # APS frame control 0x40 (ack request) | 0x80 (extended header), then block 0 of 3, 1, 2
    blocks = []
    for _, frame in records:
        aps = frame.index(bytes([0xC0]), 9)  # after the MAC and NWK headers
        blocks.append(frame[aps + 8:aps + 10])
    assert blocks == [bytes([0x01, 3]), bytes([0x02, 1]), bytes([0x02, 2])]


def test_oversize_broadcast_is_written_with_a_warning(caplog: pytest.LogCaptureFixture):
    stream = io.BytesIO()
    with caplog.at_level(logging.WARNING, logger="emulator.han.pcap"):
        with PcapWriter(stream, clock=lambda: 0.0) as writer:
            writer.write(_packet(bytes(120), dst=0, dst_nwk=0xFFFF))
            writer.write(_packet(bytes(10)))
    assert writer.oversize_frames == 1
    (record,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert f"{HUB:016X}" in record.getMessage() and "APS fragmentation" in record.getMessage()


def test_ieee_addresses_are_dropped_before_a_frame_overflows(caplog: pytest.LogCaptureFixture):
    # 100 payload bytes fit in 127 only without the 16 bytes of NWK IEEE addresses.
    stream = io.BytesIO()
    with caplog.at_level(logging.WARNING, logger="emulator.han.pcap"):
        with PcapWriter(stream, clock=lambda: 0.0) as writer:
            writer.write(_packet(bytes(100)))
    assert not caplog.records and writer.oversize_frames == 0
    (_, frame), = _records(stream.getvalue())[1]
    assert len(frame) == MAX_PHY_PACKET_SIZE
    assert struct.unpack_from("<H", frame, 9)[0] & 0x1800 == 0


# -- misuse gets a clear error -----------------------------------------------------------------

def test_out_of_range_packet_field_is_named():
    with PcapWriter(io.BytesIO(), clock=lambda: 0.0) as writer:
        with pytest.raises(ValueError, match=r"00DB1234567890A1: dst_ep=256"):
            writer.write(_packet(src=METER, dst_ep=256))


@pytest.mark.parametrize(
    ("options", "message"),
    [({"channel": 27}, "channel 27"), ({"pan_id": 0xFFFF}, "PAN ID 0xFFFF")],
)
def test_bad_options_are_named(options, message):
    with pytest.raises(ValueError, match=message):
        PcapWriter(io.BytesIO(), clock=lambda: 0.0, **options)


def test_timestamp_before_1970_is_refused():
    with PcapWriter(io.BytesIO(), clock=lambda: 10.0, epoch=-20.0) as writer:
        with pytest.raises(ValueError, match="timestamp -10.0"):
            writer.write(_packet())


def test_unwritable_path_names_the_path(tmp_path: Path):
    missing = tmp_path / "no-such-dir" / "han.pcap"
    with pytest.raises(FileNotFoundError, match="no-such-dir"):
        PcapWriter(missing, clock=lambda: 0.0)


# -- as a trace hook on the HAN boundary -------------------------------------------------------

class _LoopbackTransport(HanTransport):
    def _send(self, packet, on_delivery):
        if on_delivery is not None:
            on_delivery(packet, DeliveryStatus.DELIVERED)


def test_captures_what_a_transport_sends():
    clock = VirtualClock()
    stream = io.BytesIO()
    hub = _LoopbackTransport(HUB, 0x0000)
    with PcapWriter(stream, clock=clock.now) as writer:
        hub.add_trace_hook(writer.hook)
        clock.call_later(12.25, hub.send, _packet())
        clock.run()
    ((when, frame),) = _records(stream.getvalue())[1]
    assert when == pytest.approx(12.25, abs=1e-6)
    assert frame[-6:-2] == bytes([0x00]) + b"\x01\x02\x03"
