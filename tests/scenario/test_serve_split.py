"""``serve --workers 2``: the core (DSP, hubs, devices, SQLite) and the edge (HTTP, DUIS, outbox)
keep every promise of the single process: DCC's samples over HTTP with valid DUIS both ways,
anti-replay, 503 past the limit, and, with real processes, a killed edge started again without
losing what was accepted, and an edge that does not outlive its core."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sqlite3
import sys
import time
from pathlib import Path

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestClient, TestServer
from serve_modes import SERVE_MODES, make_service

from emulator.dcc.sat import SatEvent
from emulator.scenario.spec import parse_scenario

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "dcc"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from crash import Receiver, start_serve  # noqa: E402
from duis_schema import assert_valid  # noqa: E402

SAMPLES = ROOT / "tests" / "dcc" / "data" / "duis"
XML = {"Content-Type": "application/xml"}
_CODE = re.compile(rb"<sr:ResponseCode>([^<]+)</sr:ResponseCode>")
_RID = re.compile(rb"(<sr:RequestID>[^<]*:)(\d+)(</sr:RequestID>)")


def fast_premises():
    return parse_scenario({
        "han": {"latency_s": 0.0},
        "premises": [{"template": "default", "devices": [
            {"eui64": "00-DB-12-34-56-78-90-A4", "ota": {"verify_delay_s": 0.05, "initial_query_delay_s": 0.05}},
            {"eui64": "00-DB-12-34-56-78-90-A0", "ota": {"verify_delay_s": 0.05, "initial_query_delay_s": 0.05}},
        ]}],
    }, source="test")


def with_counter(name: str, counter: int) -> bytes:
    return _RID.sub(lambda m: m.group(1) + str(counter).encode() + m.group(3), (SAMPLES / name).read_bytes(), count=1)


def code_of(body: bytes) -> str:
    match = _CODE.search(body)
    return match.group(1).decode() if match else "?"


class User:
    """The DCC User's endpoint: every message, by its X-DCC-Message-ID."""

    def __init__(self) -> None:
        self.messages: dict[str, bytes] = {}
        self.arrived = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        self.messages[request.headers["X-DCC-Message-ID"]] = await request.read()
        self.arrived.set()
        return web.Response()

    async def wait_for(self, prefixes: tuple[str, ...], timeout: float = 30.0) -> None:
        async def seen() -> None:
            while not all(any(mid.startswith(p) for mid in self.messages) for p in prefixes):
                self.arrived.clear()
                await self.arrived.wait()
        await asyncio.wait_for(seen(), timeout)


@pytest.mark.parametrize("mode", SERVE_MODES)
async def test_dcc_samples_11_1_to_11_4_are_answered_and_their_messages_delivered_as_valid_duis(tmp_path, mode):
    user = User()
    user_app = web.Application()
    user_app.router.add_post("/user", user.handle)
    async with TestServer(user_app) as user_server:
        service = await make_service(mode, fast_premises(), db=str(tmp_path / "serve.db"),
                                     user_endpoint=str(user_server.make_url("/user")), journal=None)
        outbox = await service.start_outbox()
        try:
            async with TestClient(TestServer(service.app)) as client:
                answers = {}
                for counter, (path, name) in enumerate([
                        ("serviceD", "11.4_UPDATE_PPMID_FIRMWARE_REQUEST_DUIS.XML"),
                        ("serviceD", "11.1_UPDATE_FIRMWARE_REQUEST_DUIS.XML"),
                        ("serviceS", "ECS52_11.2_SUCCESS_REQUEST_DUIS.XML"),
                        ("serviceD", "CS06_11.3_FUTURE_DATED_SUCCESS_REQUEST_DUIS.XML")], start=2001):
                    reply = await client.post(f"/api/v1/{path}", data=with_counter(name, counter), headers=XML)
                    assert reply.status == 200, name
                    answers[name] = await reply.read()
                    assert_valid(answers[name], f"answer to {name}")
                assert {name: code_of(body) for name, body in answers.items()} == {
                    "11.4_UPDATE_PPMID_FIRMWARE_REQUEST_DUIS.XML": "I99",
                    "11.1_UPDATE_FIRMWARE_REQUEST_DUIS.XML": "I99",
                    "ECS52_11.2_SUCCESS_REQUEST_DUIS.XML": "I99",
                    "CS06_11.3_FUTURE_DATED_SUCCESS_REQUEST_DUIS.XML": "I99",
                }
                await user.wait_for(("N49", "11.2-", "11.3-"))
        finally:
            outbox.cancel()
            await asyncio.gather(outbox, return_exceptions=True)
            service.close()
    for message_id, body in user.messages.items():
        assert_valid(body, f"delivered {message_id}")


