"""The DUIS HTTP front door, driven with aiohttp's test client."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from aiohttp.test_utils import TestClient, TestServer
from lxml import etree

from emulator.dcc.http_api import SERVICE_PATH, create_app
from emulator.dcc.messages import DspResponse, RejectionReason, ResponseCode
from emulator.dcc.service_requests import ServiceRequest, UpdatePPMIDFirmware
from test_duis_helpers import request_xml, sample, update_body

NS = {"sr": "http://www.dccinterface.co.uk/ServiceUserGateway"}
NOW = datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc)


class RecordingDsp:
    """Stands in for the DSP: records what it was given and rejects the first listed device."""

    def __init__(self) -> None:
        self.received: list[ServiceRequest] = []

    def __call__(self, request: ServiceRequest) -> DspResponse:
        self.received.append(request)
        devices = getattr(request, "device_ids", ())
        return DspResponse(
            request.header.request_id,
            request.header.service_reference_variant,
            ResponseCode.W110401 if devices else ResponseCode.ACKNOWLEDGED,
            accepted=tuple(devices[1:]),
            rejected={RejectionReason.NOT_COMMISSIONED: tuple(devices[:1])},
        )


async def _client(submit, **kwargs) -> TestClient:
    client = TestClient(TestServer(create_app(submit, now=lambda: NOW, **kwargs)))
    await client.start_server()
    return client


async def test_dcc_sample_is_submitted_and_answered_with_the_warning_body():
    dsp = RecordingDsp()
    client = await _client(dsp)
    try:
        xml = sample("11.4_UPDATE_PPMID_FIRMWARE_REQUEST_DUIS.XML")
        reply = await client.post(SERVICE_PATH, data=xml, headers={"Content-Type": "application/xml"})
        assert reply.status == 200
        assert reply.content_type == "application/xml"
        root = etree.fromstring(await reply.read())
    finally:
        await client.close()
    assert len(dsp.received) == 1 and isinstance(dsp.received[0], UpdatePPMIDFirmware)
    assert root.findtext("sr:Header/sr:RequestID", namespaces=NS) == dsp.received[0].header.request_id
    assert root.findtext("sr:Header/sr:ResponseCode", namespaces=NS) == "W110401"
    assert root.get("schemaVersion") == "5.4"
    assert root.findtext("sr:Header/sr:ResponseDateTime", namespaces=NS) == "2024-05-06T07:08:09.000Z"
    listed = root.findtext(
        "sr:Body/sr:ResponseMessage/sr:DSPUpdatePPMIDFirmwareWarning/sr:NotCommissionedDeviceIDList", namespaces=NS
    )
    assert listed == "00-DB-12-34-56-78-90-A4"


async def test_async_submit_is_awaited():
    received = []

    async def submit(request: ServiceRequest) -> DspResponse:
        received.append(request)
        return DspResponse(request.header.request_id, "11.2", ResponseCode.ACKNOWLEDGED)

    client = await _client(submit)
    try:
        reply = await client.post("/api/v1/serviceS", data=sample("CS08_11.2_SUCCESS_REQUEST_DUIS.XML"))
        assert reply.status == 200
        assert b"<sr:ResponseCode>I99</sr:ResponseCode>" in await reply.read()
    finally:
        await client.close()
    assert len(received) == 1


@pytest.mark.parametrize(
    ("body", "content_type", "status", "reason"),
    [
        (b"<not xml", "text/xml", 400, "malformed XML"),
        (b'<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>', "application/xml", 400, "DTD or entity"),
        (b'{"service": "11.1"}', "application/json", 415, "Content-Type 'application/json' is not XML"),
        (request_xml("11.1", update_body(image="A" * 5000)), "application/xml", 413, "larger than the limit of 2000 bytes"),
    ],
    ids=["malformed", "dtd", "json", "oversized"],
)
async def test_bad_input_gets_a_clear_4xx_and_never_reaches_the_dsp(body, content_type, status, reason):
    dsp = RecordingDsp()
    client = await _client(dsp, max_body=2000)
    try:
        reply = await client.post(SERVICE_PATH, data=body, headers={"Content-Type": content_type})
        text = await reply.text()
    finally:
        await client.close()
    assert reply.status == status
    assert reason in text
    assert dsp.received == []


async def test_oversized_chunked_body_is_refused_with_413():
    dsp = RecordingDsp()
    client = await _client(dsp, max_body=2000)

    async def chunks():
        for _ in range(10):
            yield b"A" * 500

    try:
        reply = await client.post(SERVICE_PATH, data=chunks(), headers={"Content-Type": "application/xml"})
        text = await reply.text()
    finally:
        await client.close()
    assert reply.status == 413
    assert "larger than the limit of 2000 bytes" in text
    assert dsp.received == []


async def test_only_post_on_the_service_path():
    client = await _client(RecordingDsp())
    try:
        assert (await client.get(SERVICE_PATH)).status == 405
        assert (await client.post("/api/v1/other", data=b"<x/>")).status == 404
    finally:
        await client.close()



# -- DUIS answers for well-formed requests, routing, signatures ----------------------------------
import datetime as _dt  # noqa: E402

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402
from duis_schema import assert_valid  # noqa: E402

from emulator.dcc.duis.keystore import Keystore  # noqa: E402
from emulator.keys.store import KeyEntry, KeyUsage  # noqa: E402
from emulator.dcc.duis.signing import DuisSigner, RequestVerifier  # noqa: E402
from emulator.dcc.http_api import REASON_HEADER, WARNING_HEADER  # noqa: E402

USER = 0x90B3D51F30010000


def _test_entry(eui: int, serial: int) -> KeyEntry:
    """A throw-away TEST ONLY key and self-signed certificate naming ``eui``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "TEST ONLY"),
                      x509.NameAttribute(NameOID.X500_UNIQUE_IDENTIFIER, eui.to_bytes(8, "big").hex())])
    start = _dt.datetime(2020, 1, 1, tzinfo=_dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(serial).not_valid_before(start).not_valid_after(start.replace(year=2120))
            .sign(key, hashes.SHA256()))
    return KeyEntry.from_certificate(eui, KeyUsage.XML_SIGN, cert, key)


