"""One scenario per branch of the seed diagram, through every layer (DSP, CSP, WAN, hub, HAN,
devices), asserting the exact alert sequence and the SMI and SAT state afterwards."""

from __future__ import annotations

from typing import Any

import pytest

from emulator.dcc.messages import MessageKind
from emulator.dcc.sat import SatEvent
from emulator.dcc.smi import DeviceStatus, FirmwareStatus
from emulator.runtime.events import EventCollector
from emulator.scenario.runner import ScenarioRun
from emulator.scenario.spec import parse_scenario

HUB = "00-DB-12-34-56-78-90-A2"
ESME = "00-DB-12-34-56-78-90-A0"
GSME = "00-DB-12-34-56-78-90-A1"
PPMID = "00-DB-12-34-56-78-90-A4"
IDS = {ESME: 0x00DB1234567890A0, GSME: 0x00DB1234567890A1, PPMID: 0x00DB1234567890A4}
OLD, NEW = 0xACDC0001, 0xACDCACDD
IMPORT, GAS = "90-B3-D5-1F-30-01-00-00", "90-B3-D5-1F-30-02-00-00"


def play(data: dict[str, Any]):
    data.setdefault("premises", [{"template": "default"}])
    data.setdefault("settle_s", 300)
    collector = EventCollector()
    run = ScenarioRun(parse_scenario(data, source="test"), observers=[collector])
    result = run.run()
    return run, result, [e.to_dict() for e in collector.events]


def alerts(run: ScenarioRun) -> list[tuple[str, str, str | None]]:
    """(code, device, recipient) of every alert the DSP sent, in order."""
    out = []
    for m in run.system.messages:
        if m.kind is not MessageKind.RESPONSE:
            device = "-".join(f"{b:02X}" for b in m.device.to_bytes(8, "big")) if m.device is not None else None
            out.append((m.code, device, m.recipient))
    return out


def codes(run: ScenarioRun, device: str | None = None) -> list[str]:
    return [c for c, d, _ in alerts(run) if device is None or d == device]


def smi(run: ScenarioRun, device: str):
    return run.system.dsp.smi.get(IDS[device])


def sat(run: ScenarioRun, **query):
    return run.system.dsp.sat.entries(**query)


def sync_response(events, variant: str) -> dict:
    return next(e for e in events if e["event"] in ("sr_accepted", "sr_rejected")
                and e["service_reference_variant"] == variant)


def ppmid_update(**extra) -> dict:
    return {"sr": "11.4", "at_s": 0, "devices": [PPMID], "image": "ppmid", **extra}


def esme_update(**extra) -> dict:
    return {"sr": "11.1", "at_s": 0, "devices": [ESME], "image": "esme", **extra}


# -- DSP validation -------------------------------------------------------------------------------
def test_dsp_invalid_device_unknown_or_wrong_type():
    run, _, events = play({"requests": [ppmid_update(devices=[PPMID, ESME, "00-DB-12-34-56-78-90-FF"])]})
    response = sync_response(events, "11.4")
    assert response["response_code"] == "W110401"
    assert response["rejected"] == {"InvalidDevice": [ESME, "00-DB-12-34-56-78-90-FF"]}
    assert response["accepted"] == [PPMID]
    assert not any(d == ESME for _, d, _ in alerts(run))
    assert [e.code for e in sat(run, event=SatEvent.DSP_REJECTED)] == ["InvalidDevice", "InvalidDevice"]


def test_dsp_not_commissioned():
    run, _, events = play({
        "premises": [{"template": "default", "devices": [{"eui64": PPMID, "status": "InstalledNotCommissioned"}]}],
        "requests": [ppmid_update()],
    })
    response = sync_response(events, "11.4")
    assert response["rejected"] == {"NotCommissioned": [PPMID]} and response["accepted"] == []
    assert alerts(run) == []
    assert smi(run, PPMID).firmware_version == OLD
    assert not any(e["event"] == "image_received" for e in events)  # nothing reached the hub


