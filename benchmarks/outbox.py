"""Benchmark: the outbox with its database on disk, delivering to a local aiohttp sink.

A sink process on 127.0.0.1 (``--sink`` mode of this script, so the outbox's event loop is not
shared with it) answers 204 on ``/ok`` and counts what it got. The benchmark process enqueues
messages with ``Outbox.put`` from the event loop (yielding every ``--burst`` messages, as the DSP
does between clock callbacks) and reports:

- ``enqueued_per_s``: messages put per wall-second; ``enqueue_p99_ms``: p99 of one ``put`` call;
- ``durable_p99_ms`` (new outbox only): p99 from ``put`` to the commit that makes it durable;
- ``delivered_per_s``: messages the sink accepted per wall-second, from the first put;
- ``loop_lag_p99_ms`` / ``loop_lag_max_ms``: how late a 5 ms ticker on the same loop ran (what a
  blocking database call costs every other task, the HTTP front door included);
- ``serve_disk_srs_per_s`` / ``serve_memory_srs_per_s``: Service Requests (11.2) per second
  through ``serve``'s front door with the database on disk and in memory, and how fast their
  asynchronous responses reach the sink;
- ``healthy_lane_per_s``: with half the messages for a recipient whose endpoint refuses
  connections and half for a healthy one, how fast the healthy recipient's messages arrive (over
  ``--window`` seconds). The outbox of before had one endpoint for everything, so there the dead
  recipient is played by the sink answering 503 to its messages; the new outbox has a lane (and
  an endpoint) per recipient.

Usage: ``python benchmarks/outbox.py [--json] [--messages N] [--repeat N] [--code DIR]``. ``--code DIR`` runs
against another checkout's ``emulator`` package (e.g. the commit before the lanes, extracted with
``git archive``), which is how the "before" figures in docs/reliability.md were taken.
``--compare-db`` also measures the two ways of taking SQLite off the loop (aiosqlite with one
commit per message, and the outbox's writer thread with group commit), if aiosqlite is installed.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import logging
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
DEAD = "90-B3-D5-1F-30-0D-EA-D0"
HEALTHY = "90-B3-D5-1F-30-01-00-00"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- the sink (a separate process) -----------------------------------------------------------

def run_sink(port: int) -> None:
    from aiohttp import web

    counts: dict[str, int] = {}
    seen: set[str] = set()
    duplicates = 0

    async def accept(request: web.Request) -> web.Response:
        nonlocal duplicates
        await request.read()
        message_id = request.headers.get("X-DCC-Message-ID", "")
        if message_id in seen:
            duplicates += 1
        seen.add(message_id)
        counts[request.path] = counts.get(request.path, 0) + 1
        return web.Response(status=204)

    async def mixed(request: web.Request) -> web.Response:
        body = await request.read()
        if DEAD.encode() in body:
            return web.Response(status=503)
        return await accept(request)

    async def stats(request: web.Request) -> web.Response:
        return web.json_response({"counts": counts, "unique": len(seen), "duplicates": duplicates})

    async def reset(request: web.Request) -> web.Response:
        nonlocal duplicates
        counts.clear()
        seen.clear()
        duplicates = 0
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/ok", accept)
    app.router.add_post("/mixed", mixed)
    app.router.add_get("/stats", stats)
    app.router.add_post("/reset", reset)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


class Sink:
    def __init__(self) -> None:
        self.port = _free_port()
        self.process = subprocess.Popen([sys.executable, __file__, "--sink", str(self.port)])
        self.base = f"http://127.0.0.1:{self.port}"

    async def wait_ready(self, session: Any) -> None:
        for _ in range(200):
            try:
                async with session.get(self.base + "/stats") as reply:
                    if reply.status == 200:
                        return
            except OSError:
                pass
            await asyncio.sleep(0.05)
        raise RuntimeError("sink did not start")

    async def stats(self, session: Any) -> dict[str, Any]:
        async with session.get(self.base + "/stats") as reply:
            result: dict[str, Any] = await reply.json()
            return result

    async def reset(self, session: Any) -> None:
        async with session.post(self.base + "/reset") as reply:
            await reply.read()

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


# -- measuring --------------------------------------------------------------------------------

def _p99(values: list[float]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


class LoopLag:
    """A ticker every 5 ms; how late each tick ran is time the loop spent blocked."""

    def __init__(self) -> None:
        self.lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + 0.005
            await asyncio.sleep(0.005)
            self.lags.append(max(0.0, loop.time() - due))

    def __enter__(self) -> "LoopLag":
        self._task = asyncio.get_running_loop().create_task(self._tick())
        return self

    def __exit__(self, *exc: Any) -> None:
        assert self._task is not None
        self._task.cancel()


def _message(n: int, recipient: str) -> Any:
    from emulator.dcc.messages import MessageKind, UserMessage

    return UserMessage(f"bench-{recipient[-5:]}-{n}", MessageKind.DCC_ALERT, "N59", float(n),
                       device=0x00DB1234567890A4, request_id=f"{HEALTHY}:90-B3-D5-1F-30-00-00-02:{n}",
                       recipient=recipient, details={"n": n})


def _is_new_outbox(outbox_class: Any) -> bool:
    return "endpoints" in inspect.signature(outbox_class).parameters


def _build(outbox_class: Any, database: str, endpoints: dict[str, str], default: str | None) -> Any:
    if _is_new_outbox(outbox_class):
        return outbox_class(database, endpoint=default, endpoints=endpoints)
    return outbox_class(database, endpoint=default)


async def _wait_for(sink: Sink, session: Any, path: str, count: int, limit: float) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < limit:
        if (await sink.stats(session))["counts"].get(path, 0) >= count:
            return time.perf_counter()
        await asyncio.sleep(0.02)
    return float("nan")


async def throughput(sink: Sink, session: Any, messages: int, burst: int) -> dict[str, Any]:
    from emulator.dcc.outbox import Outbox

    new = _is_new_outbox(Outbox)
    await sink.reset(session)
    with tempfile.TemporaryDirectory() as tmp:
        outbox = _build(Outbox, os.path.join(tmp, "outbox.db"), {}, sink.base + "/ok")
        runner = asyncio.get_running_loop().create_task(outbox.run())
        latencies: list[float] = []
        durable: list[float] = []
        with LoopLag() as lag:
            started = time.perf_counter()
            pending: list[asyncio.Future[Any]] = []
            for n in range(messages):
                message = _message(n, HEALTHY)
                t0 = time.perf_counter()
                outbox.put(message)
                latencies.append(time.perf_counter() - t0)
                if new:
                    pending.append(_durable_stamp(outbox, t0, durable))
                if n % burst == burst - 1:
                    await asyncio.sleep(0)
            enqueued = time.perf_counter()
            if pending:
                await asyncio.gather(*pending)
            done = await _wait_for(sink, session, "/ok", messages, 120)
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        stats = await sink.stats(session)
        close = outbox.aclose() if hasattr(outbox, "aclose") else None
        if close is not None:
            await close
        else:
            outbox.close()
    out = {
        "messages": messages,
        "enqueued_per_s": round(messages / (enqueued - started)),
        "enqueue_p99_ms": round(_p99(latencies) * 1000, 3),
        "delivered_per_s": round(messages / (done - started)) if done == done else 0,
        "loop_lag_p99_ms": round(_p99(lag.lags) * 1000, 1),
        "loop_lag_max_ms": round(max(lag.lags, default=0.0) * 1000, 1),
        "duplicates": stats["duplicates"],
    }
    if durable:
        out["durable_p99_ms"] = round(_p99(durable) * 1000, 2)
    return out


def _durable_stamp(outbox: Any, t0: float, into: list[float]) -> "asyncio.Future[Any]":
    async def wait() -> None:
        await outbox.committed()
        into.append(time.perf_counter() - t0)

    return asyncio.ensure_future(wait())


async def dead_and_healthy(sink: Sink, session: Any, messages: int, window: float) -> dict[str, Any]:
    from emulator.dcc.outbox import Outbox

    await sink.reset(session)
    new = _is_new_outbox(Outbox)
    dead_url = f"http://127.0.0.1:{_free_port()}/refused"
    with tempfile.TemporaryDirectory() as tmp:
        if new:
            outbox = _build(Outbox, os.path.join(tmp, "outbox.db"), {DEAD: dead_url, HEALTHY: sink.base + "/mixed"}, None)
        else:
            outbox = _build(Outbox, os.path.join(tmp, "outbox.db"), {}, sink.base + "/mixed")
        for n in range(messages):
            outbox.put(_message(n, DEAD if n % 2 == 0 else HEALTHY))
        started = time.perf_counter()
        runner = asyncio.get_running_loop().create_task(outbox.run())
        healthy = messages // 2
        done = await _wait_for(sink, session, "/mixed", healthy, window)
        elapsed = (done if done == done else time.perf_counter()) - started
        got = (await sink.stats(session))["counts"].get("/mixed", 0)
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        close = outbox.aclose() if hasattr(outbox, "aclose") else None
        if close is not None:
            await close
        else:
            outbox.close()
    return {"healthy_messages": healthy, "healthy_delivered": got,
            "healthy_lane_per_s": round(got / elapsed), "healthy_window_s": round(elapsed, 2)}


async def serve_throughput(sink: Sink, session: Any, requests: int, database: str) -> dict[str, Any]:
    """Service Requests per second through ``serve``'s front door (11.2 Read Firmware Version to
    the ESME, 20 clients at once), each answered synchronously and then by an asynchronous
    response that the outbox delivers to the sink."""
    from aiohttp.test_utils import TestServer

    from emulator.scenario.serve import build_service
    from emulator.scenario.spec import parse_scenario

    template = (ROOT / "tests" / "dcc" / "data" / "duis" / "ECS52_11.2_SUCCESS_REQUEST_DUIS.XML").read_bytes()
    counter = b"00-DB-12-34-56-78-90-A0:1000<"
    assert counter in template
    await sink.reset(session)
    scenario = parse_scenario({"han": {"latency_s": 0.0}}, source="benchmark")
    service = build_service(scenario, db=database, user_endpoint=sink.base + "/ok", journal=None)
    runner = await service.start_outbox()
    server = TestServer(service.app, host="127.0.0.1")
    await server.start_server()
    url = str(server.make_url("/api/v1/serviceD"))
    numbers = iter(range(requests))
    codes: list[bytes] = []

    async def client() -> None:
        for n in numbers:
            body = template.replace(counter, counter[:-5] + str(100000 + n).encode() + b"<")
            async with session.post(url, data=body, headers={"Content-Type": "application/xml"}) as reply:
                codes.append(await reply.read())

    try:
        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(20)))
        answered = time.perf_counter()
        done = await _wait_for(sink, session, "/ok", requests, 120)
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        await server.close()
        service.close()
    accepted = sum(b"<sr:ResponseCode>I0</sr:ResponseCode>" in c for c in codes)
    label = "memory" if database == ":memory:" else "disk"
    return {f"serve_{label}_srs_per_s": round(requests / (answered - started)),
            f"serve_{label}_accepted": accepted,
            f"serve_{label}_responses_delivered_per_s": round(requests / (done - started)) if done == done else 0}


async def compare_db(messages: int) -> dict[str, Any]:
    """Durable enqueue rate: aiosqlite (a commit per message) against the writer's group commit."""
    out: dict[str, Any] = {}
    try:
        import aiosqlite
    except ImportError:
        return {"compare_db": "aiosqlite not installed"}
    from emulator.dcc.outbox_store import OutboxStore

    schema = "CREATE TABLE IF NOT EXISTS t (seq INTEGER PRIMARY KEY, message_id TEXT UNIQUE, xml BLOB)"
    body = b"<x/>" * 200
    with tempfile.TemporaryDirectory() as tmp:
        db = await aiosqlite.connect(os.path.join(tmp, "a.db"), isolation_level=None)
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute(schema)
        started = time.perf_counter()

        async def one(n: int) -> None:
            await db.execute("BEGIN IMMEDIATE")
            await db.execute("INSERT INTO t (message_id, xml) VALUES (?, ?)", (f"m{n}", body))
            await db.execute("COMMIT")

        for n in range(messages):
            await one(n)
        out["aiosqlite_commit_each_per_s"] = round(messages / (time.perf_counter() - started))
        await db.close()

        store = OutboxStore(os.path.join(tmp, "w.db"))
        await store.call(lambda conn: conn.execute(schema.replace(" t ", " outbox_bench ")))
        started = time.perf_counter()
        def insert(n: int) -> Callable[[sqlite3.Connection], None]:
            def job(conn: sqlite3.Connection) -> None:
                conn.execute("INSERT INTO outbox_bench (message_id, xml) VALUES (?, ?)", (f"m{n}", body))
            return job

        futures = [store.submit(insert(n)) for n in range(messages)]
        await asyncio.gather(*futures)
        out["writer_group_commit_per_s"] = round(messages / (time.perf_counter() - started))
        await store.aclose()
    return out


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    import aiohttp

    sink = Sink()
    try:
        async with aiohttp.ClientSession() as session:
            await sink.wait_ready(session)
            out: dict[str, Any] = {"code": str(args.code or ROOT)}
            out.update(await throughput(sink, session, args.messages, args.burst))
            out.update(await dead_and_healthy(sink, session, args.messages, args.window))
            if args.serve_requests:
                with tempfile.TemporaryDirectory() as tmp:
                    out.update(await serve_throughput(sink, session, args.serve_requests, os.path.join(tmp, "serve.db")))
                out.update(await serve_throughput(sink, session, args.serve_requests, ":memory:"))
            if args.compare_db:
                out.update(await compare_db(args.messages))
            return out
    finally:
        sink.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="one JSON object with every figure")
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--burst", type=int, default=20, help="puts between two yields to the loop")
    parser.add_argument("--window", type=float, default=10.0, help="seconds allowed to the healthy lane")
    parser.add_argument("--code", type=Path, help="checkout whose emulator package to measure")
    parser.add_argument("--compare-db", action="store_true", help="also aiosqlite against group commit")
    parser.add_argument("--serve-requests", type=int, default=1000,
                        help="11.2 requests through serve, database on disk then in memory (0: skip)")
    parser.add_argument("--repeat", type=int, default=1, help="run N times, print the median of each figure")
    parser.add_argument("--sink", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.sink:
        run_sink(args.sink)
        return 0
    sys.path.insert(0, str(args.code or ROOT))
    logging.basicConfig(level=logging.CRITICAL)  # the dead endpoint's retries would flood stderr
    runs = [asyncio.run(main_async(args)) for _ in range(args.repeat)]
    out = {key: (statistics.median(r[key] for r in runs) if isinstance(value, (int, float)) and args.repeat > 1
                 else value) for key, value in runs[0].items()}
    if args.repeat > 1:
        out["runs"] = args.repeat
    if args.json:
        print(json.dumps(out))
    else:
        for key, value in out.items():
            print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
