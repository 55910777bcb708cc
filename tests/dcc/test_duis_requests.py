"""Parsing DUIS requests: DCC's own samples, the shapes around them, and hostile documents."""

from __future__ import annotations

import base64
import re
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from test_duis_helpers import DCC, USER, request_xml, sample, update_body
from emulator.dcc.duis import DuisError, format_eui64, parse_eui64, parse_request
from emulator.dcc.service_requests import (
    CommandDelivery,
    ActivateFirmware,
    ReadFirmwareVersion,
    UpdateFirmware,
    UpdatePPMIDFirmware,
)

OTA_FILE_IDENTIFIER = bytes.fromhex("1EF1EE0B")  # 0x0BEEF11E little-endian


def _field(xml: bytes, name: str) -> str:
    return re.search(rf"<sr:{name}>(.*?)</sr:{name}>".encode(), xml, re.S).group(1).decode()


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("11.1_UPDATE_FIRMWARE_REQUEST_DUIS.XML", UpdateFirmware),
        ("11.4_UPDATE_PPMID_FIRMWARE_REQUEST_DUIS.XML", UpdatePPMIDFirmware),
    ],
)
def test_dcc_update_samples_parse_to_image_version_and_devices(name, kind):
    xml = sample(name)
    request = parse_request(xml)
    assert type(request) is kind
    assert request.firmware_image == base64.b64decode(_field(xml, "FirmwareImage"))
    assert request.firmware_image[:4] == OTA_FILE_IDENTIFIER
    assert request.firmware_version == int(_field(xml, "FirmwareVersion"), 16)
    assert request.device_ids == (parse_eui64(_field(xml, "DeviceIDList"), element="t"),)
    header = request.header
    assert header.request_id == _field(xml, "RequestID")
    assert header.command_variant == 8
    assert header.service_reference_variant == name[:4]
    assert format_eui64(header.originator) == USER
    assert format_eui64(header.target) == DCC
    assert header.counter == 1000


@pytest.mark.parametrize(
    ("name", "when"),
    [
        ("CS06_11.3_IMMEDIATE_SUCCESS_REQUEST_DUIS.XML", None),
        ("CS06_11.3_FUTURE_DATED_SUCCESS_REQUEST_DUIS.XML", datetime(2030, 1, 15, 9, tzinfo=timezone.utc)),
        ("CS06_11.3_CANCELLATION_SUCCESS_REQUEST_DUIS.XML", datetime(3000, 12, 31, tzinfo=timezone.utc)),
    ],
)
def test_dcc_activate_samples_target_the_request_id_device(name, when):
    xml = sample(name)
    request = parse_request(xml)
    assert isinstance(request, ActivateFirmware)
    assert request.device_id == parse_eui64(_field(xml, "RequestID").split(":")[1], element="t")
    assert request.firmware_hash == bytes.fromhex(_field(xml, "FirmwareHash"))
    assert len(request.firmware_hash) == 32
    assert request.execution_datetime == when
    assert request.header.command_variant == 4


@pytest.mark.parametrize(
    "name",
    ["CS08_11.2_SUCCESS_REQUEST_DUIS.XML", "ECS52_11.2_SUCCESS_REQUEST_DUIS.XML", "GCS38_11.2_SUCCESS_REQUEST_DUIS.XML"],
)
def test_dcc_read_version_samples_target_the_request_id_device(name):
    xml = sample(name)
    request = parse_request(xml)
    assert isinstance(request, ReadFirmwareVersion)
    assert format_eui64(request.device_id) == _field(xml, "RequestID").split(":")[1]


def test_unsigned_request_gives_the_same_record_as_signed():
    signed = sample("11.4_UPDATE_PPMID_FIRMWARE_REQUEST_DUIS.XML")
    unsigned = re.sub(rb"<ds:Signature.*</ds:Signature>", b"", signed, flags=re.S)
    assert b"Signature" not in unsigned
    assert parse_request(unsigned) == parse_request(signed)


