"""The DUIS HTTP front door, driven with aiohttp's test client."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from aiohttp.test_utils import TestClient, TestServer
from lxml import etree

from emulator.dcc.http_api import SERVICE_PATH, create_app
from emulator.dcc.messages import DspResponse, RejectionReason
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
            "W1" if devices else "I0",
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
    assert root.findtext("sr:Header/sr:ResponseCode", namespaces=NS) == "W1"
    assert root.findtext("sr:Header/sr:ResponseDateTime", namespaces=NS) == "2024-05-06T07:08:09.000Z"
    listed = root.findtext(
        "sr:Body/sr:ResponseMessage/sr:DSPUpdatePPMIDFirmwareWarning/sr:NotCommissionedDeviceIDList", namespaces=NS
    )
    assert listed == "00-DB-12-34-56-78-90-A4"


async def test_async_submit_is_awaited():
    received = []

    async def submit(request: ServiceRequest) -> DspResponse:
        received.append(request)
        return DspResponse(request.header.request_id, "11.2", "I0")

    client = await _client(submit)
    try:
        reply = await client.post(SERVICE_PATH, data=sample("CS08_11.2_SUCCESS_REQUEST_DUIS.XML"))
        assert reply.status == 200
        assert b"<sr:ResponseCode>I0</sr:ResponseCode>" in await reply.read()
    finally:
        await client.close()
    assert len(received) == 1


@pytest.mark.parametrize(
    ("body", "content_type", "status", "reason"),
    [
        (request_xml("11.1", update_body(version="XYZ")), "application/xml", 400,
         "invalid DUIS request: Body/UpdateFirmware/FirmwareVersion: 'XYZ' is not 8 hex digits"),
        (b"<not xml", "text/xml", 400, "malformed XML"),
        (b'<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>', "application/xml", 400, "DTD or entity"),
        (b'{"service": "11.1"}', "application/json", 415, "Content-Type 'application/json' is not XML"),
        (request_xml("11.1", update_body(image="A" * 5000)), "application/xml", 413, "larger than the limit of 2000 bytes"),
    ],
    ids=["bad-field", "malformed", "dtd", "json", "oversized"],
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

