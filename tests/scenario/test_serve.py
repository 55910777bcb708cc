"""`ch-emulator serve`: DUIS over HTTP in real time, alerts delivered to the User's endpoint."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

from aiohttp import web
import pytest
from aiohttp.test_utils import TestClient, TestServer
from serve_modes import SERVE_MODES, make_service

from emulator.cli import main
from emulator.scenario.spec import parse_scenario

SAMPLES = Path(__file__).resolve().parents[1] / "dcc" / "data" / "duis"
PPMID = 0x00DB1234567890A4


def fast_premises():
    """The default premises with no HAN latency and a short silent phase: real time, but quick."""
    return parse_scenario({
        "han": {"latency_s": 0.0},
        "premises": [{"template": "default", "devices": [
            {"eui64": "00-DB-12-34-56-78-90-A4", "ota": {"verify_delay_s": 0.05, "initial_query_delay_s": 0.05}},
        ]}],
    }, source="test")


@pytest.mark.parametrize("mode", SERVE_MODES)
async def test_dcc_sample_11_4_runs_to_n49_delivered_to_the_user(tmp_path, mode):
    received: list[tuple[str, bytes]] = []
    got_n49 = asyncio.Event()

    async def user(request: web.Request) -> web.Response:
        body = await request.read()
        received.append((request.headers["X-DCC-Message-ID"], body))
        if request.headers["X-DCC-Message-ID"].startswith("N49"):
            got_n49.set()
        return web.Response(status=200)

    user_app = web.Application()
    user_app.router.add_post("/alerts", user)
    journal = io.StringIO()
    async with TestServer(user_app) as user_server:
        service = await make_service(mode, fast_premises(), db=str(tmp_path / "emulator.db"),
                                     user_endpoint=str(user_server.make_url("/alerts")), journal=journal)
        outbox = await service.start_outbox()
        try:
            async with TestClient(TestServer(service.app)) as client:
                xml = (SAMPLES / "11.4_UPDATE_PPMID_FIRMWARE_REQUEST_DUIS.XML").read_bytes()
                reply = await client.post("/api/v1/serviceD", data=xml, headers={"Content-Type": "application/xml"})
                assert reply.status == 200
                assert b"<sr:ResponseCode>I99</sr:ResponseCode>" in await reply.read()
                await asyncio.wait_for(got_n49.wait(), timeout=30)
        finally:
            outbox.cancel()
            await asyncio.gather(outbox, return_exceptions=True)
            device = service.system.dsp.smi.get(PPMID)
            service.close()
    assert device.firmware_version == 0xACDCACDC  # the SMI took the version of DCC's sample image
    ids = [message_id for message_id, _ in received]
    assert len(ids) == len(set(ids))
    codes = [line["code"] for line in map(json.loads, journal.getvalue().splitlines())]
    for code in ("N59", "N61", "N62", "N39", "N49"):
        assert code in codes and any(i.startswith(code) for i in ids)
    n49 = next(body for message_id, body in received if message_id.startswith("N49"))
    assert b"00-DB-12-34-56-78-90-A4" in n49


@pytest.mark.parametrize("mode", SERVE_MODES)
async def test_bad_xml_is_a_400_and_nothing_is_applied(tmp_path, mode):
    service = await make_service(mode, fast_premises(), db=":memory:", journal=None)
    try:
        async with TestClient(TestServer(service.app)) as client:
            reply = await client.post("/api/v1/serviceD", data=b"<sr:Request", headers={"Content-Type": "application/xml"})
            assert reply.status == 400
            assert "invalid DUIS request" in await reply.text()
        assert service.system.messages == []
        assert service.system.dsp.sat.entries() == []
    finally:
        service.close()


def test_bad_scenario_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[han]\nlatency = 1\n")
    assert main(["serve", "--scenario", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "han: unknown key(s) latency" in err and "Traceback" not in err
