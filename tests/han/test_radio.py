"""The radio model: a single upgrade against the analytic bound, loss and retries, bursts,
sleepy polling, a shared channel (docs/radio-model.md)."""

from __future__ import annotations

import pytest
from helpers import build_site, sample

from emulator.dcc.premises import PPMID_ID
from emulator.han.packet import ApsPacket, DeliveryStatus
from emulator.han.radio import BurstLoss, RadioChannel, RadioParams
from emulator.han.virtual import VirtualHan, Verdict
from emulator.ota import codec
from emulator.ota.frames import ImageBlockRequest, ImageBlockResponse, ImagePageRequest, Status
from emulator.runtime.clock import VirtualClock

BLOCK = 40  # the hub's block cap on an APS-secured HAN


def _upgrade(params: RadioParams, seed: int = 1):
    site = build_site((PPMID_ID,), seed=seed)
    channel = RadioChannel(params, seed=seed)
    site.han.set_link_model(channel)
    site.han.latency = 0.0
    site.hub.add_image(sample("PPMID"))
    site.start()
    done = site.run_until("download_complete", PPMID_ID, within=3600)
    return site, channel, done


@pytest.mark.parametrize("aps_ack", [True, False], ids=["aps-acks", "mac-only"])
def test_single_upgrade_matches_the_analytic_duration_within_10_percent(aps_ack: bool) -> None:
    params = RadioParams(aps_ack=aps_ack)
    site, _, done = _upgrade(params)
    size = done.fields["bytes"]
    blocks = -(-size // BLOCK)
    request = len(codec.encode(ImageBlockRequest(0, 0x121D, 0x84, 1, 0, 64), tsn=1, direction=0))
    response = len(codec.encode(ImageBlockResponse(Status.SUCCESS, 0x121D, 0x84, 1, 0, bytes(BLOCK)),
                                tsn=1, direction=1))
    last = size - (blocks - 1) * BLOCK
    analytic = ((blocks - 1) * (params.exchange_time(request) + params.exchange_time(response))
                + params.exchange_time(request) + params.exchange_time(response - BLOCK + last))
    simulated = done.fields["duration_s"]
    assert abs(simulated - analytic) / analytic < 0.10, (simulated, analytic)


def test_aps_acks_are_frames_of_their_own_and_lengthen_the_transfer() -> None:
    _, with_acks, done = _upgrade(RadioParams())
    _, without, bare = _upgrade(RadioParams(aps_ack=False))
    assert with_acks.stats.aps_acks == with_acks.stats.frames  # one for every unicast (no loss)
    assert without.stats.aps_acks == 0
    # Each block exchange carries two more frames (one APS ack each way), each a header-only frame.
    p = RadioParams()
    request, response = 17, 17 + BLOCK
    expected = (p.exchange_time(request) + p.exchange_time(response)) / (
        p.exchange_time(request, aps_ack=False) + p.exchange_time(response, aps_ack=False))
    ratio = done.fields["duration_s"] / bare.fields["duration_s"]
    assert ratio == pytest.approx(expected, rel=0.05)


def _ota(command: codec.Command, tsn: int, direction: int) -> bytes:
    return codec.encode(command, tsn=tsn, direction=direction)


def test_blocks_answering_a_page_request_go_without_aps_ack() -> None:
    """Silicon Labs' OTA server clears the APS retry option on the blocks of a page."""
    channel = RadioChannel(RadioParams(), seed=1)
    hub, device = 1, 2
    page = ImagePageRequest(0, 0x121D, 0x84, 1, 0, 40, 400, 0)
    channel.unicast(_packet(device, hub, _ota(page, tsn=7, direction=0)), 0.0)
    assert channel.stats.aps_acks == 1  # the page request itself is acknowledged
    block = ImageBlockResponse(Status.SUCCESS, 0x121D, 0x84, 1, 0, bytes(BLOCK))
    for i in range(10):
        result = channel.unicast(_packet(hub, device, _ota(block, tsn=7, direction=1)), 1.0 + i)
        assert result.delivered and result.confirmed  # the MAC acknowledgement still confirms it
    assert channel.stats.aps_acks == 1
    request = ImageBlockRequest(0, 0x121D, 0x84, 1, 400, 40)
    channel.unicast(_packet(device, hub, _ota(request, tsn=8, direction=0)), 20.0)
    channel.unicast(_packet(hub, device, _ota(block, tsn=8, direction=1)), 21.0)
    assert channel.stats.aps_acks == 3  # back to block requests: both directions acknowledged


def test_a_missing_aps_ack_is_retried_after_the_ack_wait() -> None:
    params = RadioParams(loss=0.3, max_frame_retries=0)
    channel = RadioChannel(params, seed=5)
    results = [channel.unicast(_packet(1, 2), i * 10.0) for i in range(2_000)]
    assert channel.stats.aps_retries > 0
    late = [r for r in results if r.confirmed and r.confirm_delay > params.aps_ack_wait_s]
    assert late  # confirmed by a later copy's APS ack
    never = [r for r in results if r.delivered and not r.confirmed]
    assert never and all(r.confirm_delay >= params.aps_max_retries * params.aps_ack_wait_s for r in never)
    # more copies on the air than frames: the receiver's duplicates are acknowledged again
    assert channel.stats.aps_acks > sum(r.delivered for r in results)


def test_frame_size_drives_the_duration() -> None:
    slow = RadioParams(bitrate_bps=125_000)
    _, _, fast_done = _upgrade(RadioParams())
    _, _, slow_done = _upgrade(slow)
    assert slow_done.fields["duration_s"] > 1.5 * fast_done.fields["duration_s"]


def test_lossy_channel_retries_at_the_mac_and_the_upgrade_completes() -> None:
    site, channel, done = _upgrade(RadioParams(loss=0.2))
    stats = channel.stats
    assert stats.attempts_lost > 0 and stats.attempts > stats.frames
    assert done.fields["bytes"] == len(sample("PPMID"))
    clean_site, _, clean = _upgrade(RadioParams())
    assert done.fields["duration_s"] > clean.fields["duration_s"]


def _packet(src: int, dst: int, payload: bytes = bytes(20)) -> ApsPacket:
    return ApsPacket(src=src, dst=dst, src_nwk=src & 0xFFFF, dst_nwk=dst & 0xFFFF, payload=payload)


def test_burst_loss_clusters_losses() -> None:
    burst = BurstLoss(mean_good_s=5.0, mean_bad_s=1.0, loss_good=0.0, loss_bad=0.9)
    # One attempt a frame and no APS ack: every loss shows (the loss process itself is tested).
    channel = RadioChannel(RadioParams(burst=burst, max_frame_retries=0, aps_ack=False), seed=3)
    outcomes = []
    t = 0.0
    for _ in range(20_000):
        outcomes.append(not channel.unicast(_packet(1, 2), t).delivered)
        t += 0.05
    loss_rate = sum(outcomes) / len(outcomes)
    expected = burst.bad_fraction * burst.loss_bad
    assert abs(loss_rate - expected) < 0.3 * expected
    after_loss = [b for a, b in zip(outcomes, outcomes[1:]) if a]
    assert sum(after_loss) / len(after_loss) > 2 * loss_rate  # losses come in bursts


def test_independent_loss_does_not_cluster() -> None:
    channel = RadioChannel(RadioParams(loss=0.15, max_frame_retries=0, aps_ack=False), seed=3)
    outcomes = [not channel.unicast(_packet(1, 2), i * 0.05).delivered for i in range(20_000)]
    rate = sum(outcomes) / len(outcomes)
    after_loss = [b for a, b in zip(outcomes, outcomes[1:]) if a]
    assert abs(sum(after_loss) / len(after_loss) - rate) < 0.05


def test_sleepy_device_receives_only_when_it_polls() -> None:
    params = RadioParams(poll_interval_s=7.5)
    channel = RadioChannel(params, seed=1)
    channel.set_sleepy(2)
    first = channel.unicast(_packet(1, 2), 100.0)
    assert first.delivered and first.delay > params.exchange_time(20)
    second = channel.unicast(_packet(1, 2), 100.0 + first.delay + 1.0)
    # the polls fall on a fixed grid: both frames arrive at poll instants of the same phase
    gap = (100.0 + first.delay + 1.0 + second.delay) - (100.0 + first.delay)
    assert gap == pytest.approx(7.5, abs=0.01)
    # after the device transmits it polls fast; the hub's answer, ready before that poll, follows
    # the hub's APS ack in the same poll (frame pending): one fast poll at most for both
    t = 200.0
    channel.unicast(_packet(2, 1), t)
    answer = channel.unicast(_packet(1, 2), t + 0.01)
    assert answer.delay < params.fast_poll_interval_s + 4 * params.exchange_time(20)
    # a frame handed over after the device's last poll waits for the next one on the grid
    late = channel.unicast(_packet(1, 2), t + 0.01 + answer.delay + 0.05)
    assert late.delay > 0.1


def test_the_channel_is_shared_frames_queue() -> None:
    channel = RadioChannel(RadioParams(), seed=1)
    a = channel.unicast(_packet(1, 2), 0.0)
    b = channel.unicast(_packet(3, 1), 0.0)
    assert b.delay > a.confirm_delay  # the second frame waited for the first exchange to end


def test_lost_acknowledgement_delivers_but_reports_failure() -> None:
    clock = VirtualClock()
    han = VirtualHan(clock, link=RadioChannel(RadioParams(), seed=1))
    a, b = han.attach(1, 0x0001), han.attach(2, 0x0002)
    got: list[ApsPacket] = []
    reports: list[DeliveryStatus] = []
    b.set_receiver(got.append)
    han.set_manipulator(lambda p: Verdict(confirm_lost=True))
    a.send(_packet(1, 2), lambda p, s: reports.append(s))
    clock.run()
    assert len(got) == 1 and reports == [DeliveryStatus.FAILED]


def test_fixed_latency_stays_the_default() -> None:
    clock = VirtualClock()
    han = VirtualHan(clock)
    a, b = han.attach(1, 0x0001), han.attach(2, 0x0002)
    times: list[float] = []
    b.set_receiver(lambda p: times.append(clock.now()))
    a.send(_packet(1, 2, bytes(70)))  # one frame (a longer one goes in APS blocks, a latency each)
    clock.run()
    assert times == [han.latency]


def test_bad_parameters_are_named() -> None:
    with pytest.raises(ValueError, match="loss must be a probability"):
        RadioParams(loss=1.5)
    with pytest.raises(ValueError, match="loss_bad"):
        BurstLoss(loss_bad=2.0)
