"""RadioChannel.block_exchanges draws what unicast draws, frame for frame (docs/radio-model.md).

The per-frame reference below sends the same Image Block Requests and Responses through
``unicast`` one by one, the next frame at the time the previous one lands; the busy period must
give the same times to the last bit, leave the channel in the same state (random stream, busy
time, statistics), and hand the frame it stopped at to the per-frame send.
"""

from __future__ import annotations

import dataclasses

import pytest

from emulator.han.packet import OTA_CLUSTER, ApsPacket
from emulator.han.radio import BurstLoss, LinkResult, RadioChannel, RadioParams
from emulator.ota import codec
from emulator.ota.frames import ImageBlockRequest, ImageBlockResponse, Status

CLIENT, SERVER = 0x00DB0000000001A4, 0x00DB0000000001A2
REQUEST = codec.encode(ImageBlockRequest(0, 0x121D, 0x84, 0xACDCACDD, 0, 40), tsn=1, direction=0)
RESPONSE = codec.encode(ImageBlockResponse(Status.SUCCESS, 0x121D, 0x84, 0xACDCACDD, 0, bytes(40)), tsn=1,
                        direction=1)


def _packet(src: int, dst: int, payload: bytes) -> ApsPacket:
    return ApsPacket(src, dst, 0x1101 if src == CLIENT else 0, 0 if src == CLIENT else 0x1101, payload,
                     cluster=OTA_CLUSTER)


def _per_frame(channel: RadioChannel, now: float, count: int,
               horizon: float) -> tuple[int, float, float | None, LinkResult | None]:
    """(exchanges done, when the next request goes out, when it lands or None, the result of
    the frame that stopped the period or None)."""
    sent, done = now, 0
    while True:
        request = channel.unicast(_packet(CLIENT, SERVER, REQUEST), sent)
        landed = sent + (0.0 + request.delay)
        if not (request.delivered and request.confirmed) or landed >= horizon:
            return done, sent, None, request
        if done >= count:
            return done, sent, landed, None
        answer = channel.unicast(_packet(SERVER, CLIENT, RESPONSE), landed)
        answered = landed + (0.0 + answer.delay)
        if not (answer.delivered and answer.confirmed) or answered >= horizon:
            return done, sent, landed, answer
        done += 1
        sent = answered


@pytest.mark.parametrize("params", [
    RadioParams(), RadioParams(loss=0.05), RadioParams(aps_ack=False, loss=0.01),
    RadioParams(loss=0.01, burst=BurstLoss(mean_good_s=2.0, mean_bad_s=0.5, loss_bad=0.9)),
], ids=["loss-free", "lossy", "no-aps-ack", "burst"])
@pytest.mark.parametrize("horizon", [0.8, 1e9])
def test_busy_period_equals_frames_one_by_one(params: RadioParams, horizon: float) -> None:
    reference, batched = RadioChannel(params, seed=5), RadioChannel(params, seed=5)
    now, count = 3.0, 150
    for _ in range(6):  # several periods back to back, each resuming where the last stopped
        done, sent, lands, stopped = _per_frame(reference, now, count, now + horizon)
        period = batched.block_exchanges(CLIENT, SERVER, len(REQUEST), len(RESPONSE), now, count, now + horizon, 0.0)
        assert (period.done, period.sent, period.request_lands) == (done, sent, lands)
        if stopped is not None:
            # The frame that stopped the period: its per-frame send gets the draw already made.
            frame = _packet(CLIENT, SERVER, REQUEST) if lands is None else _packet(SERVER, CLIENT, RESPONSE)
            assert batched.unicast(frame, sent if lands is None else lands) == stopped
        else:
            assert batched._carried is None
        assert batched._rng.getstate() == reference._rng.getstate()
        assert batched._busy_until == reference._busy_until
        assert dataclasses.asdict(batched.stats) == dataclasses.asdict(reference.stats)
        now = (sent if lands is None else lands) + 0.5
        count = 40  # a short one next


def test_a_carried_draw_used_by_another_frame_is_an_error() -> None:
    channel = RadioChannel(RadioParams(), seed=1)
    channel.carry(1.0, CLIENT, SERVER, len(REQUEST), LinkResult(True, 0.01, True, 0.02))
    with pytest.raises(RuntimeError, match="fast path left a draw"):
        channel.unicast(_packet(SERVER, CLIENT, RESPONSE), 1.0)
