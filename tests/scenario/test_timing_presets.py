"""`--timing realistic`: the DCC side's delays fall inside the ranges of the typed profile (the
ranges docs/dcc.md documents), drawn from seeded streams on the project's clock; `instant` stays
what CI always had. Everything runs in virtual time: no test waits on the wall clock."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from emulator.cli import main
from emulator.dcc.http_api import create_app
from emulator.dcc.timing import DelayKind, DelayRange, SyncAnswerHold, TimingDraws, TimingPreset, TimingProfile
from emulator.runtime.clock import VirtualClock
from emulator.runtime.events import Event, EventBus, EventCollector
from emulator.scenario.runner import ScenarioRun
from emulator.scenario.spec import Scenario, parse_scenario
from emulator.scenario.system import DccSystem

SAMPLES = Path(__file__).resolve().parents[1] / "dcc" / "data" / "duis"
PPMID = "00-DB-12-34-56-78-90-A4"
ESME = "00-DB-12-34-56-78-90-A0"

# An 11.4 to the PPMID, then (long after it has settled) an 11.2 to the ESME. The HAN latency is
# set, so it is the same in both presets and only the DCC side's delays differ between runs.
FLOW = {
    "han": {"latency_s": 0.01},
    "settle_s": 60.0,
    "requests": [
        {"sr": "11.4", "at_s": 0.0, "devices": [PPMID], "image": "ppmid"},
        {"sr": "11.2", "at_s": 20_000.0, "device": ESME},
    ],
}


def _scenario(preset: str, seed: int = 1, **timing: object) -> Scenario:
    return parse_scenario({**FLOW, "seed": seed, "timing": {"preset": preset, **timing}}, source="timing-test")


def _run(scenario: Scenario) -> list[Event]:
    collector = EventCollector()
    ScenarioRun(scenario, observers=[collector]).run()
    return collector.events


def _at(events: list[Event], event: str, source: str | None = None, **fields: object) -> float:
    for ev in events:
        if ev.event == event and (source is None or ev.source == source) and all(
                ev.fields.get(k) == v for k, v in fields.items()):
            return ev.time
    raise AssertionError(f"no {event} {fields} in the timeline")


def _sent(events: list[Event], sr: str) -> float:
    return _at(events, "sr_accepted", service_reference_variant=sr)


def test_wan_delivery_comes_after_the_csp_check_and_the_drawn_transfer_inside_its_range():
    scenario = _scenario("realistic")
    events = _run(scenario)
    profile = scenario.timing.profile
    took = _at(events, "dcc_alert", alert="N61") - _sent(events, "11.4")
    # The same seed draws the same delays: check then transfer (with the CSP's retries).
    draws = TimingDraws(profile, scenario.seed)
    expected = draws.draw(DelayKind.CSP_CHECK) + draws.wan_delivery().delay
    assert abs(took - expected) < 1e-6
    low = profile.csp_check_s.low + profile.wan_delivery_bounds().low
    high = profile.csp_check_s.high + profile.wan_delivery_bounds().high
    assert low <= took <= high
    n59 = _at(events, "dcc_alert", alert="N59") - _sent(events, "11.4")
    assert profile.csp_check_s.contains(n59)  # N59 follows the CSP's verdict


def _response_leg(events: list[Event]) -> float:
    """From the ESME answering the 11.2 to the User's response (HAN to the hub, then the WAN)."""
    return _at(events, "sr_response", service_reference_variant="11.2") - _at(events, "command_response", service="11.2")


def test_alerts_and_responses_cross_the_wan_back_inside_the_upstream_range():
    scenario = _scenario("realistic")
    events = _run(scenario)
    up = scenario.timing.profile.wan_upstream_s
    # The hub's CCS08 alert -> N62 to the User.
    ccs08 = _at(events, "device_alert", source="comms_hub", alert="0x8F8A")
    assert up.contains(_at(events, "dcc_alert", alert="N62") - ccs08)
    # The ESME's 11.2 response: the HAN leg is the same in both presets, the rest is the WAN.
    assert up.contains(_response_leg(events) - _response_leg(_run(_scenario("instant"))))


def test_a_command_reaches_the_device_after_the_drawn_wan_command_time():
    instant, realistic = _run(_scenario("instant")), _run(_scenario("realistic"))
    command = _scenario("realistic").timing.profile.wan_command_s

    def device_answer(events: list[Event]) -> float:
        return _at(events, "command_response", service="11.2") - _sent(events, "11.2")

    # The HAN exchange is the same in both runs (same latency, no loss): the difference is the WAN.
    assert command.contains(device_answer(realistic) - device_answer(instant))
    assert device_answer(realistic) - device_answer(instant) > 0


