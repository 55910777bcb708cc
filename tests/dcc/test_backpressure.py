"""The front door's limits: past ``max_in_flight`` a 503 with Retry-After at once, never a silent queue;
a request not handed to the DSP within its deadline is answered 503 and never executed."""

from __future__ import annotations

import asyncio
import threading

from aiohttp.test_utils import TestClient, TestServer

from emulator.dcc import http_api
from emulator.dcc.http_api import SERVICE_PATH, create_app
from emulator.dcc.messages import DspResponse, ResponseCode
from emulator.dcc.service_requests import ServiceRequest
from test_duis_helpers import sample

BODY = sample("11.4_UPDATE_PPMID_FIRMWARE_REQUEST_DUIS.XML")


class HeldParser:
    """Holds every parse in its worker thread until released: requests stay "in progress"."""

    def __init__(self, monkeypatch) -> None:
        self.release = threading.Event()
        self.entered = threading.Semaphore(0)
        real = http_api.parse_document

        def parse(*args, **kwargs):
            self.entered.release()
            self.release.wait(10)
            return real(*args, **kwargs)

        monkeypatch.setattr(http_api, "parse_document", parse)


def accept(executed: list[str]):
    def submit(sr: ServiceRequest) -> DspResponse:
        executed.append(sr.header.request_id)
        return DspResponse(sr.header.request_id, "11.4", ResponseCode.ACKNOWLEDGED)
    return submit


async def test_past_the_limit_a_request_gets_503_with_retry_after_and_the_first_still_runs(monkeypatch):
    held = HeldParser(monkeypatch)
    executed: list[str] = []
    async with TestClient(TestServer(create_app(accept(executed), max_in_flight=1, retry_after=2, inline_limit=0))) as client:
        first = asyncio.create_task(client.post(SERVICE_PATH, data=BODY, headers={"Content-Type": "application/xml"}))
        await asyncio.to_thread(held.entered.acquire, True, 10)
        second = await client.post(SERVICE_PATH, data=BODY, headers={"Content-Type": "application/xml"})
        assert second.status == 503
        assert second.headers["Retry-After"] == "2"
        assert "limit is 1" in await second.text()
        held.release.set()
        reply = await first
        assert reply.status == 200
        assert len(executed) == 1


async def test_a_request_past_its_deadline_is_answered_503_and_never_executed(monkeypatch):
    """The parse takes "an hour" on the front door's monotonic clock: too late to execute."""
    now = [0.0]
    real = http_api.parse_document

    def slow_parse(*args, **kwargs):
        now[0] += 3600.0
        return real(*args, **kwargs)

    monkeypatch.setattr(http_api, "parse_document", slow_parse)
    executed: list[str] = []
    app = create_app(accept(executed), request_deadline=10.0, monotonic=lambda: now[0])
    async with TestClient(TestServer(app)) as client:
        reply = await client.post(SERVICE_PATH, data=BODY, headers={"Content-Type": "application/xml"})
        assert reply.status == 503
        assert "not executed" in await reply.text()
        assert executed == []
        now[0] = 0.0
        monkeypatch.setattr(http_api, "parse_document", real)
        in_time = await client.post(SERVICE_PATH, data=BODY, headers={"Content-Type": "application/xml"})
        assert in_time.status == 200 and len(executed) == 1


async def test_requests_reach_the_dsp_in_arrival_order_though_parsed_in_parallel(monkeypatch):
    """The first request's parse is held while the second's runs: the second still waits its turn."""
    real = http_api.parse_document
    first_entered, release_first, second_parsed = threading.Event(), threading.Event(), threading.Event()
    calls = [0]
    lock = threading.Lock()

    def parse(*args, **kwargs):
        with lock:
            calls[0] += 1
            mine = calls[0]
        if mine == 1:
            first_entered.set()
            release_first.wait(10)
        root = real(*args, **kwargs)
        if mine == 2:
            second_parsed.set()
        return root

    monkeypatch.setattr(http_api, "parse_document", parse)
    executed: list[str] = []
    bodies = [BODY.replace(b":1000</sr:RequestID>", f":{1000 + n}</sr:RequestID>".encode()) for n in (1, 2)]
    # inline_limit=0: every body is parsed in a worker thread, as a large one (an 11.1's image) is
    async with TestClient(TestServer(create_app(accept(executed), inline_limit=0))) as client:
        first = asyncio.create_task(client.post(SERVICE_PATH, data=bodies[0], headers={"Content-Type": "application/xml"}))
        await asyncio.to_thread(first_entered.wait, 10)
        second = asyncio.create_task(client.post(SERVICE_PATH, data=bodies[1], headers={"Content-Type": "application/xml"}))
        await asyncio.to_thread(second_parsed.wait, 10)
        for _ in range(20):  # let the second request go as far as it may (worker threads, the loop)
            await asyncio.to_thread(lambda: None)
        assert executed == []
        release_first.set()
        assert (await first).status == 200 and (await second).status == 200
    assert [rid.rsplit(":", 1)[1] for rid in executed] == ["1001", "1002"]
