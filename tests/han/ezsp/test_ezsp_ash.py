"""ASH codec and NCP state machine, checked against bellows' host-side codec (independent)."""

from __future__ import annotations

import bellows.ash as host_ash
import bellows.types as bt
from hypothesis import given
from hypothesis import strategies as st

from emulator.han.ezsp.ash import (
    Ack, AshDecoder, CorruptFrame, Data, Nak, NcpAsh, ResetCode, Rst, RstAck, encode_frame, randomise,
)
from emulator.runtime.clock import VirtualClock

# Golden bytes from UG101 (Silicon Labs, "UART-EZSP Gateway Protocol Reference") examples.
GOLDEN = [
    (Rst(), bytes.fromhex("c038bc7e")),
    (RstAck(ResetCode.SOFTWARE), bytes.fromhex("c1020b0a527e")),
    (Ack(ack_num=1), bytes.fromhex("8160597e")),
    (Nak(ack_num=6), bytes.fromhex("a634dc7e")),
    # 'version' in legacy framing asking for v4: seq 0, frame control 0, id 0, desired 4
    (Data(frm_num=0, ack_num=0, re_tx=False, payload=bytes.fromhex("00000004")),
     bytes.fromhex("004221a850ed2c7e")),
]


def _host_parse(wire: bytes):
    assert wire.endswith(b"\x7e")
    return host_ash.parse_frame(host_ash.AshProtocol._unstuff_bytes(wire[:-1]))


def test_golden_frames_encode_and_bellows_agrees() -> None:
    for frame, wire in GOLDEN:
        assert encode_frame(frame) == wire, frame
        parsed = _host_parse(wire)
        if isinstance(frame, Data):
            assert (parsed.frm_num, parsed.ack_num, bool(parsed.re_tx), parsed.ezsp_frame) == (
                frame.frm_num, frame.ack_num, frame.re_tx, frame.payload)
        else:
            assert type(parsed).__name__.lower().startswith(type(frame).__name__.lower()[:3])


def test_decoder_reads_bellows_frames() -> None:
    frames = [
        host_ash.RstFrame(),
        host_ash.AckFrame(res=0, ncp_ready=0, ack_num=5),
        host_ash.NakFrame(res=0, ncp_ready=0, ack_num=2),
        host_ash.DataFrame(frm_num=3, re_tx=True, ack_num=4, ezsp_frame=bytes(range(0x7A, 0x80))),
    ]
    wire = b"".join(host_ash.AshProtocol._stuff_bytes(f.to_bytes()) + b"\x7e" for f in frames)
    decoded = AshDecoder().feed(wire)
    assert decoded == [Rst(), Ack(5), Nak(2), Data(3, 4, True, bytes(range(0x7A, 0x80)))]


@given(
    frm=st.integers(0, 7), ack=st.integers(0, 7), re_tx=st.booleans(),
    payload=st.binary(min_size=3, max_size=128),
)
def test_data_round_trip_through_bellows(frm: int, ack: int, re_tx: bool, payload: bytes) -> None:
    wire = encode_frame(Data(frm, ack, re_tx, payload))
    parsed = _host_parse(wire)
    assert (parsed.frm_num, parsed.ack_num, bool(parsed.re_tx), parsed.ezsp_frame) == (frm, ack, re_tx, payload)
    host_wire = host_ash.AshProtocol._stuff_bytes(
        host_ash.DataFrame(frm_num=frm, re_tx=re_tx, ack_num=ack, ezsp_frame=payload).to_bytes()
    ) + b"\x7e"
    assert AshDecoder().feed(host_wire) == [Data(frm, ack, re_tx, payload)]


def test_randomisation_is_its_own_inverse_and_matches_lfsr() -> None:
    assert randomise(bytes(5)) == bytes([0x42, 0x21, 0xA8, 0x54, 0x2A])
    assert randomise(randomise(b"hello")) == b"hello"


