"""Durable outbox: idempotent storage, JSON journal, at-least-once delivery with back-off."""

from __future__ import annotations

import asyncio
import io
import json
import socket

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from lxml import etree

from emulator.dcc.duis import user_message_to_json
from emulator.dcc.messages import MessageKind, UserMessage
from emulator.dcc.outbox import MESSAGE_ID_HEADER, Backoff, Outbox, clock_sleep
from emulator.runtime.clock import VirtualClock

EMU_MESSAGE_ID = "{urn:ch-emulator:duis}MessageID"
PPMID = 0x00DB1234567890A4


def _message(n: int, kind: MessageKind = MessageKind.DCC_ALERT, code: str = "N59") -> UserMessage:
    return UserMessage(f"msg-{n}", kind, code, float(n), device=PPMID, details={"n": n})


class FlakyUser:
    """A DCC User endpoint on 127.0.0.1 that answers 503 to its first ``failures`` requests."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.received: list[tuple[str, bytes]] = []
        self.accepted: list[str] = []
        self.got_one = asyncio.Event()
        app = web.Application()
        app.router.add_post("/alerts", self._handle)
        self.server = TestServer(app, host="127.0.0.1")

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        message_id = request.headers[MESSAGE_ID_HEADER]
        self.received.append((message_id, body))
        if len(self.received) <= self.failures:
            return web.Response(status=503)
        self.accepted.append(message_id)
        self.got_one.set()
        return web.Response(status=204)

    @property
    def url(self) -> str:
        return str(self.server.make_url("/alerts"))

    async def __aenter__(self) -> "FlakyUser":
        await self.server.start_server()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.server.close()


class RecordingSleep:
    """Returns at once, remembering each back-off delay asked for."""

    def __init__(self, give_up_after: int | None = None) -> None:
        self.delays: list[float] = []
        self.give_up_after = give_up_after

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        if self.give_up_after is not None and len(self.delays) >= self.give_up_after:
            raise asyncio.CancelledError
        await asyncio.sleep(0)


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


async def test_delivery_retries_with_exponential_backoff_until_accepted():
    sleep = RecordingSleep()
    async with FlakyUser(failures=3) as user:
        with Outbox(":memory:", endpoint=user.url, sleep=sleep, backoff=Backoff(initial=0.5, factor=2, maximum=60)) as outbox:
            outbox.put(_message(1))
            outbox.put(_message(2))
            assert await outbox.deliver_pending() == 2
            entries = outbox.entries()
    assert sleep.delays == [0.5, 1.0, 2.0]
    assert [mid for mid, _ in user.received] == ["msg-1"] * 4 + ["msg-2"]
    first_bodies = {body for mid, body in user.received if mid == "msg-1"}
    assert first_bodies == {entries[0].xml}  # every retry sends the same bytes
    assert user.accepted == ["msg-1", "msg-2"]
    assert [(e.attempts, e.delivered is not None, e.last_error) for e in entries] == [(4, True, None), (1, True, None)]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_endpoint_down_keeps_messages_pending_and_records_the_error():
    sleep = RecordingSleep(give_up_after=3)
    url = f"http://127.0.0.1:{_closed_port()}/alerts"
    with Outbox(":memory:", endpoint=url, sleep=sleep, backoff=Backoff(initial=1, factor=3, maximum=5)) as outbox:
        outbox.put(_message(1))
        with pytest.raises(asyncio.CancelledError):
            await outbox.deliver_pending()
        (entry,) = outbox.entries()
    assert sleep.delays == [1, 3, 5]
    assert entry.delivered is None and entry.attempts == 3
    assert "Connect" in entry.last_error


async def test_new_outbox_on_the_same_database_delivers_what_was_left(tmp_path):
    database = tmp_path / "outbox.sqlite"
    with Outbox(database) as first:  # no endpoint: stores only, like a hub stopped before delivery
        first.put(_message(1))
        first.put(_message(2))
        stored = [e.xml for e in first.entries()]
    async with FlakyUser(failures=0) as user:
        with Outbox(database, endpoint=user.url, sleep=RecordingSleep()) as second:
            assert second.put(_message(1)) is False  # still known after the restart
            assert await second.deliver_pending() == 2
            assert second.pending_count() == 0
        with Outbox(database, endpoint=user.url, sleep=RecordingSleep()) as third:
            assert await third.deliver_pending() == 0
    assert [body for _, body in user.received] == stored


async def test_run_delivers_messages_put_while_it_runs():
    async with FlakyUser(failures=1) as user:
        with Outbox(":memory:", endpoint=user.url, sleep=RecordingSleep()) as outbox:
            runner = asyncio.create_task(outbox.run())
            try:
                await asyncio.sleep(0)
                outbox.put(_message(7))
                await asyncio.wait_for(user.got_one.wait(), timeout=30)
            finally:
                runner.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await runner
            assert outbox.pending_count() == 0
    assert user.accepted == ["msg-7"]


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
