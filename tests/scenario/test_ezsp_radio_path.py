"""The scenario runner on the real radio path: each hub on bellows, through the emulated dongle.

Contract: the same scenario gives the same outcome and the same DCC alerts on the virtual HAN
(virtual time) and through bellows + the EZSP dongle emulator (real time), for EZSP 8 and 13;
and a dongle fault in the middle of a transfer is survived.
"""

from __future__ import annotations

import asyncio
import dataclasses
import tomllib

import pytest

from emulator.scenario.ezsp_sim import EzspSimRadios
from emulator.runtime.events import Event, EventCollector
from emulator.scenario.cli import DEMO_SCENARIO
from emulator.scenario.runner import RadioScenarioRun, ScenarioRun
from emulator.scenario.spec import Scenario, load_scenario, parse_scenario

PPMID = "00-DB-12-34-56-78-90-A4"
ESME = "00-DB-12-34-56-78-90-A0"
WALL_LIMIT_S = 60.0
"""A run that hangs fails here instead of stalling CI (a normal run takes a few seconds)."""


def quick_demo() -> Scenario:
    """The built-in demo with the 5 s pauses before 11.3 and 11.2 cut to 0.2 s (wall time)."""
    scenario = load_scenario(DEMO_SCENARIO)
    scenario.requests = [dataclasses.replace(r, delay_s=min(r.delay_s, 0.2)) for r in scenario.requests]
    return scenario


def outcome(events: list[Event]) -> dict[str, object]:
    dicts = [e.to_dict() for e in events]
    return {
        "dcc_alerts": sorted({(e["alert"], e["device"]) for e in dicts if e["event"] == "dcc_alert"}),
        "device_alerts": sorted({(e["alert"], e["device"]) for e in dicts if e["event"] == "device_alert"}),
        "activated": sorted((e["device"], e["firmware_version"], e["via"])
                            for e in dicts if e["event"] == "firmware_activated"),
        "responses": sorted((e["service_reference_variant"], e["device"], e.get("firmware_version"))
                            for e in dicts if e["event"] == "sr_response"),
    }


async def run_on_ezsp(scenario: Scenario, radios: EzspSimRadios, *observers) -> tuple:
    events = EventCollector()
    run = RadioScenarioRun(scenario, radios, observers=[events, *observers])
    result = await asyncio.wait_for(run.run(), WALL_LIMIT_S)
    return result, events.events


@pytest.mark.parametrize("ezsp_version", [8, 13], ids=["ezsp8", "ezsp13"])
async def test_demo_through_bellows_matches_the_virtual_han(ezsp_version: int) -> None:
    virtual_events = EventCollector()
    virtual = ScenarioRun(quick_demo(), observers=[virtual_events]).run()
    radios = EzspSimRadios(ezsp_version=ezsp_version)

    result, events = await run_on_ezsp(quick_demo(), radios)

    assert result.ok and virtual.ok, (result.unmet, result.violated)
    assert result.han == "ezsp-sim"
    assert result.alerts == virtual.alerts
    assert outcome(events) == outcome(virtual_events.events)
    got = outcome(events)
    assert ("N49", PPMID) in got["dcc_alerts"] and ("N60", "00-DB-12-34-56-78-91-A1") in got["dcc_alerts"]
    assert ("11.2", ESME, "ACDCACDD") in got["responses"]
    # every block really crossed bellows and the dongle: one sendUnicast per hub frame
    hub = radios.ncps["PREMISES-0001"]
    assert hub.ezsp_version == ezsp_version
    served = [e for e in events if e.event == "all_blocks_served"]
    assert sum(e.fields["blocks"] for e in served) == 616 + 1232
    assert hub.commands.count("sendUnicast") > 616 + 1232
    # clean shutdown: the dongles are closed and nothing of the run is left on the loop
    assert all(ncp.session is None for ncp in radios.ncps.values())
    assert asyncio.all_tasks() == {asyncio.current_task()}


FAULT_SCENARIO = """
name = "ncp-faults-mid-transfer"
duration_s = 60
[[premises]]
template = "default"
[[premises.devices]]
eui64 = "00-DB-12-34-56-78-90-A4"
type = "PPMID"
ota = { response_timeout_s = 1.0 }
[[requests]]
sr = "11.4"
at_s = 0
devices = ["00-DB-12-34-56-78-90-A4"]
image = "ppmid"
[[expect]]
event = "dcc_alert"
alert = "N49"
device = "00-DB-12-34-56-78-90-A4"
[[expect]]
event = "dcc_alert"
alert = "N62"
result_name = "TRANSFERRED"
"""


async def test_hub_survives_corrupt_frames_naks_and_an_ncp_reset_mid_transfer() -> None:
    radios = EzspSimRadios(ezsp_version=13)
    played: list[str] = []

    def faults(event: Event) -> None:
        if event.event != "transfer_progress":
            return
        ncp = radios.ncps["PREMISES-0001"]
        percent = event.fields["percent"]
        if percent >= 10 and "garble" not in played:
            played.append("garble")
            ncp.faults.corrupt_tx = 3  # bellows NAKs, the NCP retransmits
            ncp.faults.nak_rx = 3  # the NCP NAKs, bellows retransmits
        elif percent >= 40 and "reset" not in played:
            played.append("reset")
            ncp.reset()  # watchdog: bellows loses the link, the hub's transport reconnects

    scenario = parse_scenario(tomllib.loads(FAULT_SCENARIO), source="fault")
    result, events = await run_on_ezsp(scenario, radios, faults)

    assert played == ["garble", "reset"]
    assert result.ok, (result.unmet, result.violated)
    assert result.alerts.get("N62") == 1 and result.alerts.get("N49") == 1
    ncp = radios.ncps["PREMISES-0001"]
    assert ncp.connections == 2  # the reconnection after the reset
    assert ncp.faults.corrupt_tx == 0 and ncp.faults.nak_rx == 0
    completed = [e for e in events if e.event == "transfer_completed"]
    assert len(completed) == 1 and completed[0].fields["bytes_served"] >= 24636
    assert not [e for e in events if e.event in ("transfer_failed", "timed_out")]


def test_run_command_on_ezsp_sim_prints_the_timeline_and_summary(tmp_path, capsys) -> None:
    import json

    from emulator.cli import main

    scenario = tmp_path / "ppmid.toml"
    scenario.write_text(FAULT_SCENARIO.replace("ota = { response_timeout_s = 1.0 }\n", ""))
    code = main(["run", str(scenario), "--han", "ezsp-sim", "--ezsp-version", "8", "--json"])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 0
    summary = lines[-1]
    assert summary["event"] == "scenario_summary" and summary["ok"] is True and summary["han"] == "ezsp-sim"
    assert summary["han_frames"] > 616  # every block crossed the air behind the dongle
    activated = [e for e in lines if e["event"] == "firmware_activated"]
    assert [(e["device"], e["via"]) for e in activated] == [(PPMID, "ota")]
