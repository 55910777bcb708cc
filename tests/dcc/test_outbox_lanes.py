"""Outbox delivery in virtual time: lanes, attempt timeout, back-off, dead-letter, supervision."""

from __future__ import annotations

import logging
import random

import pytest
from outbox_fakes import ALICE, ALICE_URL, BOB, BOB_URL, Attempts, Behaviour, FakeUsers, Running, drive, message, settle

from emulator.dcc.outbox import Backoff, DeliveryPolicy, Outbox
from emulator.runtime.clock import VirtualClock

NO_JITTER = Backoff(initial=1, factor=2, maximum=60, jitter=0)


def _outbox(clock: VirtualClock, users: FakeUsers, database: str = ":memory:", **policy: object) -> Outbox:
    return Outbox(database, endpoints={ALICE: ALICE_URL, BOB: BOB_URL}, clock=clock, now=clock.now,
                  transport=users, policy=DeliveryPolicy(**policy))  # type: ignore[arg-type]


async def test_a_slow_endpoint_gets_each_message_once_and_one_at_a_time():
    clock = VirtualClock()
    users = FakeUsers(clock, {ALICE_URL: Behaviour(delay=45.0)})  # slower than the old 10 s timeout
    outbox = _outbox(clock, users)
    async with Running(outbox):
        for n in range(3):
            outbox.put(message(n))
        await drive(clock, 200, step=1)
    await outbox.aclose()
    assert [(p.message_id, p.at) for p in users.posts] == [
        (message(0).message_id, 0.0), (message(1).message_id, 45.0), (message(2).message_id, 90.0)]
    assert outbox.pending_count() == 0


async def test_an_attempt_that_times_out_is_abandoned_before_the_next_one():
    clock = VirtualClock()
    users = FakeUsers(clock, {ALICE_URL: Behaviour(delay=45.0)})
    outbox = _outbox(clock, users, attempt_timeout=30.0, backoff=NO_JITTER, max_attempts=3)
    attempts = Attempts(outbox)
    async with Running(outbox):
        outbox.put(message(0))
        await drive(clock, 120, step=0.5)
    await outbox.aclose()
    assert [p.at for p in users.posts] == [0.0, 31.0, 63.0]  # 30 s timeout, then 1 s and 2 s back-off
    assert users.most_in_flight[message(0).message_id] == 1
    assert users.answered == []
    assert [a.error for a in attempts.seen] == ["no answer within 30 s"] * 3
    assert attempts.seen[-1].dead


async def test_a_dead_endpoint_does_not_hold_up_a_healthy_one():
    clock = VirtualClock()
    users = FakeUsers(clock, {ALICE_URL: Behaviour(refuse=True)})
    outbox = _outbox(clock, users, backoff=NO_JITTER)
    async with Running(outbox):
        for n in range(10):
            outbox.put(message(n, ALICE if n % 2 == 0 else BOB))
        await drive(clock, 1)
        assert [p.message_id for p in users.to(BOB_URL)] == [message(n).message_id for n in range(1, 10, 2)]
        assert {p.at for p in users.to(BOB_URL)} == {0.0}
        # Alice's lane is stuck on its oldest message, in order: the others wait behind it
        assert {p.message_id for p in users.to(ALICE_URL)} == {message(0).message_id}
        assert outbox.pending_count() == 5
    await outbox.aclose()


async def test_backoff_schedule_is_kept_across_a_restart(tmp_path):
    database = str(tmp_path / "outbox.db")
    clock = VirtualClock()
    users = FakeUsers(clock, {ALICE_URL: Behaviour(refuse=True)})
    outbox = _outbox(clock, users, database, backoff=NO_JITTER)
    async with Running(outbox):
        outbox.put(message(0))
        await drive(clock, 8)
    await outbox.aclose()
    assert [p.at for p in users.posts] == [0.0, 1.0, 3.0, 7.0]  # next one due at 15

    later = VirtualClock(start=clock.now())  # the same wall time, a new process
    users.clock = later
    users.behaviour[ALICE_URL] = Behaviour()
    restarted = _outbox(later, users, database, backoff=NO_JITTER)
    (entry,) = await restarted.aentries()
    assert (entry.attempts, entry.next_attempt) == (4, 15.0)
    async with Running(restarted):
        await drive(later, 6.5)
        assert len(users.posts) == 4  # not before the stored time
        await drive(later, 1)
    await restarted.aclose()
    assert [p.at for p in users.posts][4:] == [15.0]
    assert restarted.pending_count() == 0


