"""APS fragmentation on the virtual HAN: a long unicast goes as APS blocks, each a frame of its own
on the radio model (airtime, loss, APS ack, APS retries), reassembled at the receiver; a block
that runs out of retries fails the message (docs/radio-model.md, "APS fragmentation")."""

from __future__ import annotations

import pytest

from emulator.han.aps_fragmentation import FRAGMENT_PAYLOAD, ApsFragment
from emulator.han.fragmented_send import FragmentedDelivery
from emulator.han.link_security import TUNNELING_CLUSTER, ApsLinkSecurity, SecuredApsFragment
from emulator.han.packet import ApsPacket, DeliveryStatus
from emulator.han.radio import RadioChannel, RadioParams
from emulator.han.virtual import VirtualHan, Verdict
from emulator.runtime.clock import VirtualClock

HUB, METER = 0x00DB0000000000A0, 0x00DB0000000000A1
MESSAGE = bytes((7 * i + 3) & 0xFF for i in range(150))  # a tunnelled GBCS message: 3 blocks


class _Air:
    """A HAN with a hub and a meter, what went on the air, and what each end saw."""

    def __init__(self, params: RadioParams | None = None, seed: int = 1) -> None:
        self.clock = VirtualClock()
        self.channel = RadioChannel(params, seed=seed) if params is not None else None
        self.han = VirtualHan(self.clock, link=self.channel)
        self.hub, self.meter = self.han.attach(HUB, 0x0000), self.han.attach(METER, 0x1234)
        self.air: list[ApsPacket] = []
        self.received: list[ApsPacket] = []
        self.reports: list[DeliveryStatus] = []
        self.outcomes: list[FragmentedDelivery] = []
        self.han.add_trace_hook(lambda _d, p: self.air.append(p))
        self.han.add_fragment_listener(self.outcomes.append)
        self.meter.set_receiver(self.received.append)

    def send(self, payload: bytes = MESSAGE, counter: int = 0x42) -> None:
        packet = ApsPacket(HUB, METER, 0x0000, 0x1234, payload, cluster=TUNNELING_CLUSTER, aps_counter=counter)
        self.hub.send(packet, lambda _p, status: self.reports.append(status))
        self.clock.run()


def test_a_long_unicast_goes_as_blocks_of_61_and_arrives_whole() -> None:
    air = _Air(RadioParams())
    air.send()
    assert [type(p) for p in air.air] == [ApsFragment] * 3
    assert [p.extended_header for p in air.air] == [b"\x01\x03", b"\x02\x01", b"\x02\x02"]
    assert [len(p.body) for p in air.air] == [FRAGMENT_PAYLOAD, FRAGMENT_PAYLOAD, 150 - 2 * FRAGMENT_PAYLOAD]
    assert {p.aps_counter for p in air.air} == {0x42}
    assert [p.payload for p in air.received] == [MESSAGE] and type(air.received[0]) is ApsPacket
    assert air.reports == [DeliveryStatus.DELIVERED]
    (outcome,) = air.outcomes
    assert outcome.delivered and outcome.blocks == 3 and outcome.failed_block is None
    assert air.channel is not None
    assert air.channel.stats.frames == 3 and air.channel.stats.aps_acks == 3


def test_a_payload_that_fits_one_frame_goes_whole() -> None:
    air = _Air(RadioParams())
    limit = RadioParams().max_aps_payload
    air.send(MESSAGE[:limit])
    assert [type(p) for p in air.air] == [ApsPacket] and air.outcomes == []
    assert air.han.messages_fragmented == 0


def test_window_one_each_block_after_the_previous_acknowledgement() -> None:
    air = _Air(RadioParams())
    sent: list[float] = []
    air.han.add_trace_hook(lambda _d, _p: sent.append(air.clock.now()))
    air.send()
    assert air.channel is not None and len(sent) == 3
    gaps = [b - a for a, b in zip(sent, sent[1:])]
    # The next block goes when the previous one's report comes: after its data frame at least
    # (blocks sent back to back would leave the port at the same virtual instant).
    assert all(gap >= air.channel.params.airtime(2 + FRAGMENT_PAYLOAD) for gap in gaps)