def test_device_list_is_comma_separated_as_duis_writes_it():
    devices = "00-DB-12-34-56-78-90-A0,00-DB-12-34-56-78-90-A1,00-db-12-34-56-78-90-a2"
    request = parse_request(request_xml("11.1", update_body(devices=devices)))
    assert request.device_ids == (0x00DB1234567890A0, 0x00DB1234567890A1, 0x00DB1234567890A2)


def test_device_list_of_50000_is_read_in_linear_time_and_50001_is_refused():
    devices = ",".join(format_eui64(0x00DB000000000000 + n) for n in range(50_000))
    request = parse_request(request_xml("11.1", update_body(devices=devices)), max_size=4 << 20)
    assert len(request.device_ids) == 50_000
    with pytest.raises(DuisError, match="at most 50000"):
        parse_request(request_xml("11.1", update_body(devices=devices + ",00-DB-FF-00-00-00-00-00")), max_size=4 << 20)


@pytest.mark.parametrize(("cv", "variant", "code"), [
    (4, "11.2", "E12"), (5, "11.2", "E12"), (8, "11.2", "E12"),
    (1, "11.3", "E12"), (2, "11.3", "E12"), (8, "11.3", "E12"), (1, "11.1", "E12"),
])
def test_command_variants_duis_does_not_allow_get_e12(cv, variant, code):
    body = {"11.2": "<sr:ReadFirmwareVersion/>", "11.3": _body_11_3(), "11.1": update_body()}[variant]
    rid = TARGETED if variant != "11.1" else None
    with pytest.raises(DuisError) as caught:
        parse_request(request_xml(variant, body, request_id=rid, command_variant=cv))
    assert caught.value.code == code and caught.value.element == "Header/CommandVariant"
    assert caught.value.request_id == (rid or f"{USER}:{DCC}:1000") and caught.value.variant == variant


def test_firmware_version_is_any_one_to_eight_characters():
    assert parse_request(request_xml("11.1", update_body(version="1"))).firmware_version == 1
    assert parse_request(request_xml("11.1", update_body(version="v1.2"))).firmware_version is None


_eui = st.integers(min_value=0, max_value=(1 << 64) - 1)


@settings(max_examples=60, deadline=None)
@given(
    image=st.binary(min_size=1, max_size=300),
    version=st.integers(min_value=0, max_value=0xFFFFFFFF),
    devices=st.lists(_eui, min_size=1, max_size=5, unique=True),
    counter=st.integers(min_value=0, max_value=(1 << 64) - 1),
    ppmid=st.booleans(),
)
def test_update_requests_round_trip(image, version, devices, counter, ppmid):
    variant, element = ("11.4", "UpdatePPMIDFirmware") if ppmid else ("11.1", "UpdateFirmware")
    xml = request_xml(
        variant,
        update_body(
            element,
            image=base64.b64encode(image).decode(),
            version=f"{version:08X}",
            devices=",".join(format_eui64(d) for d in devices),
        ),
        request_id=f"{USER}:{DCC}:{counter}",
    )
    request = parse_request(xml)
    assert (request.firmware_image, request.firmware_version, request.device_ids) == (
        image,
        version,
        tuple(devices),
    )
    assert request.header.counter == counter


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<sr:Request xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway">&lol3;</sr:Request>"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<sr:Request xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway"><sr:Header>
<sr:RequestID>&xxe;</sr:RequestID></sr:Header></sr:Request>"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE r SYSTEM "http://127.0.0.1:9/evil.dtd">
<sr:Request xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway"/>"""


@pytest.mark.parametrize("document", [BILLION_LAUGHS, XXE, EXTERNAL_DTD], ids=["billion-laughs", "xxe", "external-dtd"])
def test_documents_with_a_dtd_are_refused(document):
    with pytest.raises(DuisError, match="DTD or entity"):
        parse_request(document)


def test_dtd_hidden_by_utf16_encoding_is_refused():
    document = XXE.decode().replace('version="1.0"', 'version="1.0" encoding="UTF-16"').encode("utf-16")
    with pytest.raises(DuisError, match="DTD"):
        parse_request(document)


