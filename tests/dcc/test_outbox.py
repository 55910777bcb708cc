"""Durable outbox: idempotent storage, JSON journal, at-least-once delivery with back-off."""

from __future__ import annotations

import asyncio
import io
import json
import sqlite3

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from lxml import etree
from outbox_fakes import Attempts

from emulator.dcc.duis import user_message_to_json
from emulator.dcc.messages import MessageKind, UserMessage
from emulator.dcc.outbox import MESSAGE_ID_HEADER, Backoff, DeliveryPolicy, Outbox, clock_sleep
from emulator.runtime.clock import VirtualClock

EMU_MESSAGE_ID = "{urn:ch-emulator:duis}MessageID"
PPMID = 0x00DB1234567890A4


def _message(n: int, kind: MessageKind = MessageKind.DCC_ALERT, code: str = "N59",
             recipient: str | None = None) -> UserMessage:
    return UserMessage(f"msg-{n}", kind, code, float(n), device=PPMID, recipient=recipient, details={"n": n})


OLD_SCHEMA = """
CREATE TABLE outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, message_id TEXT NOT NULL UNIQUE, kind TEXT NOT NULL,
    code TEXT NOT NULL, record TEXT NOT NULL, xml BLOB NOT NULL, created REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, delivered REAL
);
CREATE INDEX outbox_pending ON outbox (seq) WHERE delivered IS NULL;
"""


async def _settle() -> None:
    """Let every task that can run, run (no time passes: the clock is virtual)."""
    for _ in range(20):
        await asyncio.sleep(0)