def test_instant_stays_instant():
    scenario = _scenario("instant")
    events = _run(scenario)
    assert _at(events, "dcc_alert", alert="N61") - _sent(events, "11.4") == scenario.csp_policy.default_wan_delay
    ccs08 = _at(events, "device_alert", source="comms_hub", alert="0x8F8A")
    assert _at(events, "dcc_alert", alert="N62") == ccs08
    # HAN frames only (one per APS block of the response), no WAN time
    frames = round(_response_leg(events) / scenario.han_latency_s)
    assert frames >= 1 and abs(_response_leg(events) - frames * scenario.han_latency_s) < 1e-9
    assert parse_scenario({}, source="default").timing.preset is TimingPreset.INSTANT


def test_same_seed_same_timeline_another_seed_other_delays():
    def timeline(seed: int) -> list[tuple[float, str, object]]:
        return [(e.time, e.event, e.fields.get("alert")) for e in _run(_scenario("realistic", seed))
                if e.source == "dsp"]

    assert timeline(7) == timeline(7)
    assert timeline(7) != timeline(8)


def test_ranges_from_the_timing_table_are_the_ones_drawn_from():
    scenario = _scenario("realistic", csp_check_s=[3, 3], wan_delivery_s=[100, 100], wan_retry_probability=0.0)
    events = _run(scenario)
    assert _at(events, "dcc_alert", alert="N61") - _sent(events, "11.4") == 103.0


def test_every_retry_failing_ends_in_n60_after_the_attempts():
    scenario = _scenario("realistic", wan_retry_probability=0.99, wan_max_retries=1,
                         wan_delivery_s=[10, 20], wan_retry_interval_s=[5, 5])
    events = _run(scenario)
    profile = scenario.timing.profile
    took = _at(events, "dcc_alert", alert="N60") - _sent(events, "11.4")
    assert profile.csp_check_s.low + 2 * 10 + 5 <= took <= profile.csp_check_s.high + 2 * 20 + 5
    assert not [e for e in events if e.fields.get("alert") == "N61"]


def test_draws_stay_inside_the_profile_ranges_for_many_seeds():
    profile = TimingProfile()
    bounds = profile.wan_delivery_bounds()
    retried = 0
    for seed in range(300):
        draws = TimingDraws(profile, seed)
        outcome = draws.wan_delivery()
        assert bounds.contains(outcome.delay)
        retried += outcome.attempts > 1
        for kind, window in ((DelayKind.SYNC_ANSWER, profile.sync_answer_s), (DelayKind.WAN_COMMAND,
                             profile.wan_command_s), (DelayKind.WAN_UPSTREAM, profile.wan_upstream_s)):
            assert window.contains(draws.draw(kind))
        assert profile.han_frame_latency_s.contains(draws.han_frame_latency(seed))
    assert retried  # the CSP's retry is exercised, not only configured


def test_realistic_han_latency_is_drawn_per_premises_unless_the_scenario_sets_it():
    def latency(data: dict) -> float:
        scenario = parse_scenario({**data, "timing": {"preset": "realistic"}}, source="han-test")
        clock = VirtualClock()
        system = DccSystem.from_scenario(scenario, clock, EventBus(clock))
        return next(iter(system.describe().values()))["han"]["latency_s"]

    assert TimingProfile().han_frame_latency_s.contains(latency({}))
    assert latency({"han": {"latency_s": 0.2}}) == 0.2


