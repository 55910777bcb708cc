"""Store.write: a one-statement change joins an open transaction (no savepoint) and is a
transaction of its own outside one, with the all-or-nothing guarantees of Store.transaction."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from emulator.dcc.sat import SatEvent, ServiceAuditTrail
from emulator.dcc.store import Store


def _rows(path: Path) -> list[tuple[str, str | None]]:
    """What another connection sees: only committed rows."""
    with sqlite3.connect(path) as other:
        return other.execute("SELECT event, code FROM sat ORDER BY seq").fetchall()


def test_a_write_outside_a_transaction_commits_on_its_own(tmp_path: Path) -> None:
    path = tmp_path / "dsp.db"
    store = Store(path)
    sat = ServiceAuditTrail(store)
    sat.append(1.0, SatEvent.DSP_ACCEPTED, code="A")
    assert _rows(path) == [("DspAccepted", "A")]
    store.close()


def test_writes_inside_a_transaction_commit_with_it_and_roll_back_with_it(tmp_path: Path) -> None:
    path = tmp_path / "dsp.db"
    store = Store(path)
    sat = ServiceAuditTrail(store)
    with store.transaction():
        sat.append(1.0, SatEvent.DSP_ACCEPTED, code="A")
        sat.append(2.0, SatEvent.DSP_REJECTED, code="B")
        assert _rows(path) == []  # nothing visible before the transaction commits
    assert _rows(path) == [("DspAccepted", "A"), ("DspRejected", "B")]
    with pytest.raises(RuntimeError):
        with store.transaction():
            sat.append(3.0, SatEvent.DSP_ACCEPTED, code="C")
            raise RuntimeError("the step failed")
    assert _rows(path) == [("DspAccepted", "A"), ("DspRejected", "B")]
    store.close()


def test_a_failed_write_caught_inside_a_transaction_leaves_the_rest_of_it(tmp_path: Path) -> None:
    path = tmp_path / "dsp.db"
    store = Store(path)
    sat = ServiceAuditTrail(store)
    with store.transaction() as conn:
        sat.append(1.0, SatEvent.DSP_ACCEPTED, code="A")
        with pytest.raises(sqlite3.IntegrityError):
            with store.write() as joined:
                joined.execute("INSERT INTO sat (time, event, details) VALUES (2.0, NULL, '{}')")  # event NOT NULL
        assert conn.execute("SELECT COUNT(*) FROM sat").fetchone()[0] == 1
        sat.append(3.0, SatEvent.DSP_REJECTED, code="C")
    assert _rows(path) == [("DspAccepted", "A"), ("DspRejected", "C")]
    store.close()


def test_a_transaction_waits_for_another_writer_and_then_commits(tmp_path, monkeypatch):
    """Another connection (the outbox's thread, ``outbox retry``) holding the write lock for a
    moment delays a transaction in short steps; it does not fail it. The other writer commits
    during the transaction's second wait (a stand-in for time.sleep: no real waiting)."""
    import sqlite3

    import emulator.dcc.store as store_module

    path = tmp_path / "dsp.db"
    store = Store(path)
    store.connection.execute("CREATE TABLE t (x)")
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 2:
            other.execute("COMMIT")

    monkeypatch.setattr(store_module.time, "sleep", sleep)
    with store.transaction() as conn:
        conn.execute("INSERT INTO t VALUES (1)")
    assert store.connection.execute("SELECT x FROM t").fetchall() == [(1,)]
    assert waits == [20e-6, 40e-6]  # steps far below SQLite's own 1 ms busy-handler nap
    other.close()
    store.close()


def test_a_database_locked_for_too_long_names_the_file(tmp_path, monkeypatch):
    import sqlite3

    import emulator.dcc.store as store_module
    from emulator.dcc.store import StoreError

    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_S", 0.05)
    path = tmp_path / "dsp.db"
    store = Store(path)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    with pytest.raises(StoreError, match=r"dsp\.db: another writer held the database locked"):
        with store.transaction():
            pass
    other.execute("ROLLBACK")
    with store.transaction() as conn:  # usable again once the lock is free
        conn.execute("CREATE TABLE t (x)")
    other.close()
    store.close()