class FlakyUser:
    """A DCC User endpoint on 127.0.0.1 that answers 503 to its first ``failures`` requests."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.received: list[tuple[str, bytes]] = []
        self.accepted: list[str] = []
        self._arrived = asyncio.Condition()
        app = web.Application()
        app.router.add_post("/alerts", self._handle)
        self.server = TestServer(app, host="127.0.0.1")

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        message_id = request.headers[MESSAGE_ID_HEADER]
        self.received.append((message_id, body))
        async with self._arrived:
            self._arrived.notify_all()
        if len(self.received) <= self.failures:
            return web.Response(status=503)
        self.accepted.append(message_id)
        return web.Response(status=204)

    async def wait_received(self, count: int) -> None:
        """Until ``count`` POSTs have arrived (a guard of 30 s wall time, not a delay)."""
        async def arrived() -> None:
            async with self._arrived:
                await self._arrived.wait_for(lambda: len(self.received) >= count)

        await asyncio.wait_for(arrived(), timeout=30)

    @property
    def url(self) -> str:
        return str(self.server.make_url("/alerts"))

    async def __aenter__(self) -> "FlakyUser":
        await self.server.start_server()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.server.close()


def test_put_is_idempotent_on_message_id_and_journals_once():
    journal = io.StringIO()
    with Outbox(":memory:", journal=journal) as outbox:
        assert outbox.put(_message(1)) is True
        assert outbox.put(_message(2, MessageKind.DEVICE_ALERT, "0x8F8B")) is True
        assert outbox.put(_message(1)) is False
        entries = outbox.entries()
        assert [e.message_id for e in entries] == ["msg-1", "msg-2"]
        assert outbox.pending_count() == 2
    lines = [json.loads(line) for line in journal.getvalue().splitlines()]
    assert lines == [user_message_to_json(_message(1)), user_message_to_json(_message(2, MessageKind.DEVICE_ALERT, "0x8F8B"))]


def test_journal_path_is_appended_to(tmp_path):
    path = tmp_path / "messages.jsonl"
    with Outbox(":memory:", journal=path) as outbox:
        outbox.put(_message(1))
    with Outbox(":memory:", journal=path) as outbox:
        outbox.put(_message(2))
    assert [json.loads(line)["message_id"] for line in path.read_text().splitlines()] == ["msg-1", "msg-2"]


def test_stored_xml_carries_the_message_id_and_a_rising_counter():
    with Outbox(":memory:") as outbox:
        for n in range(3):
            outbox.put(_message(n))
        entries = outbox.entries()
    counters = []
    for entry in entries:
        root = etree.fromstring(entry.xml)
        assert b"urn:ch-emulator" not in entry.xml  # DUIS only: the ID travels in X-DCC-Message-ID
        response_id = root.findtext("{*}Header/{*}ResponseID")
        counters.append(int(response_id.rsplit(":", 1)[1]))
    assert counters == sorted(counters) and len(set(counters)) == 3


async def test_a_refused_post_is_retried_after_the_backoff_with_the_same_bytes():
    clock = VirtualClock()
    policy = DeliveryPolicy(backoff=Backoff(initial=0.5, factor=2, maximum=60, jitter=0))
    async with FlakyUser(failures=2) as user:
        outbox = Outbox(":memory:", endpoint=user.url, clock=clock, now=clock.now, policy=policy)
        attempts = Attempts(outbox)
        runner = asyncio.create_task(outbox.run())
        try:
            outbox.put(_message(1))
            outbox.put(_message(2))
            await attempts.wait(1)
            clock.advance(0.49)
            await _settle()
            assert len(user.received) == 1  # nothing before the back-off is over
            clock.advance(0.01)
            await attempts.wait(2)
            assert attempts.seen[1].next_attempt == 1.5  # 0.5 s, then 1 s
            clock.advance(1.0)
            await attempts.wait(4)
        finally:
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
        entries = await outbox.aentries()
        await outbox.aclose()
    assert [mid for mid, _ in user.received] == ["msg-1"] * 3 + ["msg-2"]
    assert {body for mid, body in user.received if mid == "msg-1"} == {entries[0].xml}
    assert user.accepted == ["msg-1", "msg-2"]
    assert [(e.attempts, e.state, e.last_error) for e in entries] == [(3, "delivered", None), (1, "delivered", None)]


async def test_new_outbox_on_the_same_database_delivers_what_was_left(tmp_path):
    database = tmp_path / "outbox.sqlite"
    with Outbox(database) as first:  # no endpoint: stores only, like a hub stopped before delivery
        first.put(_message(1))
        first.put(_message(2))
        stored = [e.xml for e in first.entries()]
    async with FlakyUser(failures=0) as user:
        second = Outbox(database, endpoint=user.url)
        assert second.put(_message(1)) is False  # still known after the restart
        assert await second.deliver_pending() == 2
        assert second.pending_count() == 0
        await second.aclose()
        third = Outbox(database, endpoint=user.url)
        assert await third.deliver_pending() == 0
        await third.aclose()
    assert [body for _, body in user.received] == stored


async def test_run_delivers_messages_put_while_it_runs():
    async with FlakyUser(failures=0) as user:
        outbox = Outbox(":memory:", endpoint=user.url)
        runner = asyncio.create_task(outbox.run())
        try:
            await asyncio.sleep(0)
            outbox.put(_message(7))
            await user.wait_received(1)
        finally:
            runner.cancel()
            with pytest.raises(asyncio.CancelledError):
                await runner
        assert outbox.pending_count() == 0
        await outbox.aclose()
    assert user.accepted == ["msg-7"]


async def test_an_outbox_written_before_the_lanes_opens_and_delivers_per_recipient(tmp_path):
    database = tmp_path / "old.sqlite"
    conn = sqlite3.connect(database)
    conn.executescript(OLD_SCHEMA)
    for n, recipient in ((1, "90-B3-D5-1F-30-02-00-00"), (2, None)):
        record = user_message_to_json(_message(n, recipient=recipient))
        conn.execute("INSERT INTO outbox (message_id, kind, code, record, xml, created) VALUES (?, ?, ?, ?, ?, ?)",
                     (record["message_id"], "dcc_alert", "N59", json.dumps(record), b"<old/>", 0.0))
    conn.commit()
    conn.close()
    async with FlakyUser(failures=0) as user:
        outbox = Outbox(database, endpoints={"90-B3-D5-1F-30-02-00-00": user.url})
        assert await outbox.deliver_pending() == 1  # the one with no recipient has no endpoint
        entries = await outbox.aentries()
        await outbox.aclose()
    assert [(e.message_id, e.recipient, e.state) for e in entries] == [
        ("msg-1", "90-B3-D5-1F-30-02-00-00", "delivered"), ("msg-2", "", "pending")]
    assert user.received == [("msg-1", b"<old/>")]


def test_backoff_grows_then_caps_and_rejects_nonsense():
    backoff = Backoff(initial=2, factor=2, maximum=10)
    assert [backoff.delay(n) for n in range(1, 6)] == [2, 4, 8, 10, 10]
    with pytest.raises(ValueError, match="initial > 0"):
        Backoff(initial=0)


async def test_clock_sleep_waits_on_virtual_time():
    clock = VirtualClock()
    sleeper = asyncio.create_task(clock_sleep(clock)(30))
    await asyncio.sleep(0)
    clock.advance(29)
    await asyncio.sleep(0)
    assert not sleeper.done()
    clock.advance(1)
    await asyncio.wait_for(sleeper, timeout=5)
    assert clock.now() == 30


async def test_a_locked_database_delays_the_commit_not_the_event_loop(tmp_path):
    database = tmp_path / "serve.db"
    outbox = Outbox(database)
    other = sqlite3.connect(database, isolation_level=None)  # e.g. `ch-emulator outbox retry` mid-write
    other.execute("BEGIN IMMEDIATE")
    try:
        assert outbox.put(_message(1)) is True  # returns at once although the file is locked
        commit = asyncio.ensure_future(outbox.committed())
        for _ in range(200):  # the loop keeps running meanwhile; the commit cannot happen yet
            await asyncio.sleep(0)
        assert not commit.done()
    finally:
        other.execute("COMMIT")
        other.close()
    await asyncio.wait_for(commit, timeout=30)  # SQLITE_BUSY was retried in the writer thread
    assert [e.message_id for e in await outbox.aentries()] == ["msg-1"]
    await outbox.aclose()
