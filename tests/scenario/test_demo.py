"""`ch-emulator demo`: the README's main job."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from emulator.cli import main

PPMID = "00-DB-12-34-56-78-90-A4"
ESME = "00-DB-12-34-56-78-90-A0"


def run_json(capsys, *extra: str) -> tuple[int, list[dict]]:
    code = main(["demo", "--json", *extra])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    return code, lines


def test_ppmid_activates_and_esme_keeps_image_pending_until_11_3(capsys):
    code, events = run_json(capsys)
    assert code == 0
    for event in events:
        assert {"time", "source", "event", "device"} <= event.keys()
        assert re.fullmatch(r"[a-z]+(_[a-z0-9]+)*", event["event"])
    activated = [e for e in events if e["event"] == "firmware_activated"]
    ppmid = [e for e in activated if e["device"] == PPMID]
    assert [e["firmware_version"] for e in ppmid] == ["ACDCACDD"]
    assert re.fullmatch(r"[0-9A-F]{8}", ppmid[0]["firmware_version"])
    assert ppmid[0]["via"] == "ota"  # activated at once on the Upgrade End Response "now"
    # The ESME holds its image until 11.3 activates it.
    pending_at = next(e["time"] for e in events if e["event"] == "waiting_for_upgrade_command" and e["device"] == ESME)
    activate_sent = next(e["time"] for e in events if e["event"] == "sr_sent" and e["sr"] == "11.3")
    (esme,) = [e for e in activated if e["device"] == ESME]
    assert pending_at < activate_sent <= esme["time"] and esme["via"] == "11.3"
    # CCS08 for both transfers, the PPMID's CS09 and the meter's receipt alert
    alerts = {(e["device"], e["alert"]) for e in events if e["event"] == "device_alert"}
    assert {(PPMID, "0x8F8A"), (ESME, "0x8F8A"), (PPMID, "0x8F8B"), (ESME, "0x8F72")} <= alerts
    times = [e["time"] for e in events if e["time"] is not None]
    assert times == sorted(times)
    assert events[-1]["event"] == "scenario_summary" and events[-1]["ok"] is True


def test_demo_plays_every_box_of_the_seed(capsys):
    _, events = run_json(capsys)
    dcc = [(e["alert"], e["device"]) for e in events if e["event"] == "dcc_alert"]
    assert ("N49", PPMID) in dcc and ("N39", PPMID) in dcc
    assert ("N60", "00-DB-12-34-56-78-91-A1") in dcc  # WAN delivery to the second hub fails
    assert ("N61", ESME) in dcc and ("N62", ESME) in dcc
    n59 = [e for e in events if e["event"] == "dcc_alert" and e["alert"] == "N59"]
    assert n59 and all(e["recipient"] != "90-B3-D5-1F-30-01-00-00" for e in n59)  # the other supplier only
    sync = [e for e in events if e["event"] == "sr_accepted" and e["service_reference_variant"] == "11.4"]
    assert sync[0]["rejected"] == {"NotCommissioned": ["00-DB-12-34-56-78-90-A5"]}
    responses = {e["service_reference_variant"]: e for e in events if e["event"] == "sr_response"}
    assert responses["11.2"]["firmware_version"] == "ACDCACDD"


def test_same_seed_same_timeline(capsys):
    _, first = run_json(capsys, "--seed", "7")
    _, second = run_json(capsys, "--seed", "7")
    strip = lambda evs: [{k: v for k, v in e.items() if k != "wall_s"} for e in evs]  # noqa: E731
    assert strip(first) == strip(second)


def test_human_timeline_by_default(capsys):
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "firmware_activated" in out and PPMID in out
    assert "demo: OK" in out


def test_unwritable_capture_is_a_clear_error(capsys, tmp_path):
    code = main(["demo", "--pcap", str(tmp_path / "missing-dir" / "x.pcap")])
    assert code == 2
    err = capsys.readouterr().err
    assert "cannot write capture" in err and "Traceback" not in err


@pytest.mark.tshark
@pytest.mark.skipif(shutil.which("tshark") is None, reason="Wireshark's tshark is not installed")
def test_capture_dissects_as_zigbee_ota_with_the_values_the_timeline_shows(capsys, tmp_path):
    pcap = tmp_path / "demo.pcap"
    code, events = run_json(capsys, "--pcap", str(pcap))
    assert code == 0
    out = subprocess.run(
        ["tshark", "-r", str(pcap), "-Y", "zbee_aps.cluster == 0x0019", "-T", "fields",
         "-e", "frame.time_epoch", "-e", "zbee_zcl_general.ota.cmd.srv_rx.id",
         "-e", "zbee_zcl_general.ota.cmd.srv_tx.id",
         "-e", "zbee_zcl_general.ota.manufacturer_code", "-e", "zbee_zcl_general.ota.image.type",
         "-e", "zbee_zcl_general.ota.file.version", "-e", "zbee_zcl_general.ota.file.offset",
         "-e", "zbee_zcl_general.ota.image.size", "-e", "zbee_aps.profile", "-e", "wpan.fcs_ok"],
        capture_output=True, text=True, check=True,
    ).stdout.splitlines()
    rows = [line.split("\t") for line in out]
    assert len(rows) > 1000
    assert all(r[8] == "0x0109" for r in rows)  # Smart Energy profile
    assert all(r[9] in ("1", "True") for r in rows)  # FCS good
    received = {r[1] for r in rows if r[1]}  # commands the server receives
    sent = {r[2] for r in rows if r[2]}  # commands the server sends
    assert {"0x01", "0x03", "0x06"} <= received
    assert {"0x00", "0x02", "0x05", "0x07"} <= sent
    qnr = [r for r in rows if r[2] == "0x02"]
    sizes = {int(r[7]) for r in qnr if r[7]}
    timeline_sizes = {e["image_size"] for e in events if e["event"] == "query_answered" and "image_size" in e}
    assert sizes == timeline_sizes
    assert {r[3] for r in qnr if r[3]} == {"0x121d"}
    assert {int(r[5], 16) for r in qnr if r[5]} == {0xACDCACDD}
    # the last Upgrade End Response goes out at the time the timeline says the transfer completed
    completed = [e["time"] for e in events if e["event"] == "transfer_completed"]
    uer_times = [float(r[0]) for r in rows if r[2] == "0x07"]
    assert uer_times == pytest.approx(completed, abs=1e-3)