USER_KEY = _test_entry(USER, 1001)
OTHER_KEY = _test_entry(0x90B3D51F30030000, 1002)
DSP_KEY = _test_entry(0x90B3D51F30000002, 1003)
TRUSTED = RequestVerifier(Keystore([USER_KEY, OTHER_KEY]))


async def _post(path: str, body: bytes, **options) -> tuple[int, bytes, dict[str, str], RecordingDsp]:
    dsp = RecordingDsp()
    client = await _client(dsp, **options)
    try:
        reply = await client.post(path, data=body, headers={"Content-Type": "application/xml"})
        return reply.status, await reply.read(), dict(reply.headers), dsp
    finally:
        await client.close()


def _code(data: bytes) -> str:
    return etree.fromstring(data).findtext("sr:Header/sr:ResponseCode", namespaces=NS)


@pytest.mark.parametrize(("body", "code", "reason"), [
    (request_xml("11.1", update_body(version="123456789")), "E100", "FirmwareVersion"),
    (request_xml("11.1", update_body(devices="00-DB-12-34-56-78-90-A0 00-DB-12-34-56-78-90-A1")), "E100", "commas"),
    (request_xml("11.1", update_body(), command_variant=4), "E12", "CommandVariant"),
    (request_xml("11.2", "<sr:ReadFirmwareVersion><sr:ExecutionDateTime>2031-01-01T00:00:00Z"
                 "</sr:ExecutionDateTime></sr:ReadFirmwareVersion>"), "E12", "future-dated"),
], ids=["version", "space-separated", "cv-not-allowed", "future-dated-read"])
async def test_well_formed_but_invalid_requests_get_a_duis_error_response(body, code, reason):
    status, data, headers, dsp = await _post(SERVICE_PATH, body)
    assert status == 200 and _code(data) == code and reason in headers[REASON_HEADER]
    assert_valid(data)
    assert dsp.received == []


async def test_foreign_namespace_child_is_an_error_answer_not_a_crash():
    status, data, _, dsp = await _post(SERVICE_PATH, b'<sr:Request><x xmlns="http8//x"/></sr:Request>')
    assert status == 400 and b"Namespace prefix sr" in data and dsp.received == []


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"])
async def test_a_dtd_hidden_by_the_encoding_is_refused(encoding):
    doc = ('<?xml version="1.0"?><!DOCTYPE r [<!ENTITY e SYSTEM "file:///dev/zero">]>'
           '<sr:Request xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway">&e;</sr:Request>')
    status, data, _, dsp = await _post(SERVICE_PATH, doc.encode(encoding))
    assert status == 400 and b"DTD or entity" in data and b"/dev/zero" not in data and dsp.received == []


@pytest.mark.parametrize(("path", "file", "code"), [
    ("/api/v1/serviceS", "CS08_11.2_SUCCESS_REQUEST_DUIS.XML", "I99"),
    ("/api/v1/serviceT", "CS06_11.3_IMMEDIATE_SUCCESS_REQUEST_DUIS.XML", "I99"),
    ("/api/v1/serviceS", "11.4_UPDATE_PPMID_FIRMWARE_REQUEST_DUIS.XML", "E13"),
    ("/api/v1/serviceT", "CS08_11.2_SUCCESS_REQUEST_DUIS.XML", "E13"),
    ("/api/v1/serviceS", "CS06_11.3_IMMEDIATE_SUCCESS_REQUEST_DUIS.XML", "E13"),
])
async def test_dcc_boxed_routing(path, file, code):
    status, data, _, dsp = await _post(path, sample(file))
    assert status == 200 and _code(data).startswith(code[:2]) and (code == "E13") == (dsp.received == [])
    assert_valid(data)


async def test_service_d_still_takes_device_srs_with_a_warning():
    status, data, headers, dsp = await _post(SERVICE_PATH, sample("CS08_11.2_SUCCESS_REQUEST_DUIS.XML"))
    assert status == 200 and len(dsp.received) == 1 and "/api/v1/serviceS" in headers[WARNING_HEADER]


