"""The fast path gives the per-frame results exactly (docs/fleet.md, "Fast path").

Each test runs the same small fleet twice, with the fast path and with ``per_frame=True``, and
compares every device's result (outcome, reason, duration to the last bit) and the results
digest; each also checks that the fast path really advanced block exchanges, so a fast path
that silently stepped aside everywhere would fail here.
"""

from __future__ import annotations

import json

import pytest

from emulator.cli import main
from emulator.devices.device import EmulatedDevice
from emulator.han.radio import RadioChannel
from emulator.han.virtual import VirtualHan
from emulator.hub.comms_hub import CommsHub
from emulator.ota.client import ClientProfile
from emulator.runtime.clock import PremisesClock, VirtualClock
from emulator.runtime.events import Event, EventBus

from emulator.fleet.run import run_fleet
from emulator.fleet.shard import DeviceResult, Shard
from emulator.fleet.spec import DeviceMix, FleetSpec, ImageSource, resolve_image
from emulator.faults import FAULTS
from emulator.gbcs.codes import DeviceType
from emulator.han.radio import BurstLoss, RadioParams
from emulator.ota.fastpath import OtaFastPath


def _run(spec: FleetSpec) -> tuple[list[DeviceResult], int]:
    """The shard's results and how many block exchanges segments advanced."""
    shard = Shard(spec, range(spec.premises))
    results = shard.run().results
    advanced = 0
    for site in shard.system.premises.values():
        fast = site.han.fast_path
        if isinstance(fast, OtaFastPath):
            advanced += fast.exchanges
    return results, advanced


def _same_both_ways(spec: FleetSpec) -> int:
    fast, advanced = _run(spec)
    slow, none = _run(spec.with_(per_frame=True))
    assert none == 0
    assert [r.to_dict() for r in fast] == [r.to_dict() for r in slow]
    assert [r.duration_s for r in fast] == [r.duration_s for r in slow]  # to the last bit
    return advanced


def test_clean_radio_channel(small_fleet: FleetSpec) -> None:
    advanced = _same_both_ways(small_fleet.with_(premises=3))
    assert advanced > 3 * 500  # most of each 616-block transfer


@pytest.mark.parametrize("radio", [
    RadioParams(loss=0.05),
    RadioParams(loss=0.02, burst=BurstLoss(mean_good_s=4.0, mean_bad_s=1.0, loss_bad=0.9)),
    RadioParams(loss=0.01, aps_ack=False, max_frame_retries=1),
], ids=["lossy", "burst", "lossy-no-aps-ack"])
def test_lossy_and_burst_channels(small_fleet: FleetSpec, radio: RadioParams) -> None:
    advanced = _same_both_ways(small_fleet.with_(premises=3, radio=radio))
    assert advanced > 300


def test_fixed_latency_han(small_fleet: FleetSpec) -> None:
    assert _same_both_ways(small_fleet.with_(premises=2, radio=None)) > 2 * 500


def test_multi_device_premises_share_the_channel(small_fleet: FleetSpec, ppmid_source: ImageSource) -> None:
    esme = resolve_image("esme", DeviceType.ESME)
    spec = small_fleet.with_(premises=2, images=(ppmid_source, esme),
                             devices=(DeviceMix(DeviceType.PPMID), DeviceMix(DeviceType.ESME)),
                             radio=RadioParams(loss=0.02))
    assert _same_both_ways(spec) > 0


def test_every_catalogue_fault_beside_clean_premises(small_fleet: FleetSpec) -> None:
    names = sorted(FAULTS)
    share = 60.0 / len(names)  # 40 % of the devices stay clean and take the fast path
    spec = small_fleet.with_(premises=24, faults={name: share for name in names}, radio=RadioParams(loss=0.01))
    assert _same_both_ways(spec) > 0


def test_same_digest_with_one_and_two_workers(small_fleet: FleetSpec) -> None:
    spec = small_fleet.with_(premises=4, faults={"first_request_lost": 25.0}, radio=RadioParams(loss=0.02))
    digests = {run_fleet(s, workers=w, chunk=1).summary()["results_digest"]
               for s in (spec, spec.with_(per_frame=True)) for w in (1, 2)}
    assert len(digests) == 1


