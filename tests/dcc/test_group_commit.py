"""Group commit: an answer goes out only once what its request committed is fsynced; the requests
of one moment share one fsync, made off the event loop; the outbox's commits are fsynced too."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading

from aiohttp.test_utils import TestClient, TestServer
from test_duis_helpers import sample

from emulator.dcc import group_commit
from emulator.dcc.group_commit import WalSync
from emulator.dcc.http_api import SERVICE_PATH, create_app
from emulator.dcc.messages import DspResponse, MessageKind, ResponseCode, UserMessage
from emulator.dcc.outbox import Outbox
from emulator.dcc.service_requests import ServiceRequest
from emulator.dcc.store import Store

BODY = sample("11.4_UPDATE_PPMID_FIRMWARE_REQUEST_DUIS.XML")


class HeldFsync:
    """os.fsync of the write-ahead log by the group-commit thread, counted and held until released."""

    def __init__(self, monkeypatch) -> None:
        self.calls = 0
        self.entered = threading.Event()
        self.release = threading.Event()
        self.release.set()
        real = os.fsync

        def fsync(fd: int) -> None:
            if threading.current_thread().name.startswith("wal-sync") and \
                    os.readlink(f"/proc/self/fd/{fd}").endswith("-wal"):
                self.calls += 1
                self.entered.set()
                self.release.wait(10)
            real(fd)

        monkeypatch.setattr(group_commit.os, "fsync", fsync)


def _committing_store(tmp_path) -> Store:
    store = Store(tmp_path / "dcc.sqlite")
    with store.transaction() as conn:
        conn.execute("CREATE TABLE t (n INTEGER)")
    return store


async def test_commits_made_while_an_fsync_runs_share_the_next_one(tmp_path, monkeypatch):
    held = HeldFsync(monkeypatch)
    store = _committing_store(tmp_path)
    try:
        held.release.clear()
        first = store.durable()
        await asyncio.to_thread(held.entered.wait, 10)  # the first fsync is under way
        waiting = []
        for n in range(10):
            with store.transaction() as conn:
                conn.execute("INSERT INTO t VALUES (?)", (n,))
            waiting.append(store.durable())
        await asyncio.sleep(0)
        assert not first.done() and not any(w.done() for w in waiting)
        held.release.set()
        await asyncio.wait_for(asyncio.gather(first, *waiting), 10)
        assert held.calls == 2  # one for the first request, one for the ten that came during it
    finally:
        store.close()


async def test_the_answer_waits_for_the_fsync_and_the_next_request_runs_meanwhile(tmp_path, monkeypatch):
    held = HeldFsync(monkeypatch)
    store = _committing_store(tmp_path)
    executed: list[str] = []
    both = asyncio.Event()

    def submit(sr: ServiceRequest) -> DspResponse:
        with store.transaction() as conn:
            conn.execute("INSERT INTO t VALUES (1)")
        executed.append(sr.header.request_id)
        if len(executed) == 2:
            both.set()
        return DspResponse(sr.header.request_id, "11.4", ResponseCode.ACKNOWLEDGED)

    bodies = [BODY.replace(b":1000</sr:RequestID>", f":{1000 + n}</sr:RequestID>".encode()) for n in (1, 2)]
    try:
        async with TestClient(TestServer(create_app(submit, durable=store.durable))) as client:
            held.release.clear()
            first = asyncio.create_task(client.post(SERVICE_PATH, data=bodies[0],
                                                    headers={"Content-Type": "application/xml"}))
            await asyncio.to_thread(held.entered.wait, 10)
            second = asyncio.create_task(client.post(SERVICE_PATH, data=bodies[1],
                                                     headers={"Content-Type": "application/xml"}))
            await asyncio.wait_for(both.wait(), 10)  # the DSP ran the second request while the first's fsync ran
            assert not first.done() and not second.done()  # but nobody has an answer yet
            held.release.set()
            replies = await asyncio.wait_for(asyncio.gather(first, second), 10)
            assert [r.status for r in replies] == [200, 200]
    finally:
        store.close()


async def test_outbox_committed_means_fsynced(tmp_path, monkeypatch):
    held = HeldFsync(monkeypatch)
    outbox = Outbox(tmp_path / "outbox.sqlite")
    try:
        before = held.calls
        outbox.put(UserMessage("m-1", MessageKind.RESPONSE, "11.2", 1.0, request_id="r:1"))
        await asyncio.wait_for(outbox.committed(), 10)
        assert held.calls > before
        rows = sqlite3.connect(tmp_path / "outbox.sqlite").execute("SELECT message_id FROM outbox").fetchall()
        assert rows == [("m-1",)]
    finally:
        await outbox.aclose()


def test_the_sync_thread_leaves_when_idle_and_checkpoints_the_log(tmp_path):
    path = tmp_path / "dcc.sqlite"
    store = _committing_store(tmp_path)
    try:
        for n in range(50):
            with store.transaction() as conn:
                conn.execute("INSERT INTO t VALUES (?)", (n,))
        sync = WalSync.acquire(str(path))
        try:
            sync.sync()
            assert sync.syncs >= 1
            thread = sync._thread
            if thread is not None:
                thread.join(5)  # it leaves IDLE_EXIT_S after its last request
            assert sync._thread is None
            assert sync.checkpoints >= 1  # the log was copied into the database before it left
        finally:
            sync.release()
        other = sqlite3.connect(path)
        assert other.execute("SELECT COUNT(*) FROM t").fetchone() == (50,)
        other.close()
    finally:
        store.close()
