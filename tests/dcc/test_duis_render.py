"""Rendering DSP responses and user messages as DUIS XML (each checked against DCC's V5.4 XSD)
and JSON."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from duis_schema import assert_valid
from lxml import etree

from emulator.dcc.duis import (
    REJECTION_LISTS,
    UserMessageRenderer,
    format_eui64,
    render_dsp_response,
    user_message_to_json,
)
from emulator.dcc.messages import DspResponse, MessageKind, RejectionReason, ResponseCode, UserMessage

NS = {"sr": "http://www.dccinterface.co.uk/ServiceUserGateway"}
AT = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone.utc)
RID = "90-B3-D5-1F-30-01-00-00:90-B3-D5-1F-30-00-00-02:1000"
PPMID = 0x00DB1234567890A4
METER = 0x00DB1234567890A0
HUB = "00-DB-12-34-56-78-90-A2"


def _xml(data: bytes) -> etree._Element:
    assert_valid(data)
    return etree.fromstring(data)


def _text(root: etree._Element, path: str) -> str | None:
    found = root.find(path, NS)
    return None if found is None else (found.text or "")


@pytest.mark.parametrize(("variant", "warning", "code"), [
    ("11.1", "DSPUpdateFirmwareWarning", ResponseCode.W110101),
    ("11.4", "DSPUpdatePPMIDFirmwareWarning", ResponseCode.W110401),
])
def test_rejected_devices_are_listed_under_their_schema_names_comma_separated(variant, warning, code):
    rejected = {
        RejectionReason.NOT_COMMISSIONED: (METER,),
        RejectionReason.INVALID_DEVICE: (PPMID, 2),
        RejectionReason.FIRMWARE_NOT_APPLICABLE: (3,),
        RejectionReason.FIRMWARE_UPDATE_IN_PROGRESS: (4,),
        RejectionReason.INVALID_GBCS_VERSION: (6,),
    }
    root = _xml(render_dsp_response(DspResponse(RID, variant, code, (5,), rejected), at=AT, schema_version="5.4"))
    assert root.get("schemaVersion") == "5.4"
    assert _text(root, "sr:Header/sr:RequestID") == RID
    assert _text(root, "sr:Header/sr:ResponseCode") == code.value
    assert _text(root, "sr:Header/sr:ResponseDateTime") == "2024-05-06T07:08:09.123Z"
    assert _text(root, "sr:Body/sr:ResponseMessage/sr:ServiceReferenceVariant") == variant
    lists = root.find(f"sr:Body/sr:ResponseMessage/sr:{warning}", NS)
    assert [etree.QName(e).localname for e in lists] == [
        "InvalidDeviceIDList", "NotCommissionedDeviceIDList", "NotApplicableFirmwareDeviceIDList",
        "OtherRequestInProgressList", "InvalidGBCSVersionList"]
    for reason, devices in rejected.items():
        assert _text(lists, f"sr:{REJECTION_LISTS[reason]}") == ",".join(format_eui64(d) for d in devices)


def test_acknowledgement_has_no_warning_body_and_empty_lists_are_left_out():
    response = DspResponse(RID, "11.4", ResponseCode.ACKNOWLEDGED, (PPMID,), {RejectionReason.INVALID_DEVICE: ()})
    root = _xml(render_dsp_response(response, at=AT))
    assert _text(root, "sr:Header/sr:ResponseCode") == "I99"
    message = root.find("sr:Body/sr:ResponseMessage", NS)
    assert [etree.QName(e).localname for e in message] == ["ServiceReference", "ServiceReferenceVariant"]


def test_error_response_carries_only_the_code():
    response = DspResponse(RID, "11.3", ResponseCode.NOT_RESPONSIBLE, error="not responsible")
    data = render_dsp_response(response, at=AT)
    root = _xml(data)
    assert _text(root, "sr:Header/sr:ResponseCode") == "E4"
    assert b"responsible" not in data and not list(root.iter(etree.Comment))


def test_naive_time_is_treated_as_utc():
    data = render_dsp_response(DspResponse(RID, "11.2", ResponseCode.ACKNOWLEDGED), at=datetime(2024, 1, 2, 3, 4, 5))
    assert _text(_xml(data), "sr:Header/sr:ResponseDateTime") == "2024-01-02T03:04:05.000Z"


EPOCH = datetime(2020, 1, 1, tzinfo=timezone.utc)
RENDERER = UserMessageRenderer(epoch=EPOCH)


def _alert(code: str, **details) -> etree._Element:
    message = UserMessage(f"m-{code}", MessageKind.DCC_ALERT, code, 90.5, device=PPMID, request_id=RID,
                          details=details, schema_version="5.4")
    root = _xml(RENDERER.xml(message, counter=42))
    assert _text(root, "sr:Body/sr:DCCAlertMessage/sr:DCCAlertCode") == code
    return root.find("sr:Body/sr:DCCAlertMessage/sr:DCCAlert", NS)[0]


def test_dcc_alert_comes_from_the_dcc_in_the_requests_schema_version():
    message = UserMessage("alert-1", MessageKind.DCC_ALERT, "N19", 90.5, device=PPMID, request_id=RID,
                          schema_version="5.4")
    data = RENDERER.xml(message, counter=42)
    root = _xml(data)
    assert b"urn:ch-emulator" not in data and root.get("schemaVersion") == "5.4"
    assert _text(root, "sr:Header/sr:RequestID") == RID
    assert _text(root, "sr:Header/sr:ResponseID") == f"{format_eui64(RENDERER.dcc_id)}:90-B3-D5-1F-30-01-00-00:42"
    assert _text(root, "sr:Header/sr:ResponseDateTime") == "2020-01-01T00:01:30.500Z"


@pytest.mark.parametrize("code", ["N18", "N19", "N20", "N21", "N22"])
def test_csp_rejections_carry_a_firmware_distribution_failure(code):
    body = _alert(code)
    assert etree.QName(body).localname == "FirmwareDistributionFailure"
    assert (_text(body, "sr:UpdateFirmwareRequestID"), _text(body, "sr:MeterIDs")) == (RID, format_eui64(PPMID))


@pytest.mark.parametrize(("code", "status"), [("N60", "Failure"), ("N61", "Success")])
def test_hub_delivery_carries_the_csp_delivery_status(code, status):
    body = _alert(code, comms_hub=HUB, firmware_version="ACDCACDC")
    assert etree.QName(body).localname == "CSPFirmwareDeliveryStatus"
    assert [e.text for e in body] == [RID, HUB, format_eui64(PPMID), "ACDCACDC", "2020-01-01T00:01:30.500Z", status]


@pytest.mark.parametrize(("result", "name"), [(0, "FileTransferSuccess"), (1, "FirmwareImageDiscarded"),
                                              (2, "HardwareVersionMismatch"), (3, "FileTransferFailure")])
def test_n62_is_a_comms_hub_alert_with_the_ccs08_version_and_result(result, name):
    body = _alert("N62", comms_hub=HUB, alert_code="0x8F8A" if result == 0 else "0x8F89", result=result,
                  firmware_version="ACDCACDD")
    assert etree.QName(body).localname == "CommsHubAlert"
    assert _text(body, "sr:CommsHubDeviceID") == HUB
    assert _text(body, "sr:AlertCode") == ("8F8A" if result == 0 else "8F89")
    transfer = body.find("sr:FirmwareTransferAlert", NS)
    assert [e.text for e in transfer] == [RID, format_eui64(PPMID), "ACDCACDD", name]


def test_n39_is_a_ppmid_firmware_upgrade_alert():
    body = _alert("N39", alert_code="0x8F8B", success=False, firmware_version="ACDCACDC")
    assert etree.QName(body).localname == "PPMIDAlert"
    assert _text(body, "sr:DeviceAlertCode") == "8F8B"
    upgrade = body.find("sr:PPMIDFirmwareUpgradeAlert", NS)
    assert [e.text for e in upgrade] == ["ACDCACDC", "ActivationFailure"]


def test_n49_names_the_smi_and_device_versions():
    body = _alert("N49", previous_version="ACDC0001", firmware_version="ACDCACDC", device_type="PPMID")
    assert etree.QName(body).localname == "FirmwareVersionMismatch"
    assert [e.text for e in body] == [format_eui64(PPMID), "PPMID", "ACDC0001", "ACDCACDC"]


def test_n59_carries_device_type_version_and_list():
    body = _alert("N59", device_type="ESME", firmware_version="ACDCACDC", devices=[METER, PPMID])
    assert etree.QName(body).localname == "FirmwareUpgradeRequested"
    assert [e.text for e in body] == ["ESME", "ACDCACDC", f"{format_eui64(METER)},{format_eui64(PPMID)}"]


def test_device_alert_code_is_four_hex_digits_and_the_device_is_the_originator():
    message = UserMessage("a2", MessageKind.DEVICE_ALERT, "0x8f72", 0, device=PPMID, recipient="00-11-22-33-44-55-66-77",
                          details={"gbcs_payload": b"\x01\x02", "firmware_version": b"\x00\x00\x01\x02"})
    root = _xml(RENDERER.xml(message, counter=1))
    assert _text(root, "sr:Header/sr:ResponseID") == f"{format_eui64(PPMID)}:00-11-22-33-44-55-66-77:1"
    alert = root.find("sr:Body/sr:DeviceAlertMessage", NS)
    assert [(etree.QName(e).localname, e.text) for e in alert] == [("AlertCode", "8F72"), ("GBCSPayload", "AQI=")]


@pytest.mark.parametrize("code", ["0x8F66", "0x8F67"])
def test_future_dated_outcome_is_an_11_3_response(code):
    rid = f"90-B3-D5-1F-30-01-00-00:{format_eui64(METER)}:77"
    message = UserMessage("f", MessageKind.DEVICE_ALERT, code, 5, device=METER, request_id=rid)
    root = _xml(RENDERER.xml(message, counter=9))
    assert _text(root, "sr:Header/sr:ResponseID") == f"{format_eui64(METER)}:90-B3-D5-1F-30-01-00-00:77"
    reply = root.find("sr:Body/sr:ResponseMessage", NS)
    assert _text(reply, "sr:ServiceReferenceVariant") == "11.3"
    assert _text(reply, "sr:FutureDatedDeviceAlertMessage/sr:FutureDatedAlertCode") == code[2:]


def test_async_response_takes_the_request_counter_and_its_response_code():
    message = UserMessage("r1", MessageKind.RESPONSE, "11.3", 10, device=METER,
                          request_id=f"90-B3-D5-1F-30-01-00-00:{format_eui64(METER)}:5",
                          recipient="Import Supplier", details={"response_code": "I0", "activation": "hashMismatch"})
    root = _xml(RENDERER.xml(message, counter=3))
    assert _text(root, "sr:Header/sr:ResponseCode") == "I0"
    # recipient is not an EUI-64, so the request's originator receives it; the counter is the request's
    assert _text(root, "sr:Header/sr:ResponseID") == f"{format_eui64(METER)}:90-B3-D5-1F-30-01-00-00:5"
    reply = root.find("sr:Body/sr:ResponseMessage", NS)
    assert [etree.QName(e).localname for e in reply] == ["ServiceReference", "ServiceReferenceVariant", "GBCSPayload"]


def test_time_follows_the_renderer_epoch():
    message = UserMessage("t", MessageKind.DCC_ALERT, "N61", 86400.25, device=METER, request_id=RID,
                          details={"comms_hub": HUB, "firmware_version": "ACDCACDC"})
    later = UserMessageRenderer(epoch=EPOCH + timedelta(days=1))
    assert _text(_xml(later.xml(message, counter=1)), "sr:Header/sr:ResponseDateTime") == "2020-01-03T00:00:00.250Z"


def test_json_record_is_plain_json_with_eui_strings():
    message = UserMessage("j1", MessageKind.DEVICE_ALERT, "0x8F72", 1.0, device=METER, details={"hash": b"\xab\xcd", "ids": (1, 2), "reason": RejectionReason.INVALID_DEVICE})
    record = user_message_to_json(message)
    assert json.loads(json.dumps(record)) == record
    assert record["device"] == "00-DB-12-34-56-78-90-A0"
    assert record["details"] == {"hash": "ABCD", "ids": [1, 2], "reason": "InvalidDevice"}
    assert (record["message_id"], record["kind"], record["code"]) == ("j1", "device_alert", "0x8F72")


def test_every_dcc_alert_the_dsp_raises_has_a_typed_body():
    from emulator.dcc.alerts import DccAlertCode
    from emulator.dcc.duis.user_messages import DCC_ALERT_BODIES

    assert {code.value for code in DccAlertCode} <= set(DCC_ALERT_BODIES)