def test_dsp_firmware_not_applicable_hardware_out_of_range():
    run, _, events = play({
        "premises": [{"template": "default", "devices": [{"eui64": PPMID, "hardware_version": 0x1000}]}],
        "requests": [ppmid_update()],
    })
    assert sync_response(events, "11.4")["rejected"] == {"FirmwareNotApplicable": [PPMID]}
    assert alerts(run) == []


def test_dsp_another_update_in_progress():
    run, _, events = play({"requests": [ppmid_update(), ppmid_update(at_s=2)]})
    responses = [e for e in events if e["event"] == "sr_accepted" and e["service_reference_variant"] == "11.4"]
    assert responses[0]["accepted"] == [PPMID]
    assert responses[1]["rejected"] == {"FirmwareUpdateInProgress": [PPMID]}
    assert codes(run, PPMID) == ["N59", "N61", "N62", "N39", "N49"]  # one distribution only


# -- CSP --------------------------------------------------------------------------------------
@pytest.mark.parametrize("code", ["N18", "N19", "N20", "N22"])
def test_csp_rejection(code):
    run, _, events = play({
        "csp": {"devices": {PPMID: code, GSME: code}},
        "requests": [ppmid_update(), {"sr": "11.1", "at_s": 0, "devices": [GSME], "image": "gsme"}],
    })
    assert alerts(run) == [(code, PPMID, IMPORT), (code, GSME, IMPORT)]
    entries = sat(run, event=SatEvent.CSP_REJECTED)
    assert [(e.device, e.code) for e in entries] == [(IDS[PPMID], code), (IDS[GSME], code)]  # one per device
    assert smi(run, PPMID).firmware_version == OLD
    assert run.system.dsp.smi.update_in_progress(IDS[PPMID]) is None  # a new SR may follow


def test_n59_goes_to_the_other_responsible_supplier_only():
    run, _, _ = play({"requests": [ppmid_update()]})
    n59 = [(d, r) for c, d, r in alerts(run) if c == "N59"]
    assert n59 == [(PPMID, GAS)]


def test_n60_wan_delivery_to_the_hub_fails():
    run, _, events = play({"csp": {"hubs": {HUB: {"fail": True}}}, "requests": [ppmid_update()]})
    assert codes(run, PPMID) == ["N59", "N60"]
    assert not any(e["event"] == "image_received" for e in events)
    assert smi(run, PPMID).firmware_version == OLD
    assert run.system.dsp.smi.update_in_progress(IDS[PPMID]) is None


def test_n61_delivered_then_transferred_ccs08_result_0():
    run, _, _ = play({"requests": [esme_update()]})
    # The hub's CCS08 (N62) goes as it sees the Upgrade End Request; the meter's 0x8F72, sent with
    # it, takes three APS blocks in the tunnel and reaches the DSP after it.
    assert alerts(run) == [("N59", ESME, GAS), ("N61", ESME, IMPORT), ("N62", ESME, IMPORT),
                           ("0x8F72", ESME, IMPORT)]
    (n62,) = [m for m in run.system.messages if m.code == "N62"]
    assert (n62.details["alert_code"], n62.details["result"]) == ("0x8F8A", 0)
    device = smi(run, ESME)
    assert (device.firmware_version, device.firmware_status) == (OLD, FirmwareStatus.IMAGE_HELD)
    assert device.pending_firmware_version == NEW


# -- CCS08 results ------------------------------------------------------------------------------
def test_ccs08_hardware_version_mismatch():
    """The SMI says the PPMID fits the image; the device itself reports another hardware version."""
    run, _, _ = play({
        "premises": [{"template": "default", "devices": [{"eui64": PPMID, "ota": {"hardware_version": 0x1300}}]}],
        "requests": [ppmid_update()],
    })
    assert codes(run, PPMID) == ["N59", "N61", "N62"]
    (n62,) = [m for m in run.system.messages if m.code == "N62"]
    assert (n62.details["alert_code"], n62.details["result"]) == ("0x8F89", 2)
    assert smi(run, PPMID).firmware_version == OLD