async def test_delivery_resumes_within_the_backoff_cap_of_the_endpoint_coming_back():
    clock = VirtualClock()
    users = FakeUsers(clock, {ALICE_URL: Behaviour(refuse=True)})
    outbox = _outbox(clock, users, backoff=Backoff(initial=1, factor=2, maximum=10, jitter=0.2))
    async with Running(outbox):
        outbox.put(message(0))
        await drive(clock, 600, step=0.5)  # ten minutes down
        users.behaviour[ALICE_URL] = Behaviour()
        await drive(clock, 11, step=0.5)
    await outbox.aclose()
    assert users.answered and users.answered[0].at - 600 <= 10
    assert outbox.pending_count() == 0


def test_jitter_stays_within_its_bounds_and_repeats_with_the_seed():
    backoff = Backoff(initial=1, factor=2, maximum=30, jitter=0.25)
    first = [backoff.delay(n, random.Random(7)) for n in range(1, 12)]
    again = [backoff.delay(n, random.Random(7)) for n in range(1, 12)]
    other = [backoff.delay(n, random.Random(8)) for n in range(1, 12)]
    assert first == again and first != other
    for n, delay in enumerate(first, start=1):
        base = min(30, 2 ** (n - 1))
        assert base * 0.75 <= delay <= min(30, base * 1.25)
    with pytest.raises(ValueError, match="jitter"):
        Backoff(jitter=1.5)


async def test_dead_letter_after_max_attempts_frees_the_lane():
    clock = VirtualClock()
    users = FakeUsers(clock, {ALICE_URL: Behaviour(status=500)})
    outbox = _outbox(clock, users, backoff=NO_JITTER, max_attempts=3)
    async with Running(outbox):
        outbox.put(message(0))
        outbox.put(message(1))
        await drive(clock, 3.5)
        users.behaviour[ALICE_URL] = Behaviour()
        await drive(clock, 1)
    entries = await outbox.aentries()
    await outbox.aclose()
    # the next message is tried the moment the first is dead-lettered (t=3), then at 4 it gets through
    assert [(p.message_id, p.at) for p in users.posts] == [
        (message(0).message_id, 0.0), (message(0).message_id, 1.0), (message(0).message_id, 3.0),
        (message(1).message_id, 3.0), (message(1).message_id, 4.0)]
    assert [(e.state, e.attempts, e.last_error) for e in entries] == [("dead", 3, "HTTP 500"), ("delivered", 2, None)]
    assert outbox.pending_count() == 0


async def test_a_message_keeps_its_id_and_bytes_across_a_restart(tmp_path):
    database = str(tmp_path / "outbox.db")
    clock = VirtualClock()
    users = FakeUsers(clock, {ALICE_URL: Behaviour(status=503)})
    outbox = _outbox(clock, users, database, backoff=NO_JITTER)
    async with Running(outbox):
        outbox.put(message(0))
        await drive(clock, 0.5)
    await outbox.aclose()
    users.behaviour[ALICE_URL] = Behaviour()
    restarted = _outbox(clock, users, database, backoff=NO_JITTER)
    assert restarted.put(message(0)) is False  # the DSP raising the same alert again stores nothing
    async with Running(restarted):
        await drive(clock, 2)
    await restarted.aclose()
    first, second = users.posts
    assert first.message_id == second.message_id == message(0).message_id
    assert first.body == second.body