def _premises_timeline(image: bytes, radio: RadioParams, response_timeout_s: float,
                       fast: bool) -> tuple[list[tuple[float, str, str]], int]:
    """One hub and one PPMID on a radio channel; every timeline event (time to the last bit,
    name, fields) and how many exchanges the fast path advanced."""
    clock = VirtualClock()
    bus = EventBus(clock)
    local = PremisesClock(clock)
    events: list[Event] = []
    bus.subscribe(events.append)
    han = VirtualHan(local, seed=3, latency=0.0, link=RadioChannel(radio, seed=5))
    hub = CommsHub(0xA2, han.attach(0xA2, 0x0000), local, bus)
    hub.add_image(image)
    profile = ClientProfile(0x121D, 0x84, 0xACDC0001, 0x1200, max_data_size=64, response_timeout_s=response_timeout_s)
    device = EmulatedDevice(0xA4, DeviceType.PPMID, profile, han.attach(0xA4, 0x1234), local, bus, hub_eui64=0xA2)
    fast_path = OtaFastPath(han, local, hub, {0xA4: device})
    if fast:
        han.fast_path = fast_path
    device.start()
    clock.run(until=3600)
    return [(e.time, e.event, repr(sorted(e.fields.items()))) for e in events], fast_path.exchanges


@pytest.mark.parametrize("loss", [0.0, 0.1], ids=["loss-free", "lossy"])
def test_segments_run_through_the_response_timer_but_not_past_its_expiry(ppmid_source: ImageSource,
                                                                        loss: float) -> None:
    """A response timer barely longer than an exchange: segments still run through it (each
    response re-arms it), and the responses that come too late time out exactly as per frame."""
    radio = RadioParams(loss=loss)
    timeout = 0.032 if loss else 0.02
    fast, advanced = _premises_timeline(ppmid_source.data, radio, timeout, fast=True)
    slow, _ = _premises_timeline(ppmid_source.data, radio, timeout, fast=False)
    assert fast == slow
    names = [name for _, name, _ in slow]
    assert "response_timeout" in names and "transfer_completed" in names
    assert advanced > len(ppmid_source.data) // 64 // 2  # most exchanges, despite a timer every few ms


def test_a_trace_hook_makes_the_premises_run_per_frame(small_fleet: FleetSpec) -> None:
    shard = Shard(small_fleet.with_(premises=1), range(1))
    site = next(iter(shard.system.premises.values()))
    frames: list[str] = []
    site.han.add_trace_hook(lambda direction, packet: frames.append(direction))
    shard.run()
    assert site.han.fast_path.exchanges == 0
    assert len(frames) > 2 * 616  # the hook saw every request and every block


def test_cli_per_frame_gives_the_same_summary(capsys: pytest.CaptureFixture[str]) -> None:
    summaries = []
    for extra in ([], ["--per-frame"]):
        code = main(["fleet", "--premises", "2", "--image", "ppmid", "--seed", "5", "--loss", "0.02",
                     "--workers", "1", "--json", *extra])
        assert code == 0
        summary = json.loads(capsys.readouterr().out.splitlines()[-1])
        assert summary["event"] == "fleet_summary"
        summaries.append({k: v for k, v in summary.items() if k not in ("wall_s", "exchanges_per_wall_s")})
    assert summaries[0] == summaries[1]


def test_fragmented_gbcs_tunnel_traffic_on_a_lossy_channel(ppmid_source: ImageSource) -> None:
    """The ESME's tunnelled GBCS messages go in APS blocks (docs/radio-model.md, "APS
    fragmentation"), between the fast path's segments; the results stay the per-frame ones."""
    esme = resolve_image("esme", DeviceType.ESME)
    spec = FleetSpec(premises=2, images=(ppmid_source, esme), seed=7, duration_s=20_000.0,
                     devices=(DeviceMix(DeviceType.PPMID), DeviceMix(DeviceType.ESME)), radio=RadioParams(loss=0.2))
    fragmented = []
    for per_frame in (False, True):
        shard = Shard(spec.with_(per_frame=per_frame), range(spec.premises))
        shard.run()
        fragmented.append([(site.han.messages_fragmented, site.han.fragmented_failed)
                           for site in shard.system.premises.values()])
    assert fragmented[0] == fragmented[1] and all(sent > 0 for sent, _ in fragmented[0])
    assert _same_both_ways(spec) > 0