def test_oversized_document_is_refused_before_parsing():
    xml = request_xml("11.1", update_body(image="A" * 4000))
    with pytest.raises(DuisError, match=rf"{len(xml)} bytes, larger than the limit of 1000 bytes"):
        parse_request(xml, max_size=1000)


def _body_11_3(hash_hex: str = "AA" * 32, when: str | None = None) -> str:
    dt = f"<sr:ExecutionDateTime>{when}</sr:ExecutionDateTime>" if when else ""
    return f"<sr:ActivateFirmware>{dt}<sr:FirmwareHash>{hash_hex}</sr:FirmwareHash></sr:ActivateFirmware>"


TARGETED = f"{USER}:00-DB-12-34-56-78-90-A0:7"

BAD_REQUESTS = [
    ("malformed", b"<sr:Request xmlns:sr='x'><sr:Header>", None, "malformed XML at line 1"),
    ("empty", b"  ", None, "document is empty"),
    ("not-request", b"<sr:Response xmlns:sr='http://www.dccinterface.co.uk/ServiceUserGateway'/>", None, "expected sr:Request"),
    ("wrong-namespace", request_xml("11.1", update_body(), namespace="http://example.com/duis"), "Request", "namespace 'http://example.com/duis'"),
    ("no-header", b"<sr:Request xmlns:sr='http://www.dccinterface.co.uk/ServiceUserGateway' schemaVersion='5.4'><sr:Body/></sr:Request>", "Header", "missing"),
    ("no-schema-version", b"<sr:Request xmlns:sr='http://www.dccinterface.co.uk/ServiceUserGateway'><sr:Body/></sr:Request>", "Request", "schemaVersion"),
    ("missing-request-id", request_xml("11.1", update_body()).replace(b"<sr:RequestID>90-B3-D5-1F-30-01-00-00:90-B3-D5-1F-30-00-00-02:1000</sr:RequestID>", b""), "Header/RequestID", "missing"),
    ("header-extra", request_xml("11.1", update_body()).replace(b"</sr:Header>", b"<sr:Priority>1</sr:Priority></sr:Header>"), "Header", "unexpected element 'Priority'"),
    ("request-id-parts", request_xml("11.1", update_body(), request_id=f"{USER}:{DCC}"), "Header/RequestID", "is not <originator"),
    ("bad-originator", request_xml("11.1", update_body(), request_id=f"90-B3-D5-1F-30-01-00:{DCC}:1"), "Header/RequestID (originator)", "not an EUI-64"),
    ("bad-counter", request_xml("11.1", update_body(), request_id=f"{USER}:{DCC}:-1"), "Header/RequestID", "counter '-1'"),
    ("unsupported-srv", request_xml("11.1", update_body()).replace(b"Variant>11.1<", b"Variant>4.1.1<"), "Header/ServiceReferenceVariant", "'4.1.1' is not served"),
    ("sr-mismatch", request_xml("11.1", update_body(), service_reference="11.4"), "Header/ServiceReference", "does not match"),
    ("command-variant", request_xml("11.1", update_body(), command_variant=1), "Header/CommandVariant", "1 is not allowed for 11.1"),
    ("body-mismatch", request_xml("11.4", update_body("UpdateFirmware")), "Body", "'UpdateFirmware' does not match ServiceReferenceVariant 11.4"),
    ("bad-base64", request_xml("11.1", update_body(image="HvHu*wAB")), "Body/UpdateFirmware/FirmwareImage", "not valid base64"),
    ("empty-image", request_xml("11.1", update_body(image="")), "Body/UpdateFirmware/FirmwareImage", "is empty"),
    ("long-version", request_xml("11.1", update_body(version="000000001")), "Body/UpdateFirmware/FirmwareVersion", "DUIS allows 1-8"),
    ("bad-device", request_xml("11.4", update_body("UpdatePPMIDFirmware", devices="00-DB-12-34-56-78-90-A0,00-DB-12")), "Body/UpdatePPMIDFirmware/DeviceIDList", "entry 2 '00-DB-12' is not an EUI-64"),
    ("space-separated", request_xml("11.1", update_body(devices="00-DB-12-34-56-78-90-A0 00-DB-12-34-56-78-90-A1")), "Body/UpdateFirmware/DeviceIDList", "commas, no spaces"),
    ("device-elements", request_xml("11.1", update_body(devices="<sr:DeviceID>zz</sr:DeviceID>")), "Body/UpdateFirmware/DeviceIDList", "not child elements"),
    ("duplicate-device", request_xml("11.1", update_body(devices="00-DB-12-34-56-78-90-A0,00-db-12-34-56-78-90-a0")), "Body/UpdateFirmware/DeviceIDList", "more than once"),
    ("no-device", request_xml("11.1", update_body(devices="")), "Body/UpdateFirmware/DeviceIDList", "lists no device"),
    ("extra-element", request_xml("11.1", update_body().replace("</sr:UpdateFirmware>", "<sr:Foo/></sr:UpdateFirmware>")), "Body/UpdateFirmware", "unexpected element 'Foo'"),
    ("short-hash", request_xml("11.3", _body_11_3("AA" * 31), request_id=TARGETED), "Body/ActivateFirmware/FirmwareHash", "not 64 hex digits"),
    ("bad-date", request_xml("11.3", _body_11_3(when="31/12/3000"), request_id=TARGETED), "Body/ActivateFirmware/ExecutionDateTime", "not an xs:dateTime"),
    ("11.2-with-body", request_xml("11.2", "<sr:ReadFirmwareVersion><sr:X/></sr:ReadFirmwareVersion>", request_id=TARGETED), "Body/ReadFirmwareVersion", "unexpected element 'X'"),
    ("two-bodies", request_xml("11.2", "<sr:ReadFirmwareVersion/><sr:ReadFirmwareVersion/>", request_id=TARGETED), "Body", "holds 2 elements"),
]


