"""A HAN link lost mid-transfer (virtual time): the hub reports it, the device retries within a
bounded time (not its query interval) and resumes at its offset; past the hub's block gap
timeout the User gets the failure alert."""

from __future__ import annotations

import pytest

from emulator.han.packet import OTA_CLUSTER, ApsPacket
from emulator.ota import codec
from emulator.ota.actions import LinkLost, LinkRestored
from emulator.ota.frames import ImageBlockRequest, QueryNextImageRequest
from emulator.runtime.events import EventCollector
from emulator.scenario.injection import LINK_OUTAGE_S
from emulator.scenario.runner import ScenarioRun
from emulator.scenario.spec import ScenarioError, parse_scenario

PPMID = "00-DB-12-34-56-78-90-A4"
PPMID_ID = 0x00DB1234567890A4
HOUR = 3600.0


def play(fault: str, settle_s: float = 2 * HOUR) -> tuple[ScenarioRun, EventCollector, list[tuple[float, object]]]:
    data = {"settle_s": settle_s,
            "premises": [{"template": "default", "devices": [{"eui64": PPMID, "faults": [fault]}]}],
            "requests": [{"sr": "11.4", "at_s": 5, "devices": [PPMID], "image": "ppmid"}]}
    collector = EventCollector()
    run = ScenarioRun(parse_scenario(data, source="outage.toml"), observers=[collector])
    heard: list[tuple[float, object]] = []
    site = run.system.premises["PREMISES-0001"]
    hub_port = site.hub.transport


    def hear(direction: str, packet: ApsPacket) -> None:  # what the hub's radio receives from the device
        if direction == "rx" and packet.cluster == OTA_CLUSTER and packet.src == PPMID_ID:
            heard.append((run.clock.now(), codec.decode(packet.payload).command))

    hub_port.add_trace_hook(hear)
    run.run()
    return run, collector, heard


def test_a_two_minute_outage_is_reported_and_the_transfer_resumes_at_its_offset() -> None:
    run, events, heard = play("link_outage_mid_transfer")
    (lost,) = events.named("han_link_lost", PPMID_ID)
    (restored,) = events.named("han_link_restored", PPMID_ID)
    assert isinstance(lost.outcome, LinkLost) and isinstance(restored.outcome, LinkRestored)
    # the hub noticed within its threshold (15 s of silence), well before its block gap timeout
    assert 15.0 <= lost.fields["silent_s"] < 16.0 and lost.fields["timeout_in_s"] > 500
    # heard again after the outage (120 s), within the device's bounded retry, not its 1 h query interval
    outage = restored.fields["outage_s"]
    assert LINK_OUTAGE_S["link_outage"] <= outage < LINK_OUTAGE_S["link_outage"] + 60
    assert events.named("download_stalled", PPMID_ID), "the device's retries ran out while the link was down"
    # it asked again (Query Next Image) and went on from where it was, not from offset 0
    after = [c for t, c in heard if t >= restored.time]
    assert isinstance(after[0], QueryNextImageRequest)
    first_block = next(c for c in after if isinstance(c, ImageBlockRequest))
    before = [c for t, c in heard if t < lost.time and isinstance(c, ImageBlockRequest)]
    assert before and first_block.file_offset >= before[-1].file_offset
    assert first_block.file_offset == lost.fields["offset"] > 0
    # and completes: the PPMID activates, the User gets N62 (transferred) then N39 and N49
    assert events.named("firmware_activated", PPMID_ID)
    alerts = [e.fields["alert"] for e in events.named("dcc_alert")]
    assert alerts[-3:] == ["N62", "N39", "N49"]


def test_retries_back_off_but_stay_bounded_while_the_link_is_down() -> None:
    from emulator.ota.client import ClientProfile, OtaClient

    client = OtaClient(PPMID_ID, ClientProfile(0x121D, 0x84, 1))
    delays = [client.stall_delay_s() for _ in range(8)]
    assert 8.0 <= delays[0] <= 12.0  # stall_retry_s 10 s, scaled by [0.8, 1.2]
    assert all(b > a for a, b in zip(delays[:4], delays[1:5]))  # doubling
    assert max(delays) <= 300.0 * 1.2  # stall_retry_max_s
    assert max(delays) < client.profile.query_interval_s / 10


def test_an_outage_past_the_block_gap_timeout_ends_with_the_failure_alert() -> None:
    run, events, heard = play("long_link_outage_mid_transfer")
    (lost,) = events.named("han_link_lost", PPMID_ID)
    (timed_out,) = events.named("timed_out", PPMID_ID)
    assert timed_out.fields["phase"] == "download" and timed_out.time - lost.time < 600
    n62 = [e for e in events.named("dcc_alert") if e.fields["alert"] == "N62"]
    assert [(e.fields["alert_code"], e.fields["result_name"]) for e in n62] == [("0x8F89", "TRANSFER_FAILED")]
    assert not events.named("firmware_activated", PPMID_ID)
    # when the link is back the hub no longer offers the image: the device drops its partial download
    aborted = events.named("download_aborted", PPMID_ID)
    assert aborted and aborted[-1].time > lost.time + LINK_OUTAGE_S["long_link_outage"] - 15
    assert run.system.device(PPMID_ID).client.file_offset == 0
    assert run.system.dsp.smi.update_in_progress(PPMID_ID) is None  # free for the next request


def test_a_back_off_that_makes_no_sense_is_one_clear_line() -> None:
    data = {"premises": [{"template": "default", "devices": [{"eui64": PPMID, "ota": {"stall_retry_s": 0}}]}]}
    with pytest.raises(ScenarioError, match="stall_retry_s must be above 0"):
        parse_scenario(data, source="outage.toml")