def test_ccs08_transfer_failed_invalid_image():
    run, _, events = play({
        "premises": [{"template": "default", "devices": [{"eui64": PPMID, "ota": {"invalid_image_at_end": True}}]}],
        "requests": [ppmid_update()],
    })
    assert codes(run, PPMID) == ["N59", "N61", "N62"]
    (n62,) = [m for m in run.system.messages if m.code == "N62"]
    assert (n62.details["alert_code"], n62.details["result"]) == ("0x8F89", 3)
    assert not any(e["event"] == "firmware_activated" for e in events)
    assert smi(run, PPMID).firmware_version == OLD


def test_ccs08_discarded_or_overwritten():
    """A newer image reaches the hub for a device still downloading the older one."""
    from emulator.ota.image import build_image

    collector = EventCollector()
    run = ScenarioRun(parse_scenario({
        "premises": [{"template": "default", "devices": [{"eui64": PPMID, "ota": {"initial_query_delay_s": 3600, "query_interval_s": 60}}]}],
        "requests": [ppmid_update()], "settle_s": 300,
        "ota": {"block_gap_timeout_s": 5000},
    }, source="test"), observers=[collector])
    hub = run.system.premises["PREMISES-0001"].hub
    newer = build_image(b"\x5a" * 4000, manufacturer_code=0x121D, image_type=0x0084, file_version=NEW + 1,
                        min_hardware_version=0x1111, max_hardware_version=0x1211, layout="gbcs-ppmid")
    run.clock.call_later(1.5, lambda: hub.distribute_image(newer, [IDS[PPMID]], activate_now=True,
                                                           request_id="overwrite:1"))
    run.run()
    n62 = [m for m in run.system.messages if m.code == "N62"]
    assert [(m.details["alert_code"], m.details["result"]) for m in n62][0] == ("0x8F89", 1)
    activated = [e.fields["firmware_version"] for e in collector.events if e.event == "firmware_activated"]
    assert activated == [f"{NEW + 1:08X}"]  # the newer image is the one installed


# -- PPMID activation (11.4) --------------------------------------------------------------------
def test_ppmid_success_n39_then_n49_and_smi_updated():
    run, _, _ = play({"requests": [ppmid_update()]})
    assert alerts(run) == [("N59", PPMID, GAS), ("N61", PPMID, IMPORT), ("N62", PPMID, IMPORT),
                           ("N39", PPMID, IMPORT), ("N49", PPMID, IMPORT)]
    device = smi(run, PPMID)
    assert (device.firmware_version, device.firmware_status, device.status) == (
        NEW, FirmwareStatus.ACTIVE, DeviceStatus.COMMISSIONED)
    assert [e.code for e in sat(run, event=SatEvent.USER_MESSAGE)] == ["N59", "N61", "N62", "N39", "N49"]
    assert sat(run, event=SatEvent.SMI_UPDATED, device=IDS[PPMID])


def test_ppmid_failed_activation_n39_without_n49():
    run, _, _ = play({
        "premises": [{"template": "default", "devices": [{"eui64": PPMID, "faults": {"activation_fails": True}}]}],
        "requests": [ppmid_update()],
    })
    assert codes(run, PPMID) == ["N59", "N61", "N62", "N39"]
    (n39,) = [m for m in run.system.messages if m.code == "N39"]
    assert n39.details["success"] is False
    assert smi(run, PPMID).firmware_version == OLD


# -- 11.3 ---------------------------------------------------------------------------------------
def activate(**extra) -> dict:
    return {"sr": "11.3", "device": ESME, "image": "esme",
            "after": {"event": "dcc_alert", "alert": "N62", "device": ESME}, "delay_s": 1, **extra}


def responses(run: ScenarioRun, variant: str) -> list[dict]:
    return [m.details for m in run.system.messages if m.kind is MessageKind.RESPONSE and m.code == variant]


