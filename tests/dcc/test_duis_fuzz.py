"""Fuzzing the DUIS parser: whatever arrives, the answer is a record or a DuisError naming what is
wrong, never another exception (which the front door would turn into HTTP 500), never a file or
network access, never a text that reveals the host."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_duis_helpers import request_xml, sample, update_body

from emulator.dcc.duis import DuisError, parse_request

SAMPLES = [sample("11.4_UPDATE_PPMID_FIRMWARE_REQUEST_DUIS.XML"), sample("CS06_11.3_FUTURE_DATED_SUCCESS_REQUEST_DUIS.XML"),
           sample("CS08_11.2_SUCCESS_REQUEST_DUIS.XML"), request_xml("11.1", update_body())]
NAMES = ["sr:Request", "sr:Header", "sr:Body", "sr:RequestID", "sr:CommandVariant", "sr:ServiceReference",
         "sr:ServiceReferenceVariant", "sr:UpdateFirmware", "sr:DeviceIDList", "sr:FirmwareImage", "x", "ds:Signature"]
TEXTS = ["11.1", "11.3", "8", "4", "00-DB-12-34-56-78-90-A0", "90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0:1",
         "&amp;", "]]>", "\u0000", "\U0001F600", "file:///dev/zero", ""]
HOSTILE = [b'<!DOCTYPE r [<!ENTITY e SYSTEM "file:///dev/zero">]>', b"<!ENTITY x 'y'>", b'<?xml-stylesheet href="http://x"?>',
           b'<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="file:///etc/passwd"/>', b"&e;", b"\xff\xfe"]


def _tree(depth: int):
    leaf = st.builds(lambda n, t: f"<{n}>{t}</{n}>", st.sampled_from(NAMES), st.sampled_from(TEXTS))
    if depth == 0:
        return leaf
    return st.one_of(leaf, st.builds(lambda n, kids: f"<{n}>{''.join(kids)}</{n}>", st.sampled_from(NAMES),
                                     st.lists(_tree(depth - 1), max_size=3)))


documents = st.one_of(
    # DUIS-shaped trees of random structure, in every encoding DUIS documents might come in
    st.builds(lambda body, version, enc: (
        f'<?xml version="1.0"?><sr:Request xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway" '
        f'xmlns:ds="http://www.w3.org/2000/09/xmldsig#" schemaVersion="{version}">{body}</sr:Request>').encode(enc),
        _tree(3), st.sampled_from(["5.4", "5.1", "x", ""]),
        st.sampled_from(["utf-8", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-be"])),
    # real samples with bytes cut, inserted or hostile constructs spliced in
    st.builds(lambda doc, at, cut, junk: doc[:at] + junk + doc[at + cut:],
              st.sampled_from(SAMPLES), st.integers(0, 600), st.integers(0, 40),
              st.one_of(st.sampled_from(HOSTILE), st.binary(max_size=12))),
    st.binary(max_size=200),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_parser_answers_every_document_with_a_record_or_a_duis_error(data):
    try:
        parse_request(data, max_size=1 << 20)
    except DuisError as error:
        text = str(error)
        assert "\n" not in text and len(text) < 600
        assert "/etc/passwd" not in text and "/dev/zero" not in text


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents, st.sampled_from(["/api/v1/serviceS", "/api/v1/serviceD", "/api/v1/serviceT"]))
def test_front_door_never_answers_500(data, path):
    import asyncio

    from aiohttp.test_utils import TestClient, TestServer

    from emulator.dcc.duis.security import DuisSecurity
    from emulator.dcc.http_api import create_app
    from emulator.dcc.messages import DspResponse, ResponseCode

    def submit(request):
        return DspResponse(request.header.request_id, request.header.service_reference_variant, ResponseCode.ACKNOWLEDGED)

    async def post() -> int:
        app = create_app(submit, max_body=1 << 20, **DuisSecurity.from_options().app_options())
        async with TestClient(TestServer(app)) as client:
            reply = await client.post(path, data=data, headers={"Content-Type": "application/xml"})
            await reply.read()
            return reply.status

    assert asyncio.run(post()) in (200, 400, 413)
