"""Scenarios name faults of the fleet's catalogue and use the radio model; bad values are one
clear line naming the key."""

from __future__ import annotations

import pytest

from emulator.runtime.events import EventCollector
from emulator.scenario.ezsp_sim import EzspSimRadios
from emulator.scenario.runner import RadioScenarioRun, ScenarioRun
from emulator.scenario.spec import ScenarioError, parse_scenario

PPMID = "00-DB-12-34-56-78-90-A4"
PPMID_ID = 0x00DB1234567890A4


def play(data: dict, devices: list | None = None):
    data = {"settle_s": 300, "premises": [{"template": "default", "devices": devices or []}],
            "requests": [{"sr": "11.4", "at_s": 5, "devices": [PPMID], "image": "ppmid"}], **data}
    collector = EventCollector()
    run = ScenarioRun(parse_scenario(data, source="faults.toml"), observers=[collector])
    result = run.run()
    return run, result, collector


def dcc_alerts(collector: EventCollector) -> list[str]:
    return [e.fields["alert"] for e in collector.named("dcc_alert")]


def test_a_device_fault_by_catalogue_name_fails_the_transfer_as_the_catalogue_says():
    _, _, clean = play({})
    assert "N49" in dcc_alerts(clean)
    _, _, faulty = play({}, [{"eui64": PPMID, "faults": ["invalid_image_at_end"]}])
    assert "N62" in dcc_alerts(faulty) and "N49" not in dcc_alerts(faulty)
    (alert,) = [e for e in faulty.named("device_alert", PPMID_ID) if e.fields.get("alert") == "0x8F89"]
    assert alert.fields["reason"] == "INVALID_IMAGE"


def test_a_mid_transfer_fault_reboots_the_device_and_the_transfer_resumes():
    _, _, events = play({}, [{"eui64": PPMID, "faults": ["reboot_mid_transfer"]}])
    (off,) = events.named("power_off", PPMID_ID)
    assert off.fields["offset"] > 0
    assert events.named("firmware_activated", PPMID_ID) and "N49" in dcc_alerts(events)


def test_a_server_fault_leaves_the_device_unanswered():
    _, _, events = play({}, [{"eui64": PPMID, "faults": ["server_silent_on_query"]}])
    assert events.named("query_unanswered", PPMID_ID)
    assert not events.named("download_started", PPMID_ID)


def test_air_faults_act_only_after_the_service_request():
    _, _, clean = play({})
    _, _, lossy = play({}, [{"eui64": PPMID, "faults": ["first_request_lost"]}])
    first = [e.time for e in clean.named("firmware_activated", PPMID_ID)]
    late = [e.time for e in lossy.named("firmware_activated", PPMID_ID)]
    assert first and late and late[0] > first[0]  # the lost request cost a retry
    before = [e.event for e in lossy.events if e.time < 5 and e.device == PPMID_ID]
    assert "query_answered" in before  # the first query, before the SR, was not dropped


def test_the_radio_model_loses_frames_and_mac_retries_recover():
    run, result, events = play({"radio": {"loss": 0.2}})
    # The scenario states no expectations (a run that checks nothing does not pass); it completes.
    assert result.requests_sent == result.requests_total and not result.violated and "N49" in dcc_alerts(events)
    stats = run.system.premises["PREMISES-0001"].han.link.stats
    assert stats.attempts_lost > 0 and stats.attempts > stats.frames


@pytest.mark.parametrize("data, message", [
    ({"premises": [{"template": "default", "devices": [{"eui64": PPMID, "faults": ["nope"]}]}]},
     "faults.toml: premises[0].devices[0].faults[0]: unknown fault 'nope' (known: aborts_on_duplicate_block, absolute_upgrade_time,"),
    ({"premises": [{"template": "default", "devices": [
        {"eui64": PPMID, "faults": ["first_request_lost", "first_response_lost"]}]}]},
     "premises[0].devices[0].faults: faults first_request_lost and first_response_lost both set frames"),
    ({"radio": {"model": "wifi"}}, "faults.toml: radio.model: unknown radio model 'wifi' (known: 802.15.4, fixed)"),
    ({"radio": {"loss": "high"}}, "faults.toml: radio.loss: expected float, got 'high'"),
    ({"radio": {"loss": 2.0}}, "faults.toml: radio: loss must be a probability in [0, 1], got 2.0"),
    ({"radio": {"burst": {"mean_bad": 1}}}, "faults.toml: radio.burst.mean_bad: unknown setting (known: loss_bad,"),
    ({"radio": {"bandwidth": 1}}, "faults.toml: radio.bandwidth: unknown setting"),
    ({"ota": {"minimum_block_period_ms": "fast"}}, "faults.toml: ota.minimum_block_period_ms: expected int, got 'fast'"),
    ({"ota": {"upgrade_timing": "soon"}}, "faults.toml: ota.upgrade_timing: 'soon' is not one of"),
    ({"premises": [{"template": "default", "devices": [{"eui64": PPMID, "ota": {"use_page_requests": 1}}]}]},
     "premises[0].devices[0].ota.use_page_requests: expected bool, got 1"),
    ({"csp": {"devices": {PPMID: "N99"}}}, f"faults.toml: csp.devices.{PPMID}: unknown CSP outcome 'N99'"),
    ({"csp": {"devices": {"00-DB": "N19"}}}, "faults.toml: csp.devices.00-DB: EUI-64 '00-DB' must have 8 bytes"),
    ({"csp": {"hubs": {PPMID: {"fail": "yes"}}}}, f"faults.toml: csp.hubs.{PPMID}.fail: expected bool, got 'yes'"),
    ({"csp": {"hubs": {PPMID: {"delay": -1}}}}, f"faults.toml: csp.hubs.{PPMID}.delay: expected a number of seconds"),
    ({"csp": {"check_dealy": 1}}, "faults.toml: csp: unknown key(s) check_dealy"),
])
def test_bad_values_name_the_key(data, message):
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(data, source="faults.toml")
    assert message in str(caught.value)


async def test_the_radio_model_is_refused_on_a_radio_backend():
    scenario = parse_scenario({"radio": {"loss": 0.1}}, source="radio.toml")
    radios = EzspSimRadios()
    with pytest.raises(ScenarioError, match="radio.toml: radio: the radio model is for the virtual HAN only"):
        await RadioScenarioRun(scenario, radios).run()
    assert not radios.ncps  # refused before any dongle started


def test_optional_ota_policy_settings_are_read_from_the_file():
    """``int | None`` and ``float | None`` fields of the server policy can be set (and are checked),
    in the compiled build too (docs/fleet.md: its classes must keep their annotations)."""
    scenario = parse_scenario({"ota": {"max_block_size": 32, "link_lost_after_s": 30, "test_query_status": 0x98}},
                              source="policy.toml")
    policy = scenario.ota_policy
    assert (policy.max_block_size, policy.block_cap, policy.link_lost_after_s, policy.test_query_status) == (
        32, 32, 30.0, 0x98)
    with pytest.raises(ScenarioError, match="policy.toml: ota.max_block_size: expected int, got 'big'"):
        parse_scenario({"ota": {"max_block_size": "big"}}, source="policy.toml")