async def test_sync_answer_is_held_for_the_drawn_time_on_the_clock():
    """serve's front door with the realistic preset, on a virtual clock: the DSP has executed the
    request at once, but the answer leaves only once the clock has passed the drawn time."""
    scenario = _scenario("realistic", csp_check_s=[20, 30])  # the hold is the first timer due
    clock = VirtualClock()
    system = DccSystem.from_scenario(scenario, clock, EventBus(clock))
    assert system.timing is not None
    held = asyncio.Event()
    hold = SyncAnswerHold(clock, system.timing)

    async def observed_hold(response: object) -> None:
        held.set()
        await hold(response)

    app = create_app(system.submit, hold=observed_hold)
    xml = (SAMPLES / "11.4_UPDATE_PPMID_FIRMWARE_REQUEST_DUIS.XML").read_bytes()
    async with TestClient(TestServer(app)) as client:
        reply = asyncio.ensure_future(client.post("/api/v1/serviceD", data=xml,
                                                  headers={"Content-Type": "application/xml"}))
        await asyncio.wait_for(held.wait(), timeout=30)
        assert not reply.done()
        assert system.dsp.smi.update_in_progress(int(PPMID.replace("-", ""), 16)) is not None  # executed
        released_at = clock.next_deadline()
        assert released_at is not None
        clock.run(until=released_at)
        answer = await asyncio.wait_for(reply, timeout=30)
        assert answer.status == 200
        assert b"<sr:ResponseCode>I99</sr:ResponseCode>" in await answer.read()
    expected = TimingDraws(scenario.timing.profile, scenario.seed).draw(DelayKind.SYNC_ANSWER)
    assert abs(released_at - expected) < 1e-9
    assert scenario.timing.profile.sync_answer_s.contains(released_at)


def test_serve_holds_answers_only_with_the_realistic_preset():
    from emulator.scenario.serve import build_service

    async def build(preset: str) -> object:
        service = build_service(_scenario(preset), db=":memory:", journal=None)
        try:
            return service.system.timing
        finally:
            service.close()

    assert asyncio.run(build("instant")) is None
    assert isinstance(asyncio.run(build("realistic")), TimingDraws)


def test_timing_flag_switches_the_preset_and_keeps_the_scenarios_ranges(tmp_path, capsys):
    path = tmp_path / "flow.toml"
    path.write_text('seed = 3\n[han]\nlatency_s = 0.01\n[timing]\nwan_delivery_s = [200, 200]\n'
                    'csp_check_s = [1, 1]\nwan_retry_probability = 0.0\n'
                    '[[requests]]\nsr = "11.4"\nat_s = 0\ndevices = ["00-DB-12-34-56-78-90-A4"]\nimage = "ppmid"\n'
                    '[[expect]]\nevent = "dcc_alert"\nalert = "N49"\n')
    assert main(["run", str(path), "--json"]) == 0
    instant = capsys.readouterr().out
    assert main(["run", str(path), "--json", "--timing", "realistic"]) == 0
    realistic = capsys.readouterr().out

    def n61_time(out: str) -> float:
        return next(event["time"] for event in map(json.loads, out.splitlines()[:-1])
                    if event.get("alert") == "N61")

    assert n61_time(realistic) == 201.0  # csp_check_s + wan_delivery_s from the file
    assert n61_time(instant) == 1.0  # the CSP policy's default_wan_delay


def _run_cli(tmp_path, capsys, timing: str) -> tuple[int, str]:
    path = tmp_path / "bad.toml"
    path.write_text(f"[timing]\n{timing}\n")
    code = main(["run", str(path)])
    return code, capsys.readouterr().err


def test_bad_timing_values_exit_2_naming_the_key(tmp_path, capsys):
    for line, words in (
        ('preset = "fast"', ("timing.preset", "unknown timing preset 'fast'", "realistic")),
        ("wan_delivery_s = [900, 60]", ("timing.wan_delivery_s", "low <= high")),
        ("wan_delivery_s = 60", ("timing.wan_delivery_s", "expected list")),
        ('csp_check_s = [1, "2"]', ("timing.csp_check_s", "expected [low, high]")),
        ("sync_answer_s = [-1, 2]", ("timing.sync_answer_s", "0 <= low")),
        ("wan_retry_probability = 1.5", ("timing.wan_retry_probability", "[0, 1)")),
        ("wan_max_retries = -1", ("timing.wan_max_retries", ">= 0")),
        ("wan_max_retries = 1.5", ("timing.wan_max_retries", "expected int")),
        ("wan_speed = 3", ("timing.wan_speed", "unknown setting")),
    ):
        code, err = _run_cli(tmp_path, capsys, line)
        assert code == 2, line
        assert "Traceback" not in err
        for word in words:
            assert word in err, (line, err)


def test_delay_range_refuses_what_cannot_be_a_range():
    for low, high in ((2.0, 1.0), (-1.0, 1.0), (0.0, float("inf"))):
        try:
            DelayRange(low, high)
        except ValueError:
            continue
        raise AssertionError(f"[{low}, {high}] accepted")
    assert replace(TimingProfile(), wan_max_retries=0).wan_delivery_bounds() == TimingProfile().wan_delivery_s