@pytest.mark.parametrize("mode", SERVE_MODES)
async def test_a_replayed_request_id_is_refused_with_e1_and_runs_once(mode):
    service = await make_service(mode, fast_premises(), db=":memory:", journal=None)
    try:
        async with TestClient(TestServer(service.app)) as client:
            body = with_counter("ECS52_11.2_SUCCESS_REQUEST_DUIS.XML", 5000)
            first = await client.post("/api/v1/serviceS", data=body, headers=XML)
            again = await client.post("/api/v1/serviceS", data=body, headers=XML)
            assert code_of(await first.read()) == "I99"
            assert code_of(await again.read()) == "E1"
            assert "counter" in again.headers["X-CH-Emulator-Reason"]
        accepted = [e for e in service.system.dsp.sat.entries()
                    if e.event is SatEvent.DSP_ACCEPTED and (e.request_id or "").endswith(":5000")]
        assert len(accepted) == 1  # the first ran; the replay never reached the device
    finally:
        service.close()


async def test_the_edge_hands_the_next_request_to_the_core_while_an_answer_is_held_and_503s_past_the_limit():
    """The core holds the first answer (as ``--timing realistic`` does): the second request still
    reaches the DSP (requests of one moment share one fsync), the third is past ``max_in_flight``."""
    service = await make_service("core+edge", fast_premises(), db=":memory:", journal=None, max_in_flight=2)
    release = asyncio.Event()
    held: list[str] = []

    async def hold(response) -> None:
        held.append(response.request_id)
        await release.wait()

    assert service.link is not None
    service.link.hold = hold
    try:
        async with TestClient(TestServer(service.app)) as client:
            first = asyncio.create_task(client.post(
                "/api/v1/serviceS", data=with_counter("ECS52_11.2_SUCCESS_REQUEST_DUIS.XML", 6001), headers=XML))
            while not held:
                await asyncio.sleep(0.01)
            second = asyncio.create_task(client.post(
                "/api/v1/serviceS", data=with_counter("CS08_11.2_SUCCESS_REQUEST_DUIS.XML", 6002), headers=XML))
            while len(held) < 2:
                await asyncio.sleep(0.01)
            assert not first.done()  # the second ran through the DSP while the first's answer waits
            third = await client.post(
                "/api/v1/serviceS", data=with_counter("ECS52_11.2_SUCCESS_REQUEST_DUIS.XML", 6003), headers=XML)
            assert third.status == 503 and third.headers["Retry-After"] == "1"
            release.set()
            replies = [await first, await second]
            assert [code_of(await r.read()) for r in replies] == ["I99", "I99"]
        assert not any(e.request_id.endswith(":6003") for e in service.system.dsp.sat.entries())
    finally:
        service.close()


async def test_a_message_the_edge_never_stored_is_handed_to_the_next_edge_with_its_id(tmp_path):
    """The DSP committed the 11.2 response in its ledger, but the edge went away before its outbox
    stored it: the next core + edge on the database deliver it, under the same message ID."""
    db = str(tmp_path / "serve.db")
    first = await make_service("core+edge", fast_premises(), db=db, journal=None)
    try:
        assert first.edge is not None
        first.edge.outbox.put = lambda message: False  # lost on its way in
        async with TestClient(TestServer(first.app)) as client:
            reply = await client.post("/api/v1/serviceS", headers=XML,
                                      data=with_counter("ECS52_11.2_SUCCESS_REQUEST_DUIS.XML", 8001))
            assert code_of(await reply.read()) == "I99"
        for _ in range(300):
            if any(m.code == "11.2" for m in first.system.messages):
                break
            await asyncio.sleep(0.01)
        response = next(m for m in first.system.messages if m.code == "11.2")
    finally:
        first.close()
    user = User()
    user_app = web.Application()
    user_app.router.add_post("/user", user.handle)
    async with TestServer(user_app) as user_server:
        second = await make_service("core+edge", fast_premises(), db=db, journal=None,
                                    user_endpoint=str(user_server.make_url("/user")))
        outbox = await second.start_outbox()
        try:
            await user.wait_for((response.message_id,))
        finally:
            outbox.cancel()
            await asyncio.gather(outbox, return_exceptions=True)
            second.close()
    assert b":8001<" in user.messages[response.message_id]