@pytest.mark.parametrize(("case", "xml", "element", "reason"), BAD_REQUESTS, ids=[c[0] for c in BAD_REQUESTS])
def test_bad_requests_name_the_element_and_the_reason(case, xml, element, reason):
    with pytest.raises(DuisError) as caught:
        parse_request(xml)
    assert caught.value.element == element
    assert reason in str(caught.value)
    if element:
        assert str(caught.value).startswith(element + ": ")


def test_execution_time_without_zone_is_read_as_utc():
    request = parse_request(request_xml("11.3", _body_11_3(when="2031-02-03T04:05:06"), request_id=TARGETED))
    assert request.execution_datetime == datetime(2031, 2, 3, 4, 5, 6, tzinfo=timezone.utc)


def test_eui64_formatting_round_trips():
    assert format_eui64(parse_eui64(" 00-db-12-34-56-78-90-a0 ", element="x")) == "00-DB-12-34-56-78-90-A0"
    with pytest.raises(ValueError):
        format_eui64(1 << 64)


@pytest.mark.parametrize(("cv", "delivery"), [
    (1, CommandDelivery.WAN), (2, CommandDelivery.LOCAL), (3, CommandDelivery.WAN_AND_LOCAL),
])
def test_11_2_command_variants_say_where_the_command_goes(cv, delivery):
    request = parse_request(request_xml("11.2", "<sr:ReadFirmwareVersion/>", request_id=TARGETED, command_variant=cv))
    assert request.header.delivery is delivery


@pytest.mark.parametrize(("cv", "delivery"), [
    (5, CommandDelivery.WAN), (6, CommandDelivery.LOCAL), (7, CommandDelivery.WAN_AND_LOCAL),
])
def test_11_3_signed_pre_command_variants_say_where_the_command_goes(cv, delivery):
    body = "<sr:SignedPreCommand><sr:GBCSPayload>3wk=</sr:GBCSPayload></sr:SignedPreCommand>"
    request = parse_request(request_xml("11.3", body, request_id=TARGETED, command_variant=cv))
    assert request.header.delivery is delivery and request.signed_precommand == b"\xdf\x09"