def _signed_request(key: KeyEntry) -> bytes:
    return DuisSigner(key).sign(request_xml("11.1", update_body()))


async def test_answers_are_signed_and_verify():
    status, data, _, _ = await _post(SERVICE_PATH, request_xml("11.1", update_body()), signer=DuisSigner(DSP_KEY))
    assert_valid(data)
    root = etree.fromstring(data)
    check = RequestVerifier(Keystore([DSP_KEY])).check(root, None)
    assert check.valid, check
    assert root.findtext(".//{*}X509SerialNumber") == "1003"


@pytest.mark.parametrize(("body", "require", "code", "runs"), [
    (lambda: _signed_request(USER_KEY), False, "W110401", True),  # RecordingDsp rejects one device
    (lambda: _signed_request(USER_KEY).replace(b"HvHuCwABPAA=", b"HvHuCwABPAB="), False, "E1", False),
    (lambda: _signed_request(OTHER_KEY), False, "E1", False),  # signed by someone else
    (lambda: request_xml("11.1", update_body()), False, "W110401", True),  # unsigned: accepted, warned
    (lambda: request_xml("11.1", update_body()), True, "E1", False),  # unsigned, signatures required
], ids=["valid", "tampered", "not-the-originators", "unsigned", "unsigned-required"])
async def test_request_signatures_are_verified_before_anything_runs(body, require, code, runs):
    status, data, headers, dsp = await _post(SERVICE_PATH, body(), verifier=TRUSTED, require_signatures=require)
    assert status == 200 and _code(data)[:2] == code[:2]
    assert bool(dsp.received) == runs
    if code == "E1":
        assert "signature" in headers[REASON_HEADER]


_SERIAL = "<ds:KeyInfo><ds:X509Data><ds:X509IssuerSerial><ds:X509IssuerName>CN=TEST ONLY</ds:X509IssuerName>" \
          "<ds:X509SerialNumber>1001</ds:X509SerialNumber></ds:X509IssuerSerial></ds:X509Data></ds:KeyInfo>"


@pytest.mark.parametrize("signature", [
    _SERIAL,  # no SignedInfo at all
    f"<ds:SignedInfo/><ds:SignatureValue>AAAA</ds:SignatureValue>{_SERIAL}",
    '<ds:SignedInfo><ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>'
    '<ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"/>'
    '<ds:Reference URI="http://example.invalid/x"><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>'
    f'<ds:DigestValue>AA==</ds:DigestValue></ds:Reference></ds:SignedInfo><ds:SignatureValue>!!</ds:SignatureValue>{_SERIAL}',
], ids=["no-signed-info", "empty-signed-info", "external-reference"])
async def test_a_malformed_signature_is_refused_not_a_crash(signature):
    body = request_xml("11.1", update_body()).replace(
        b"</sr:Request>", f'<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#">{signature}</ds:Signature></sr:Request>'.encode())
    status, data, headers, dsp = await _post(SERVICE_PATH, body, verifier=TRUSTED)
    assert status == 200 and _code(data) == "E1" and "signature" in headers[REASON_HEADER] and dsp.received == []


async def test_front_door_refusals_and_unsigned_requests_reach_the_timeline():
    events: list[tuple[str, dict]] = []
    dsp = RecordingDsp()
    client = await _client(dsp, verifier=TRUSTED, on_event=lambda name, **fields: events.append((name, fields)))
    try:
        await client.post("/api/v1/serviceT", data=sample("CS08_11.2_SUCCESS_REQUEST_DUIS.XML"))
        await client.post(SERVICE_PATH, data=request_xml("11.1", update_body()))
    finally:
        await client.close()
    (refused, fields), (unsigned, more) = events
    assert refused == "front_door_refused" and fields["response_code"] == "E13"
    assert unsigned == "unsigned_request" and more["signature"] == "absent"


async def test_unsigned_requests_warn_once_then_once_a_minute_with_a_count(caplog):
    """A User sending unsigned requests all day gets one WARNING a minute, not one a request;
    every request still reaches the timeline and carries the warning header."""
    clock = [1000.0]
    events: list[str] = []
    client = await _client(RecordingDsp(), verifier=TRUSTED, monotonic=lambda: clock[0],
                           on_event=lambda name, **fields: events.append(name))
    caplog.set_level("DEBUG", logger="emulator.dcc.http_api")
    try:
        for step in (0.0, 1.0, 1.0, 59.0):  # four requests: t = 1000, 1001, 1002, 1061
            clock[0] += step
            reply = await client.post(SERVICE_PATH, data=request_xml("11.1", update_body()))
            assert reply.status == 200 and "not signed" in reply.headers[WARNING_HEADER]
    finally:
        await client.close()
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING" and "not signed" in r.getMessage()]
    assert len(warnings) == 2
    assert "more unsigned" not in warnings[0]
    assert "2 more unsigned requests from this originator" in warnings[1]
    assert events.count("unsigned_request") == 4
