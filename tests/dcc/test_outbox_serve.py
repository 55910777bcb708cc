"""``serve`` with a lane per DCC User: the gas supplier's dead endpoint never holds up the importer's."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from emulator.scenario.serve import build_service
from emulator.scenario.spec import parse_scenario

SAMPLES = Path(__file__).resolve().parent / "data" / "duis"
IMPORT_SUPPLIER = "90-B3-D5-1F-30-01-00-00"  # sends DCC's sample 11.4
GAS_SUPPLIER = "90-B3-D5-1F-30-02-00-00"  # gets the N59


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_a_dead_user_endpoint_does_not_delay_another_users_alerts(tmp_path):
    received: list[str] = []
    got_n49 = asyncio.Event()

    async def importer(request: web.Request) -> web.Response:
        await request.read()
        received.append(request.headers["X-DCC-Message-ID"])
        if received[-1].startswith("N49"):
            got_n49.set()
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/import", importer)
    scenario = parse_scenario({"han": {"latency_s": 0.0}, "premises": [{"template": "default", "devices": [
        {"eui64": "00-DB-12-34-56-78-90-A4", "ota": {"verify_delay_s": 0.05, "initial_query_delay_s": 0.05}}]}]},
        source="test")
    async with TestServer(app) as user_server:
        service = build_service(scenario, db=str(tmp_path / "serve.db"), journal=None, endpoints={
            IMPORT_SUPPLIER: str(user_server.make_url("/import")),
            GAS_SUPPLIER: f"http://127.0.0.1:{_closed_port()}/gas"})
        outbox_task = await service.start_outbox()
        try:
            async with TestClient(TestServer(service.app)) as client:
                xml = (SAMPLES / "11.4_UPDATE_PPMID_FIRMWARE_REQUEST_DUIS.XML").read_bytes()
                reply = await client.post("/api/v1/serviceD", data=xml, headers={"Content-Type": "application/xml"})
                assert reply.status == 200
                await asyncio.wait_for(got_n49.wait(), timeout=30)
            held = await service.outbox.aentries(pending_only=True)
        finally:
            outbox_task.cancel()
            await asyncio.gather(outbox_task, return_exceptions=True)
            await service.outbox.aclose()
            service.system.store.close()
    assert [e.code for e in held] == ["N59"] and held[0].recipient == GAS_SUPPLIER
    assert held[0].attempts >= 1 and "Connect" in (held[0].last_error or "")
    assert [m[:3] for m in received] == ["N61", "N62", "N39", "N49"]