# -- two real processes ------------------------------------------------------------------------

def _edge_pid(core_pid: int) -> int | None:
    try:
        with open(f"/proc/{core_pid}/task/{core_pid}/children") as f:
            children = [int(pid) for pid in f.read().split()]
    except OSError:
        return None
    return children[0] if children else None


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


async def _wait(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


def _delivered_reads(db: Path, receiver: Receiver) -> set[str]:
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT message_id, record FROM outbox WHERE code = '11.2'").fetchall()
    finally:
        conn.close()
    return {json.loads(record)["request_id"] for mid, record in rows if receiver.counts[mid]}


async def test_a_killed_edge_is_started_again_and_an_accepted_request_is_still_answered(tmp_path):
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/user", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    endpoint = f"http://127.0.0.1:{runner.addresses[0][1]}/user"
    db = tmp_path / "serve.db"
    process, base_url = await asyncio.to_thread(start_serve, db, endpoint, tmp_path / "serve.log",
                                                ["--workers", "2"])
    try:
        first_edge = _edge_pid(process.pid)
        assert first_edge is not None
        async with ClientSession() as session:
            accepted = []
            for counter in (7001, 7002):
                body = with_counter("ECS52_11.2_SUCCESS_REQUEST_DUIS.XML", counter)
                async with session.post(f"{base_url}/api/v1/serviceS", data=body, headers=XML) as reply:
                    assert code_of(await reply.read()) == "I99"
                accepted.append(f"90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0:{counter}")
                if counter == 7001:
                    os.kill(first_edge, signal.SIGKILL)  # just after the answer: its response may be unsent
                    await _wait(lambda: _edge_pid(process.pid) not in (None, first_edge))
            # the same port throughout: the core holds the listening socket
            await _wait(lambda: set(accepted) <= _delivered_reads(db, receiver))
        core_edge = _edge_pid(process.pid)
        assert core_edge is not None
        process.kill()  # kill -9 of the core: the edge must not outlive it (it would hold the port)
        await asyncio.to_thread(process.wait, 10)
        await _wait(lambda: not _alive(core_edge), timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        await runner.cleanup()
    log = (tmp_path / "serve.log").read_text()
    assert "edge_restarted" in log and "Traceback" not in log


def test_the_link_carries_its_records_and_refuses_anything_else():
    import pickle

    from emulator.dcc.duis import parse_request_root
    from emulator.dcc.duis.xmlsafe import parse_document
    from emulator.scenario.serve_link import LinkError, Submit, decode, encode

    request = parse_request_root(parse_document((SAMPLES / "11.1_UPDATE_FIRMWARE_REQUEST_DUIS.XML").read_bytes()))
    frame = Submit(3, request)
    assert decode(encode(frame)[4:]) == frame  # the image, the header, the device list: all of it
    with pytest.raises(LinkError, match="system, which the link does not carry"):
        decode(pickle.dumps(os.system))
    with pytest.raises(LinkError, match="not a link record"):
        decode(pickle.dumps({"ticket": 3}))


def test_an_edge_that_cannot_start_is_one_line_and_exit_2_not_a_hang(tmp_path, monkeypatch, capsys):
    from emulator.cli import main
    from emulator.scenario import serve_split

    monkeypatch.setattr(serve_split, "EDGE_MODULE", "emulator.no_such_edge")  # python -m fails at once
    assert main(["serve", "--workers", "2", "--db", str(tmp_path / "s.db"), "--port", "0", "--journal", ""]) == 2
    err = capsys.readouterr().err
    assert "the edge process ended 3 times before it was ready" in err


def test_workers_2_needs_a_database_file(capsys):
    from emulator.cli import main

    assert main(["serve", "--workers", "2", "--db", ":memory:", "--port", "0"]) == 2
    assert "--workers 2 needs a database file" in capsys.readouterr().err
