"""``ch-emulator outbox list|retry|purge``: what a test engineer sees and re-drives."""

from __future__ import annotations

import json

import pytest
from outbox_fakes import ALICE, ALICE_URL, BOB, BOB_URL, Attempts, Behaviour, FakeUsers, Running, drive, message

from emulator.cli import main
from emulator.dcc.outbox import Backoff, DeliveryPolicy, Outbox
from emulator.runtime.clock import VirtualClock


def _outbox(clock: VirtualClock, users: FakeUsers, database: str) -> Outbox:
    policy = DeliveryPolicy(max_attempts=2, backoff=Backoff(initial=1, jitter=0), rescan_interval=5.0)
    return Outbox(database, endpoints={ALICE: ALICE_URL, BOB: BOB_URL}, clock=clock, now=clock.now,
                  transport=users, policy=policy)


async def _held(tmp_path) -> tuple[str, VirtualClock, FakeUsers]:
    """A database holding one dead-lettered (Alice), one pending (Alice) and one delivered (Bob) message."""
    database = str(tmp_path / "serve.db")
    clock = VirtualClock(start=1_800_000_000.0)
    users = FakeUsers(clock, {ALICE_URL: Behaviour(status=503)})
    outbox = _outbox(clock, users, database)
    async with Running(outbox):
        outbox.put(message(0, ALICE))
        outbox.put(message(1, ALICE))
        outbox.put(message(2, BOB))
        await drive(clock, 1.5)  # message 0: two attempts, dead; message 1: one attempt, waiting
    await outbox.aclose()
    return database, clock, users


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


async def test_list_shows_pending_and_dead_messages_with_their_errors(tmp_path, capsys):
    database, _, _ = await _held(tmp_path)
    assert main(["outbox", "list", "--db", database]) == 0
    out = capsys.readouterr().out
    assert message(0).message_id in out and message(1).message_id in out and message(2).message_id not in out
    assert "dead" in out and "HTTP 503" in out and "2 message(s)" in out
    assert main(["outbox", "list", "--db", database, "--dead", "--json"]) == 0
    (dead,) = _json_lines(capsys.readouterr().out)
    assert (dead["message_id"], dead["state"], dead["attempts"], dead["recipient"]) == (
        message(0).message_id, "dead", 2, ALICE)
    assert main(["outbox", "list", "--db", database, "--all", "--json"]) == 0
    assert [m["state"] for m in _json_lines(capsys.readouterr().out)] == ["dead", "pending", "delivered"]


async def test_retry_re_drives_a_dead_message_into_the_running_outbox(tmp_path, capsys):
    database, clock, users = await _held(tmp_path)
    users.behaviour[ALICE_URL] = Behaviour()  # Alice's endpoint is back
    outbox = _outbox(clock, users, database)
    attempts = Attempts(outbox)
    async with Running(outbox):
        await drive(clock, 1)  # the pending message goes when its back-off ends
        await attempts.wait(1)
        assert main(["outbox", "retry", "--db", database, "--dead"]) == 0
        assert "re-drove 1 message(s)" in capsys.readouterr().out
        await drive(clock, 5)  # the next rescan takes it in
        await attempts.wait(2)
    entries = await outbox.aentries()
    await outbox.aclose()
    assert [a.message_id for a in attempts.seen] == [message(1).message_id, message(0).message_id]
    assert all(a.delivered for a in attempts.seen)
    assert [e.state for e in entries] == ["delivered"] * 3
    assert users.posts[-1].body == users.posts[0].body  # the dead one is sent as it was first stored


async def test_retry_of_a_stopped_outbox_is_delivered_by_the_next_one(tmp_path, capsys):
    database, clock, users = await _held(tmp_path)
    # the dead one, and the pending one now rather than after its back-off
    assert main(["outbox", "retry", "--db", database, "--id", message(0).message_id, message(1).message_id]) == 0
    users.behaviour[ALICE_URL] = Behaviour()
    outbox = _outbox(clock, users, database)
    assert await outbox.deliver_pending() == 2
    await outbox.aclose()


async def test_purge_deletes_delivered_then_dead_and_never_pending(tmp_path, capsys):
    database, _, _ = await _held(tmp_path)
    assert main(["outbox", "purge", "--db", database, "--id", message(1).message_id]) == 2
    err = capsys.readouterr().err
    assert f"{message(1).message_id} still pending" in err and "Traceback" not in err
    assert main(["outbox", "purge", "--db", database]) == 0
    assert "purged 1 message(s)" in capsys.readouterr().out
    assert main(["outbox", "purge", "--db", database, "--dead"]) == 0
    capsys.readouterr()
    assert main(["outbox", "list", "--db", database, "--all", "--json"]) == 0
    assert [m["message_id"] for m in _json_lines(capsys.readouterr().out)] == [message(1).message_id]


@pytest.mark.parametrize("argv, error", [
    (["list", "--db", "{tmp}/nothing.db"], "nothing.db: no such database"),
    (["list", "--db", "{tmp}/text.db"], "text.db: not an SQLite database"),
    (["list", "--db", "{tmp}/empty.db"], "empty.db: holds no outbox"),
    (["retry", "--db", "{tmp}/serve.db"], "say which messages: --dead"),
    (["retry", "--db", "{tmp}/serve.db", "--id", "N59-FFFFFFFFFFFFFFFF"], "no message N59-FFFFFFFFFFFFFFFF"),
])
async def test_mistakes_are_one_line_and_exit_2(tmp_path, capsys, argv, error):
    import sqlite3

    await _held(tmp_path)
    (tmp_path / "text.db").write_text("not a database, just text\n" * 100)
    sqlite3.connect(tmp_path / "empty.db").execute("CREATE TABLE other (x)").connection.close()
    assert main(["outbox", *[a.format(tmp=tmp_path) for a in argv]]) == 2
    err = capsys.readouterr().err
    assert error in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("option, error", [
    (["--recipient-endpoint", "90-B3-D5-1F-30-02-00-00"], "expected ID=http://host:port/path"),
    (["--max-attempts", "0"], "max_attempts out of range"),
    (["--attempt-timeout", "-1"], "attempt_timeout out of range"),
])
def test_serve_refuses_bad_delivery_options(option, error, capsys):
    assert main(["serve", "--db", ":memory:", *option]) == 2
    err = capsys.readouterr().err
    assert error in err and "Traceback" not in err


def test_serve_delivery_options_reach_the_outbox():
    from emulator.cli import build_parser
    from emulator.dcc.outbox_cli import delivery_settings

    args = build_parser().parse_args([
        "serve", "--recipient-endpoint", "90-b3-d5-1f-30-02-00-00=http://127.0.0.1:9001/gas",
        "--attempt-timeout", "120", "--max-attempts", "7", "--max-backoff", "30", "--sat-keep-rows", "1000"])
    endpoints, policy = delivery_settings(args)
    assert endpoints == {"90-B3-D5-1F-30-02-00-00": "http://127.0.0.1:9001/gas"}
    assert (policy.attempt_timeout, policy.max_attempts, policy.backoff.maximum, policy.sat_keep_rows) == (120, 7, 30, 1000)