def test_corrupt_crc_and_cancel_are_reported_not_raised() -> None:
    bad = bytearray(encode_frame(Data(0, 0, False, b"\x01\x02\x03")))
    bad[-2] ^= 0xFF
    decoded = AshDecoder().feed(bytes(bad))
    assert isinstance(decoded[0], CorruptFrame) and decoded[0].looks_like_data and "CRC" in decoded[0].reason
    assert AshDecoder().feed(b"\x12\x34\x1a" + encode_frame(Rst())) == [Rst()]  # CANCEL voids junk


class _Link:
    """The NCP engine with a recording serial line, in virtual time."""

    def __init__(self) -> None:
        self.clock = VirtualClock()
        self.wire = AshDecoder()
        self.sent: list = []
        self.delivered: list[bytes] = []
        self.resets = 0
        self.ncp = NcpAsh(self.clock, self._write, self.delivered.append, self._reset)

    def _write(self, data: bytes) -> None:
        self.sent += self.wire.feed(data)

    def _reset(self) -> None:
        self.resets += 1

    def host(self, frame, *, corrupt: bool = False) -> None:
        self.ncp.receive(encode_frame(frame, corrupt_crc=corrupt))

    def take(self) -> list:
        out, self.sent = self.sent, []
        return out


def _connected() -> _Link:
    link = _Link()
    link.ncp.start()
    assert link.take() == [RstAck(ResetCode.POWER_ON)]
    return link


def test_rst_is_answered_with_rstack_and_resets_upper_layer() -> None:
    link = _connected()
    link.host(Rst())
    assert link.take() == [RstAck(ResetCode.SOFTWARE)]
    assert link.resets == 1


def test_data_is_acked_delivered_once_and_out_of_sequence_naked() -> None:
    link = _connected()
    link.host(Data(0, 0, False, b"abc"))
    assert link.take() == [Ack(1)] and link.delivered == [b"abc"]
    link.host(Data(0, 0, True, b"abc"))  # a retransmission of what we have: ack, do not deliver
    assert link.take() == [Ack(1)] and link.delivered == [b"abc"]
    link.host(Data(5, 0, False, b"xyz"))
    assert link.take() == [Nak(1)] and link.delivered == [b"abc"]
    link.host(Data(1, 0, False, b"def"), corrupt=True)
    assert link.take() == []  # already in the reject condition: one NAK is enough
    link.host(Data(1, 0, True, b"def"))
    assert link.take() == [Ack(2)] and link.delivered == [b"abc", b"def"]


def test_window_of_one_and_retransmission_on_nak_and_timeout() -> None:
    link = _connected()
    link.ncp.send(b"one")
    link.ncp.send(b"two")
    assert link.take() == [Data(0, 0, False, b"one")]  # "two" waits for the ACK
    link.host(Nak(0))
    assert link.take() == [Data(0, 0, True, b"one")]
    link.clock.advance(link.ncp.t_rx_ack + 0.01)
    assert link.take() == [Data(0, 0, True, b"one")]
    link.host(Ack(1))
    assert link.take() == [Data(1, 0, False, b"two")]


def test_corrupt_tx_fault_sends_bad_crc_then_clean_retransmission() -> None:
    link = _connected()
    link.ncp.faults.corrupt_tx = 1
    link.ncp.send(b"frame")
    first = link.take()
    assert isinstance(first[0], CorruptFrame)
    link.host(Nak(0))
    assert link.take() == [Data(0, 0, True, b"frame")]


def test_unacknowledged_frames_end_in_error() -> None:
    link = _connected()
    link.ncp.send(b"lost")
    link.clock.advance(60)
    frames = link.take()
    assert frames[-1].__class__.__name__ == "Error"
    assert frames[-1].reset_code == bt.NcpResetCode.ERROR_EXCEEDED_MAXIMUM_ACK_TIMEOUT_COUNT