def test_11_3_success_updates_the_smi():
    run, _, _ = play({"requests": [esme_update(), activate()]})
    (response,) = responses(run, "11.3")
    assert (response["activation_result_name"], response["firmware_version"]) == ("SUCCESS", f"{NEW:08X}")
    assert codes(run, ESME) == ["N59", "N61", "N62", "0x8F72", "0x8F43"]
    device = smi(run, ESME)
    assert (device.firmware_version, device.firmware_status) == (NEW, FirmwareStatus.ACTIVE)


def test_11_3_no_image_held():
    run, _, _ = play({"requests": [{"sr": "11.3", "at_s": 0, "device": ESME, "image": "esme"}]})
    (response,) = responses(run, "11.3")
    assert response["activation_result_name"] == "NO_IMAGE_HELD"
    assert smi(run, ESME).firmware_version == OLD


def test_11_3_hash_mismatch():
    run, _, _ = play({"requests": [esme_update(), {k: v for k, v in activate(hash="00" * 32).items() if k != "image"}]})
    (response,) = responses(run, "11.3")
    assert response["activation_result_name"] == "HASH_MISMATCH"
    assert smi(run, ESME).firmware_status is FirmwareStatus.IMAGE_HELD


def test_11_3_activation_failure():
    run, _, _ = play({
        "premises": [{"template": "default", "devices": [{"eui64": ESME, "faults": {"activation_fails": True}}]}],
        "requests": [esme_update(), activate()],
    })
    (response,) = responses(run, "11.3")
    assert response["activation_result_name"] == "ACTIVATION_FAILURE"
    assert smi(run, ESME).firmware_version == OLD


def test_11_3_future_dated_success_then_0x8f66():
    run, _, events = play({"requests": [esme_update(), activate(execute_in_s=3600)], "settle_s": 4000})
    (ack,) = responses(run, "11.3")
    assert ack["acknowledged"] is True
    sent = next(e["time"] for e in events if e["event"] == "sr_sent" and e["sr"] == "11.3")
    activated = next(e for e in events if e["event"] == "firmware_activated" and e["device"] == ESME)
    assert activated["time"] == pytest.approx(sent + 3600, abs=1.0)
    assert codes(run, ESME) == ["N59", "N61", "N62", "0x8F72", "0x8F43", "0x8F66"]
    assert smi(run, ESME).firmware_version == NEW


def test_11_3_future_dated_failure_then_0x8f67():
    run, _, _ = play({
        "premises": [{"template": "default", "devices": [{"eui64": ESME, "faults": {"activation_fails": True}}]}],
        "requests": [esme_update(), activate(execute_in_s=600)], "settle_s": 1200,
    })
    assert "0x8F67" in codes(run, ESME)
    assert smi(run, ESME).firmware_version == OLD


def test_11_3_future_dated_then_cancelled():
    run, _, events = play({
        "requests": [esme_update(), activate(execute_in_s=3600),
                     {"sr": "11.3", "device": ESME, "image": "esme", "execution": "3000-12-31T00:00:00Z",
                      "after": {"event": "sr_response", "service_reference_variant": "11.3"}, "delay_s": 10}],
        "settle_s": 5000,
    })
    assert not any(e["event"] == "firmware_activated" for e in events)
    assert "0x8F66" not in codes(run, ESME)
    assert smi(run, ESME).firmware_version == OLD
    assert sat(run, code="FutureActivationCancelled")


# -- 11.2 -------------------------------------------------------------------------------------
def test_11_2_on_a_suspended_ppmid_updates_and_restores_it():
    run, _, _ = play({
        "premises": [{"template": "default", "devices": [
            {"eui64": PPMID, "status": "Suspended", "ota": {"current_file_version": NEW}}]}],
        "requests": [{"sr": "11.2", "at_s": 0, "device": PPMID}],
    })
    (response,) = responses(run, "11.2")
    assert response["firmware_version"] == f"{NEW:08X}"
    device = smi(run, PPMID)
    assert (device.firmware_version, device.status) == (NEW, DeviceStatus.COMMISSIONED)