def test_airtime_of_a_fragmented_message_is_its_blocks_and_their_acks() -> None:
    params = RadioParams(min_be=0)  # no random back-off: every frame costs exactly its exchange time
    air = _Air(params)
    air.send()
    expected = sum(params.mac_exchange_time(len(p.payload)) + params.mac_exchange_time(0) for p in air.air)
    assert air.channel is not None
    assert air.channel.stats.airtime_s == pytest.approx(expected, rel=1e-12)
    # ... which is more than the same bytes in one (impossible) frame would cost: three headers
    assert expected > params.mac_exchange_time(len(MESSAGE)) + params.mac_exchange_time(0)


def _lossy(loss: float, wanted) -> _Air:
    for seed in range(200):
        air = _Air(RadioParams(loss=loss), seed=seed)
        air.send()
        if wanted(air):
            return air
    raise AssertionError(f"no seed in 0..199 gives the case wanted at loss {loss}")


def test_a_lost_block_is_retried_and_the_message_arrives_identical() -> None:
    air = _lossy(0.5, lambda a: a.channel.stats.aps_retries > 0 and a.reports == [DeliveryStatus.DELIVERED])
    assert [p.payload for p in air.received] == [MESSAGE]
    assert air.outcomes[0].delivered
    assert air.channel is not None and air.channel.stats.attempts_lost > 0
    assert len(air.air) == 3  # retries are the radio model's: each block is one frame on the HAN


def test_a_block_that_runs_out_of_retries_fails_the_message() -> None:
    air = _lossy(0.8, lambda a: a.outcomes[0].failed_block == 1)
    (outcome,) = air.outcomes
    assert not outcome.delivered and outcome.acknowledged == 1 and outcome.blocks == 3
    assert air.reports == [DeliveryStatus.FAILED]  # what the sender's higher layer sees
    assert air.received == []  # the receiver never has the whole message
    assert len(air.air) == 2  # window 1: the third block never went
    assert air.channel is not None and air.channel.stats.aps_retries >= air.channel.params.aps_max_retries
    assert air.han.fragmented_failed == 1


def test_fixed_latency_han_sends_blocks_too() -> None:
    air = _Air(None)
    arrived: list[float] = []
    air.meter.set_receiver(lambda p: arrived.append(air.clock.now()))
    air.send()
    assert len(air.air) == 3 and arrived == [pytest.approx(3 * air.han.latency)]


def test_a_dropped_block_on_the_fixed_han_fails_after_the_ack_timeout() -> None:
    air = _Air(None)
    air.han.set_manipulator(lambda p: Verdict(drop=True) if isinstance(p, ApsFragment) and p.payload[0] == 2 else None)
    air.send()
    assert air.reports == [DeliveryStatus.FAILED] and air.received == []
    assert air.outcomes[0].failed_block == 1


def test_each_block_is_secured_on_its_own() -> None:
    air = _Air(RadioParams())
    key = bytes(range(16))
    for port, partner in ((air.hub, METER), (air.meter, HUB)):
        port.security = ApsLinkSecurity(port.eui64)
        port.security.set_key(partner, key)
    air.send()
    assert [type(p) for p in air.air] == [SecuredApsFragment] * 3
    assert [p.extended_header for p in air.air] == [b"\x01\x03", b"\x02\x01", b"\x02\x02"]
    assert all(MESSAGE[:16] not in p.payload for p in air.air)
    assert [p.payload for p in air.received] == [MESSAGE] and air.reports == [DeliveryStatus.DELIVERED]


def test_a_tampered_block_is_refused_and_the_message_never_completes() -> None:
    air = _Air(None)
    key = bytes(range(16))
    for port, partner in ((air.hub, METER), (air.meter, HUB)):
        port.security = ApsLinkSecurity(port.eui64)
        port.security.set_key(partner, key)

    def tamper(p: ApsPacket) -> Verdict | None:
        if isinstance(p, ApsFragment) and p.payload[:2] == b"\x02\x01":
            return Verdict(packet=p._replace(payload=p.payload[:-1] + bytes([p.payload[-1] ^ 1])))
        return None

    air.han.set_manipulator(tamper)
    air.send()
    assert air.received == []
