"""The NCP's EZSP layer seen from the serial line, decoded with bellows' own command tables."""

from __future__ import annotations


import bellows.types as bt
from bellows.ezsp.v8.commands import COMMANDS as V8

from emulator.han.ezsp.ash import AshDecoder, Data, RstAck, encode_frame
from emulator.han.ezsp.ncp import EzspNcp, NcpSession
from emulator.runtime.clock import VirtualClock


class _Wire:
    def __init__(self, version: int = 8) -> None:
        self.ncp = EzspNcp(ezsp_version=version)
        self.ncp.clock = VirtualClock()
        self.decoder = AshDecoder()
        self.frames: list = []
        self.session = NcpSession(self.ncp, lambda data: self.frames.extend(self.decoder.feed(data)))
        self.ncp.session = self.session
        self.session.ash.start()
        self._frm = 0

    def command(self, ezsp: bytes) -> list[bytes]:
        """Send one EZSP frame from the host; return the EZSP frames the NCP answers with."""
        self.frames.clear()
        self.session.ash.receive(encode_frame(Data(self._frm, 0, False, ezsp)))
        self._frm = (self._frm + 1) % 8
        answers: list[bytes] = []
        seen = 0
        while True:  # acknowledge each DATA frame at once, as bellows does, until the NCP is quiet
            self.ncp.clock.run(until=self.ncp.clock.now())
            new = [f for f in self.frames[seen:] if isinstance(f, Data)]
            seen = len(self.frames)
            if not new:
                return answers
            for frame in new:
                answers.append(frame.payload)
                self.session.ash.receive(encode_frame(_ack(frame.frm_num)))


def _ack(frm_num: int):
    from emulator.han.ezsp.ash import Ack

    return Ack((frm_num + 1) % 8)


def _v8(seq: int, name: str, params: bytes = b"") -> bytes:
    return bytes([seq, 0x00, 0x01]) + V8[name][0].to_bytes(2, "little") + params


def test_version_negotiation_then_v8_framing() -> None:
    wire = _Wire(8)
    assert isinstance(wire.frames[0], RstAck)
    (legacy,) = wire.command(bytes([0, 0x00, 0x00, 4]))
    assert legacy[:3] == bytes([0, 0x80, 0x00]) and legacy[3] == 8  # answered in the request's framing
    (v8,) = wire.command(_v8(1, "version", b"\x08"))
    assert v8[:5] == bytes([1, 0x80, 0x01, 0x00, 0x00]) and v8[5] == 8
    (eui,) = wire.command(_v8(2, "getEui64"))
    assert bt.EUI64.deserialize(eui[5:])[0] == bt.EUI64(wire.ncp.dongle.eui64.to_bytes(8, "little"))


def test_commands_before_version_and_unknown_ids_get_invalid_command() -> None:
    wire = _Wire(13)
    (early,) = wire.command(_v8(0, "getEui64"))
    assert early[-1] == bt.EzspStatus.ERROR_VERSION_NOT_SET
    wire.command(bytes([1, 0x00, 0x00, 13]))
    (unknown,) = wire.command(bytes([2, 0x00, 0x01, 0x34, 0x12]))  # frame id 0x1234 does not exist
    assert int.from_bytes(unknown[3:5], "little") == 0x0058 and unknown[5] == bt.EzspStatus.ERROR_INVALID_FRAME_ID


def test_network_init_reports_network_up_as_a_callback() -> None:
    wire = _Wire(8)
    wire.command(bytes([0, 0x00, 0x00, 8]))
    response, callback = wire.command(_v8(1, "networkInit", b"\x00\x00"))
    assert response[5] == bt.EmberStatus.SUCCESS
    assert callback[1] & 0x80 and callback[1] & 0x10  # response direction, asynchronous callback
    assert int.from_bytes(callback[3:5], "little") == V8["stackStatusHandler"][0]
    assert callback[5] == bt.EmberStatus.NETWORK_UP
    assert callback[0] != 2  # never the sequence number the host would wait on next


def test_ezsp_frame_from_the_ncp_direction_is_ignored() -> None:
    wire = _Wire(8)
    assert wire.command(bytes([0, 0x80, 0x00, 8])) == []
