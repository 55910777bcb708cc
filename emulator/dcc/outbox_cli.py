"""``ch-emulator outbox list|retry|purge --db PATH``: see and re-drive what the outbox holds.

Works on the database of a stopped or a running ``serve`` (SQLite locking keeps the two apart; a
running outbox takes re-driven messages back within its ``rescan_interval``). Also the delivery
options ``serve`` takes (:func:`add_delivery_options`), so they are defined once.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from .outbox import _ENTRY_COLUMNS, Backoff, DeliveryPolicy, OutboxEntry, entry_from_row


_DEFAULT = DeliveryPolicy()


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("outbox", help="list, re-drive or purge the messages held for DCC Users")
    actions = parser.add_subparsers(dest="outbox_action", metavar="ACTION", required=True)
    for name, func, text in (
        ("list", _list, "list pending and dead-lettered messages (--all: delivered ones too)"),
        ("retry", _retry, "re-drive dead-lettered messages (--dead, or --id ...), or retry pending ones now"),
        ("purge", _purge, "delete delivered messages (default), dead-lettered ones (--dead) or named ones (--id)"),
    ):
        action = actions.add_parser(name, help=text, description=text)
        action.add_argument("--db", required=True, metavar="PATH", help="the database serve --db wrote")
        action.add_argument("--dead", action="store_true", help="only dead-lettered messages")
        action.add_argument("--id", dest="ids", nargs="+", action="extend", metavar="MESSAGE_ID",
                            help="only these messages")
        if name == "list":
            action.add_argument("--all", action="store_true", help="delivered messages too")
            action.add_argument("--json", action="store_true", help="one JSON object per message")
        action.set_defaults(func=_reporting_database_errors(func))


def _reporting_database_errors(action: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """An SQLite failure (locked for too long, disk full) is one line naming the file, not a traceback."""
    def run(args: argparse.Namespace) -> int:
        from emulator.errors import UserError

        try:
            return action(args)
        except sqlite3.Error as exc:
            raise UserError(f"{args.db}: {exc}") from None

    return run


# -- serve's options ---------------------------------------------------------------------------

def add_delivery_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--recipient-endpoint", metavar="ID=URL", action="append", default=[],
                        help="messages for DCC User ID go to URL instead of --user-endpoint (repeatable)")
    parser.add_argument("--attempt-timeout", type=float, metavar="S", default=_DEFAULT.attempt_timeout,
                        help=f"seconds one POST may take (default {_DEFAULT.attempt_timeout:g})")
    parser.add_argument("--max-attempts", type=int, metavar="N", default=_DEFAULT.max_attempts,
                        help=f"dead-letter a message after N failed attempts (default {_DEFAULT.max_attempts})")
    parser.add_argument("--max-backoff", type=float, metavar="S", default=_DEFAULT.backoff.maximum,
                        help=f"longest wait between two attempts (default {_DEFAULT.backoff.maximum:g})")
    parser.add_argument("--keep-delivered", type=float, metavar="DAYS", default=_DEFAULT.keep_delivered_s / 86400
                        if _DEFAULT.keep_delivered_s else None,
                        help="delete delivered messages older than this (default 7)")
    parser.add_argument("--sat-keep-rows", type=int, metavar="N",
                        help="rotate the SAT down to its newest N entries (default: keep all)")
    parser.add_argument("--sat-archive", metavar="FILE",
                        help="JSON lines file for rotated SAT entries (default: DB.sat-archive.jsonl)")


def delivery_settings(args: argparse.Namespace) -> tuple[dict[str, str], DeliveryPolicy]:
    """``(endpoints, policy)`` from the options above; a bad value is a :class:`UserError`."""
    from emulator.errors import UserError

    endpoints: dict[str, str] = {}
    for item in args.recipient_endpoint:
        recipient, sep, url = item.partition("=")
        if not sep or not recipient or not url.startswith(("http://", "https://")):
            raise UserError(f"--recipient-endpoint {item!r}: expected ID=http://host:port/path")
        endpoints[recipient.strip().upper()] = url
    try:
        backoff = Backoff(maximum=args.max_backoff, initial=min(_DEFAULT.backoff.initial, args.max_backoff))
        policy = DeliveryPolicy(
            attempt_timeout=args.attempt_timeout, max_attempts=args.max_attempts, backoff=backoff,
            keep_delivered_s=None if args.keep_delivered is None else args.keep_delivered * 86400,
            sat_keep_rows=args.sat_keep_rows, sat_archive=args.sat_archive)
    except ValueError as exc:
        raise UserError(f"delivery options: {exc}") from None
    return endpoints, policy


# -- the actions -------------------------------------------------------------------------------

def _open(path: str) -> sqlite3.Connection:
    from emulator.errors import UserError

    if not Path(path).is_file():
        raise UserError(f"{path}: no such database")
    try:
        conn = sqlite3.connect(f"file:{Path(path).resolve()}?mode=rw", uri=True, isolation_level=None)
        conn.execute("PRAGMA busy_timeout = 5000")  # a running serve may hold the write lock briefly
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        columns = {row[1] for row in conn.execute("PRAGMA table_info(outbox)")}
    except sqlite3.DatabaseError as exc:
        raise UserError(f"{path}: not an SQLite database ({exc})") from None
    if "outbox" not in tables:
        raise UserError(f"{path}: holds no outbox (not a database written by ch-emulator serve)")
    if "dead" not in columns:
        raise UserError(f"{path}: outbox from an older ch-emulator; run serve on it once to upgrade it")
    return conn


def _select(conn: sqlite3.Connection, where: str = "", values: Sequence[Any] = ()) -> list[OutboxEntry]:
    query = f"SELECT {_ENTRY_COLUMNS} FROM outbox" + (f" WHERE {where}" if where else "") + " ORDER BY seq"
    return [entry_from_row(row) for row in conn.execute(query, values)]


def _named(conn: sqlite3.Connection, path: str, ids: Iterable[str]) -> list[OutboxEntry]:
    from emulator.errors import UserError

    wanted = list(dict.fromkeys(ids))
    found = _select(conn, f"message_id IN ({', '.join('?' * len(wanted))})", wanted)
    missing = sorted(set(wanted) - {entry.message_id for entry in found})
    if missing:
        raise UserError(f"{path}: no message {', '.join(missing)} in the outbox")
    return found


def _time(value: float | None) -> str:
    if value is None:
        return "-"
    return datetime.fromtimestamp(value, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _list(args: argparse.Namespace) -> int:
    with _connection(args.db) as conn:
        if args.ids:
            entries = _named(conn, args.db, args.ids)
            if args.dead:
                entries = [e for e in entries if e.state == "dead"]
        elif args.dead:
            entries = _select(conn, "dead IS NOT NULL")
        elif args.all:
            entries = _select(conn)
        else:
            entries = _select(conn, "delivered IS NULL")
    if args.json:
        for e in entries:
            print(json.dumps({"seq": e.seq, "message_id": e.message_id, "recipient": e.recipient, "kind": e.kind.value,
                              "code": e.code, "state": e.state, "attempts": e.attempts,
                              "next_attempt": e.next_attempt, "last_error": e.last_error,
                              "delivered": e.delivered, "dead": e.dead}))
        return 0
    rows = [(str(e.seq), e.message_id, e.recipient or "-", e.state, str(e.attempts),
             _time(e.next_attempt if e.state == "pending" else e.delivered or e.dead), e.last_error or "")
            for e in entries]
    header = ("seq", "message_id", "recipient", "state", "attempts", "next/at", "last_error")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1])
    print(f"{len(rows)} message(s)")
    return 0


def _retry(args: argparse.Namespace) -> int:
    from emulator.errors import UserError

    with _connection(args.db) as conn:
        if args.ids:
            entries = _named(conn, args.db, args.ids)
            delivered = [e.message_id for e in entries if e.state == "delivered"]
            if delivered:
                raise UserError(f"{args.db}: {', '.join(delivered)} already delivered; nothing to retry")
        elif args.dead:
            entries = _select(conn, "dead IS NOT NULL")
        else:
            raise UserError("say which messages: --dead (every dead-lettered one) or --id MESSAGE_ID ...")
        conn.execute("BEGIN IMMEDIATE")
        for entry in entries:
            conn.execute(
                "UPDATE outbox SET redrive = 1, next_attempt = NULL, dead = NULL, "
                "attempts = CASE WHEN dead IS NULL THEN attempts ELSE 0 END WHERE seq = ?", (entry.seq,))
        conn.execute("COMMIT")
    print(f"re-drove {len(entries)} message(s): a running serve sends them within seconds, "
          "otherwise the next serve on this database does")
    return 0


def _purge(args: argparse.Namespace) -> int:
    from emulator.errors import UserError

    with _connection(args.db) as conn:
        if args.ids:
            entries = _named(conn, args.db, args.ids)
            pending = [e.message_id for e in entries if e.state == "pending"]
            if pending:
                raise UserError(f"{args.db}: {', '.join(pending)} still pending; only delivered or "
                                "dead-lettered messages can be purged")
        elif args.dead:
            entries = _select(conn, "dead IS NOT NULL")
        else:
            entries = _select(conn, "delivered IS NOT NULL")
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("DELETE FROM outbox WHERE seq = ?", [(e.seq,) for e in entries])
        conn.execute("COMMIT")
    print(f"purged {len(entries)} message(s)")
    return 0


class _connection:
    """``with _connection(path) as conn``: open (or a clear error), always closed."""

    def __init__(self, path: str) -> None:
        self._conn = _open(path)

    def __enter__(self) -> sqlite3.Connection:
        return self._conn

    def __exit__(self, *exc: Any) -> None:
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")
        self._conn.close()