async def test_a_crash_in_delivery_is_logged_and_the_lane_restarts(caplog):
    clock = VirtualClock()
    users = FakeUsers(clock, {ALICE_URL: Behaviour(crash=True)})
    outbox = _outbox(clock, users, restart_delay=2.0)
    with caplog.at_level(logging.ERROR, logger="emulator.dcc.outbox"):
        async with Running(outbox):
            outbox.put(message(0))
            await drive(clock, 1.5)
            assert users.answered == [] and outbox.crashes == 1
            await drive(clock, 1)
    await outbox.aclose()
    assert [p.at for p in users.posts] == [0.0, 2.0]
    assert users.answered[0].message_id == message(0).message_id
    assert "crashed; restarting" in caplog.text and "injected crash in delivery" in caplog.text


async def test_prune_removes_old_delivered_messages_only():
    clock = VirtualClock()
    users = FakeUsers(clock, {ALICE_URL: Behaviour(status=500)})
    outbox = _outbox(clock, users, backoff=NO_JITTER, max_attempts=1, keep_delivered_s=3600.0,
                     keep_delivered_rows=None, prune_interval=1e9)  # pruned here by hand only
    async with Running(outbox):
        outbox.put(message(0))  # dead-lettered at once
        for n in range(1, 4):
            outbox.put(message(n, BOB))
        await drive(clock, 1800, step=30)
        outbox.put(message(4, BOB))
        await drive(clock, 1801, step=60)
    assert await outbox.prune() == 3  # delivered before t=1 s; the one delivered at 1800 s is young enough
    kept = await outbox.aentries()
    assert [(e.message_id, e.state) for e in kept] == [(message(0).message_id, "dead"), (message(4).message_id, "delivered")]
    assert outbox.put(message(1, BOB)) is True  # forgotten once pruned: a late repeat is delivered again
    await outbox.aclose()


async def test_prune_keeps_at_most_the_newest_delivered_rows():
    clock = VirtualClock()
    users = FakeUsers(clock)
    outbox = _outbox(clock, users, keep_delivered_s=None, keep_delivered_rows=2, prune_interval=1e9)
    async with Running(outbox):
        for n in range(5):
            outbox.put(message(n, BOB))
        await drive(clock, 1)
    assert await outbox.prune() == 3
    assert [e.message_id for e in await outbox.aentries()] == [message(3).message_id, message(4).message_id]
    await outbox.aclose()


async def test_the_running_outbox_prunes_on_its_schedule():
    clock = VirtualClock()
    users = FakeUsers(clock)
    outbox = _outbox(clock, users, keep_delivered_s=10.0, prune_interval=60.0)
    async with Running(outbox):
        outbox.put(message(0, BOB))
        await drive(clock, 59)
        assert len(await outbox.aentries()) == 1
        await drive(clock, 6)  # the first rescan after 60 s prunes
        for _ in range(100):  # the prune runs in the writer thread: wait for it, a bounded number of reads
            if not (remaining := await outbox.aentries()):
                break
    await outbox.aclose()
    assert remaining == []


async def test_sat_rotation_moves_the_oldest_entries_to_the_archive(tmp_path):
    import json
    import sqlite3

    from emulator.dcc.sat import SatEvent, ServiceAuditTrail
    from emulator.dcc.store import Store

    database = str(tmp_path / "serve.db")
    store = Store(database)
    sat = ServiceAuditTrail(store)
    for n in range(10):
        sat.append(float(n), SatEvent.SERVICE_REQUEST, request_id=f"r{n}", details={"n": n})
    clock = VirtualClock()
    outbox = _outbox(clock, FakeUsers(clock), database, sat_keep_rows=4)
    assert await outbox.rotate_sat() == 6
    assert await outbox.rotate_sat() == 0
    await outbox.aclose()
    assert [e.request_id for e in sat.entries()] == ["r6", "r7", "r8", "r9"]
    archived = [json.loads(line) for line in open(database + ".sat-archive.jsonl")]
    assert [(a["request_id"], a["details"]["n"]) for a in archived] == [(f"r{n}", n) for n in range(6)]
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        with store.transaction() as conn:
            conn.execute("DELETE FROM sat")
    store.close()
