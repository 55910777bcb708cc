"""Rendering DSP responses and user messages as DUIS XML and JSON."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from lxml import etree

from emulator.dcc.duis import (
    REJECTION_LISTS,
    UserMessageRenderer,
    format_eui64,
    render_dsp_response,
    user_message_to_json,
)
from emulator.dcc.messages import DspResponse, MessageKind, RejectionReason, UserMessage

NS = {"sr": "http://www.dccinterface.co.uk/ServiceUserGateway", "emu": "urn:ch-emulator:duis"}
AT = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone.utc)
RID = "90-B3-D5-1F-30-01-00-00:90-B3-D5-1F-30-00-00-02:1000"
PPMID = 0x00DB1234567890A4
METER = 0x00DB1234567890A0


def _xml(data: bytes) -> etree._Element:
    return etree.fromstring(data)


def _text(root: etree._Element, path: str) -> str | None:
    found = root.find(path, NS)
    return None if found is None else (found.text or "")


@pytest.mark.parametrize(("variant", "warning"), [("11.1", "DSPUpdateFirmwareWarning"), ("11.4", "DSPUpdatePPMIDFirmwareWarning")])
def test_rejected_devices_are_listed_under_their_reason(variant, warning):
    rejected = {
        RejectionReason.NOT_COMMISSIONED: (METER,),
        RejectionReason.INVALID_DEVICE: (PPMID, 2),
        RejectionReason.FIRMWARE_NOT_APPLICABLE: (3,),
        RejectionReason.FIRMWARE_UPDATE_IN_PROGRESS: (4,),
    }
    root = _xml(render_dsp_response(DspResponse(RID, variant, "W1", (5,), rejected), at=AT))
    assert _text(root, "sr:Header/sr:RequestID") == RID
    assert _text(root, "sr:Header/sr:ResponseCode") == "W1"
    assert _text(root, "sr:Header/sr:ResponseDateTime") == "2024-05-06T07:08:09.123Z"
    assert _text(root, "sr:Body/sr:ResponseMessage/sr:ServiceReferenceVariant") == variant
    lists = root.find(f"sr:Body/sr:ResponseMessage/sr:{warning}", NS)
    assert [etree.QName(e).localname for e in lists] == list(REJECTION_LISTS.values())
    for reason, devices in rejected.items():
        listed = _text(lists, f"sr:{REJECTION_LISTS[reason]}").split()
        assert listed == [format_eui64(d) for d in devices]


def test_accepted_request_has_no_warning_body_and_empty_lists_are_left_out():
    response = DspResponse(RID, "11.4", "I0", (PPMID,), {RejectionReason.INVALID_DEVICE: ()})
    message = _xml(render_dsp_response(response, at=AT)).find("sr:Body/sr:ResponseMessage", NS)
    assert [etree.QName(e).localname for e in message] == ["ServiceReference", "ServiceReferenceVariant"]


def test_error_response_carries_the_reason_as_a_comment():
    response = DspResponse(RID, "11.3", "E3", error="request -- rejected: role not eligible")
    data = render_dsp_response(response, at=AT)
    root = _xml(data)
    assert _text(root, "sr:Header/sr:ResponseCode") == "E3"
    assert b"role not eligible" in data
    comments = [c.text for c in root.iter(etree.Comment)]
    assert any("role not eligible" in c for c in comments)


def test_naive_time_is_treated_as_utc():
    data = render_dsp_response(DspResponse(RID, "11.2", "I0"), at=datetime(2024, 1, 2, 3, 4, 5))
    assert _text(_xml(data), "sr:Header/sr:ResponseDateTime") == "2024-01-02T03:04:05.000Z"


EPOCH = datetime(2020, 1, 1, tzinfo=timezone.utc)
RENDERER = UserMessageRenderer(epoch=EPOCH)


def test_dcc_alert_names_code_device_and_comes_from_the_dcc():
    message = UserMessage("alert-1", MessageKind.DCC_ALERT, "N19", 90.5, device=PPMID, request_id=RID, details={"check": "csp"})
    root = _xml(RENDERER.xml(message, counter=42))
    assert root.get(f"{{{NS['emu']}}}MessageID") == "alert-1"
    assert _text(root, "sr:Header/sr:RequestID") == RID
    assert _text(root, "sr:Header/sr:ResponseID") == f"{format_eui64(RENDERER.dcc_id)}:90-B3-D5-1F-30-01-00-00:42"
    assert _text(root, "sr:Header/sr:ResponseDateTime") == "2020-01-01T00:01:30.500Z"
    alert = root.find("sr:Body/sr:DCCAlertMessage", NS)
    assert _text(alert, "sr:DCCAlertCode") == "N19"
    assert _text(alert, "sr:DCCAlert/emu:DeviceID") == format_eui64(PPMID)
    detail = alert.find("sr:DCCAlert/emu:Detail", NS)
    assert (detail.get("name"), detail.text) == ("check", "csp")


def test_device_alert_code_is_four_hex_digits_and_the_device_is_the_originator():
    message = UserMessage("a2", MessageKind.DEVICE_ALERT, "0x8f8b", 0, device=PPMID, recipient="00-11-22-33-44-55-66-77",
                          details={"gbcs_payload": b"\x01\x02", "firmware_version": b"\x00\x00\x01\x02"})
    root = _xml(RENDERER.xml(message, counter=1))
    assert _text(root, "sr:Header/sr:ResponseID") == f"{format_eui64(PPMID)}:00-11-22-33-44-55-66-77:1"
    alert = root.find("sr:Body/sr:DeviceAlertMessage", NS)
    assert _text(alert, "sr:AlertCode") == "8F8B"
    assert _text(alert, "sr:GBCSPayload") == "AQI="
    assert [(d.get("name"), d.text) for d in alert.findall("emu:Detail", NS)] == [("firmware_version", "00000102")]


def test_async_response_keeps_request_id_and_response_code():
    message = UserMessage("r1", MessageKind.RESPONSE, "11.3", 10, device=METER, request_id=f"90-B3-D5-1F-30-01-00-00:{format_eui64(METER)}:5",
                          recipient="Import Supplier", details={"response_code": "I99", "activation": "hashMismatch"})
    root = _xml(RENDERER.xml(message, counter=3))
    assert root.get(f"{{{NS['emu']}}}Recipient") == "Import Supplier"
    assert _text(root, "sr:Header/sr:ResponseCode") == "I99"
    # recipient is not an EUI-64, so the request's originator receives it
    assert _text(root, "sr:Header/sr:ResponseID") == f"{format_eui64(METER)}:90-B3-D5-1F-30-01-00-00:3"
    reply = root.find("sr:Body/sr:ResponseMessage", NS)
    assert _text(reply, "sr:ServiceReferenceVariant") == "11.3"
    assert _text(reply, "sr:GBCSPayload") == ""
    assert [(d.get("name"), d.text) for d in reply.findall("emu:Detail", NS)] == [("activation", "hashMismatch")]


def test_time_follows_the_renderer_epoch():
    message = UserMessage("t", MessageKind.DCC_ALERT, "N61", 86400.25)
    later = UserMessageRenderer(epoch=EPOCH + timedelta(days=1))
    assert _text(_xml(later.xml(message, counter=1)), "sr:Header/sr:ResponseDateTime") == "2020-01-03T00:00:00.250Z"


def test_json_record_is_plain_json_with_eui_strings():
    message = UserMessage("j1", MessageKind.DEVICE_ALERT, "0x8F72", 1.0, device=METER, details={"hash": b"\xab\xcd", "ids": (1, 2), "reason": RejectionReason.INVALID_DEVICE})
    record = user_message_to_json(message)
    assert json.loads(json.dumps(record)) == record
    assert record["device"] == "00-DB-12-34-56-78-90-A0"
    assert record["details"] == {"hash": "ABCD", "ids": [1, 2], "reason": "InvalidDevice"}
    assert (record["message_id"], record["kind"], record["code"]) == ("j1", "device_alert", "0x8F72")
