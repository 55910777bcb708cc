"""One composition root: `run`, `submit`, `serve` and the fleet build the same premises from the
same scenario, with everything the scenario says (HAN, radio model, faults by catalogue name)."""

from __future__ import annotations

from emulator.gbcs.codes import DeviceType
from emulator.fleet.shard import Shard
from emulator.fleet.spec import FleetSpec, read_image
from emulator.runtime.clock import VirtualClock
from emulator.runtime.events import EventBus
from emulator.scenario.runner import ScenarioRun
from emulator.scenario.samples import sample_path
from emulator.scenario.serve import build_service
from emulator.scenario.spec import Scenario, parse_scenario
from emulator.scenario.submit import build_system

HUB = "00-DB-12-34-56-78-90-A2"
ESME = "00-DB-12-34-56-78-90-A0"
GSME = "00-DB-12-34-56-78-90-A1"
PPMID = "00-DB-12-34-56-78-90-A4"

SCENARIO = {
    "seed": 5,
    "han": {"latency_s": 0.002, "loss": 0.01},
    "radio": {"loss": 0.05, "max_frame_retries": 2, "burst": {"mean_good_s": 30, "mean_bad_s": 1}},
    "ota": {"minimum_block_period_ms": 250},
    "premises": [
        {"template": "default", "devices": [
            {"eui64": PPMID, "faults": ["first_request_lost"], "ota": {"max_data_size": 48}},
            {"eui64": ESME, "faults": ["server_silent_on_query", "long_silent_phase"]},
            {"eui64": GSME, "poll_interval_s": 3.0},
        ]},
        {"id": "PREMISES-0002", "comms_hub": "00-DB-00-00-00-00-01-A2", "devices": [
            {"eui64": "00-DB-00-00-00-00-01-A4", "type": "PPMID", "faults": ["sleepy_ignores_notify"]},
        ]},
    ],
}


def built_by_every_command(scenario: Scenario) -> dict[str, dict]:
    """The structural description of what `run`, `submit` and `serve` build from ``scenario``."""
    clock = VirtualClock()
    described = {
        "run": ScenarioRun(scenario).system.describe(),
        "submit": build_system(scenario, clock, EventBus(clock)).describe(),
    }
    return described


async def test_run_submit_and_serve_build_the_same_premises() -> None:
    scenario = parse_scenario(SCENARIO, source="composition.toml")
    described = built_by_every_command(scenario)
    service = build_service(scenario, db=":memory:", journal=None)
    try:
        described["serve"] = service.system.describe()
    finally:
        service.close()
    assert described["submit"] == described["run"]
    assert described["serve"] == described["run"]

    site = described["run"]["PREMISES-0001"]
    assert site["han"]["latency_s"] == 0.002 and site["han"]["loss"] == 0.01
    assert site["radio"]["params"]["loss"] == 0.05 and site["radio"]["params"]["max_frame_retries"] == 2
    assert site["radio"]["params"]["burst"]["mean_good_s"] == 30.0
    assert site["radio"]["sleepy"] == {GSME: 3.0}  # a GSME is sleepy unless told otherwise
    assert site["air_rules"] == {PPMID: "first_request"}
    assert site["hub"]["policy"]["minimum_block_period_ms"] == 250
    assert site["hub"]["device_policies"][ESME]["silent_on_query"] is True
    assert site["devices"][ESME]["profile"]["verify_delay_s"] == 3000.0
    assert site["devices"][PPMID]["profile"]["max_data_size"] == 48
    other = described["run"]["PREMISES-0002"]
    assert other["radio"]["sleepy"] == {"00-DB-00-00-00-00-01-A4": 7.5}  # sleepy by its fault, radio's poll
    assert other["devices"]["00-DB-00-00-00-00-01-A4"]["profile"]["ignore_image_notify"] is True
    assert other["han"]["seed"] != site["han"]["seed"]


async def test_the_fleet_builds_its_wave_as_run_submit_and_serve_build_that_scenario() -> None:
    image = read_image(str(sample_path("PPMID", 0x0084)), DeviceType.PPMID)
    spec = FleetSpec(premises=3, images=(image,), seed=11, duration_s=1000.0,
                     faults={"first_response_lost": 40.0, "server_silent_on_query": 30.0, "burst_radio_loss": 30.0})
    shard = Shard(spec, range(0, 3))
    fleet = shard.system.describe()
    described = built_by_every_command(shard.scenario)
    service = build_service(shard.scenario, db=":memory:", journal=None)
    try:
        described["serve"] = service.system.describe()
    finally:
        service.close()
    for command, built in described.items():
        assert built == fleet, command
    faults = {t.fault.name for t in shard.tracked.values() if t.fault is not None}
    assert faults, "the seed draws no fault: the comparison would not cover them"
