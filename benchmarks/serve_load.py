"""Benchmark: ``serve`` under concurrent clients, database on disk.

Starts ``ch-emulator serve`` as its own process (SQLite file, outbox delivering to a DCC User
endpoint on 127.0.0.1) and, for each level of concurrency, runs that many clients sending DCC's
sample 11.2 (ECS52, to the ESME) with fresh RequestID counters for a fixed time. Prints per level:
synchronous answers per second (SR/s accepted), latency p50/p99 of the accepted ones, the share
answered 503 (past ``--max-in-flight``) and timeouts, and the CPU time the ``serve`` process spent
per accepted SR (all its threads: user + system), which the load of other processes on the machine
changes far less than the wall-clock figures; then waits for every accepted request's
asynchronous response and prints accepted-but-lost (target 0). ``--mix`` adds 11.4s (DCC's sample
PPMID image) to the load.

Targets (issue 11): >= 500 SR/s on 2 cores with durable commits; p99 <= 250 ms at 50 clients;
accepted-but-lost 0. Figures are printed, never asserted.

Usage: ``python benchmarks/serve_load.py [--levels 1,10,50,200] [--seconds 5] [--max-in-flight 64]
[--mix] [--signed] [--json] [--code DIR] [--profile FILE]``. ``--signed``: every request is signed
with the ZAZ1 test user's key (``npm ci --prefix tests/dcc/npm``) and serve requires signatures, so
the figures include checking them. ``--code DIR`` runs ``serve`` from another checkout
(e.g. ``git worktree add /tmp/before COMMIT``), so before/after can alternate in the same conditions;
``--profile FILE`` runs it under ``py-spy record`` (``pip install py-spy``; all threads, native
frames off) and writes a speedscope profile.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import statistics
import sys
import tempfile
import time
from urllib.parse import urlsplit
from dataclasses import asdict, dataclass, field
from pathlib import Path

from aiohttp import ClientError, ClientSession, ClientTimeout, TCPConnector, web

sys.path.insert(0, str(Path(__file__).resolve().parent))

from crash import Receiver, _template, edge_pid, start_serve  # noqa: E402
from lean_http import HttpError, LeanClient, LeanReceiver  # noqa: E402

TIMEOUT_S = 10.0  # a client gives up on an answer after this (counted as a time-out)

ROOT = Path(__file__).resolve().parent.parent
READ = "ECS52_11.2_SUCCESS_REQUEST_DUIS.XML"
PPMID_UPDATE = "11.4_UPDATE_PPMID_FIRMWARE_REQUEST_DUIS.XML"
_REQUEST_ID = re.compile(rb"<sr:RequestID>([^<:]+):([^<:]+):(\d+)</sr:RequestID>")
_CODE = re.compile(rb"<sr:ResponseCode>([^<]+)</sr:ResponseCode>")


@dataclass
class Level:
    clients: int
    sent: int = 0
    accepted: int = 0
    refused: int = 0
    unavailable: int = 0
    timed_out: int = 0
    sr_per_s: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    share_503: float = 0.0
    cpu_ms_per_sr: float = 0.0  # serve process(es), all threads, user + system
    core_cpu_ms_per_sr: float = 0.0  # --workers 2: the core process alone
    edge_cpu_ms_per_sr: float = 0.0  # --workers 2: the edge process alone
    client_cpu_ms_per_sr: float = 0.0  # this process (the clients and the User's endpoint)
    refused_codes: dict[str, int] = field(default_factory=dict)  # DUIS ResponseCode -> count


ZAZ1_KEYSTORE = ROOT / "tests/dcc/npm/node_modules/@smartdcc/dccboxed-keystore/keystore.json"
USER = 0x90B3D51F30010000  # the ZAZ1 test user (90-B3-D5-1F-30-01-00-00) of DCC's sample requests


def user_signer() -> object:
    """The ZAZ1 test user's XML signing key (TEST ONLY), from DCC's npm keystore."""
    from emulator.dcc.duis.keystore import load_keystore
    from emulator.dcc.duis.signing import DuisSigner

    if not ZAZ1_KEYSTORE.is_file():
        raise SystemExit(f"--signed needs {ZAZ1_KEYSTORE}: run `npm ci --prefix tests/dcc/npm`")
    return DuisSigner(load_keystore(ZAZ1_KEYSTORE).signing_entry(USER))


class Clients:
    def __init__(self, base_url: str, mix: bool, signer: object | None = None) -> None:
        self.base_url = base_url
        self.signer = signer
        self.templates = [(_template(READ), "serviceS")] + ([(_template(PPMID_UPDATE), "serviceD")] if mix else [])
        self.counter = int(time.time() * 1000)
        self.accepted_reads: set[str] = set()

    def body(self, rng: random.Random) -> tuple[bytes, str, str, bool]:
        template, path = rng.choice(self.templates)
        self.counter += 1
        counter = str(self.counter).encode()
        body = _REQUEST_ID.sub(lambda m: b"<sr:RequestID>" + m.group(1) + b":" + m.group(2) + b":" + counter
                               + b"</sr:RequestID>", template, count=1)
        match = _REQUEST_ID.search(body)
        request_id = b":".join(match.groups()).decode() if match else "?"
        if self.signer is not None:
            body = self.signer.sign(body)  # type: ignore[attr-defined]
        return body, path, request_id, template is self.templates[0][0]

    async def run_level(self, session: ClientSession | None, clients: int, seconds: float, serve_pid: int,
                        edge: int | None = None) -> Level:
        """``session`` None: the lean clients (benchmarks/lean_http.py), else aiohttp's."""
        level = Level(clients)
        url = urlsplit(self.base_url)
        host, port = url.hostname or "127.0.0.1", url.port or 80
        cpu_before, own_before = _cpu_seconds(serve_pid), time.process_time()
        edge_before = _cpu_seconds(edge) if edge else 0.0
        latencies: list[float] = []
        stop_at = time.perf_counter() + seconds

        async def one(seed: int) -> None:
            rng = random.Random(seed)
            lean = LeanClient(host, port) if session is None else None
            try:
                while time.perf_counter() < stop_at:
                    body, path, request_id, is_read = self.body(rng)
                    level.sent += 1
                    start = time.perf_counter()
                    try:
                        if lean is not None:
                            reply = await lean.post(f"/api/v1/{path}", body, TIMEOUT_S)
                            status, text = reply.status, reply.body
                            retry_after = reply.headers.get(b"retry-after", b"1").decode()
                        else:
                            assert session is not None
                            async with session.post(f"{self.base_url}/api/v1/{path}", data=body,
                                                    headers={"Content-Type": "application/xml"}) as answer:
                                text = await answer.read()
                            status, retry_after = answer.status, answer.headers.get("Retry-After", "1")
                    except (asyncio.TimeoutError, ClientError, HttpError, OSError):
                        level.timed_out += 1
                        continue
                    elapsed = time.perf_counter() - start
                    if status == 503:
                        level.unavailable += 1
                        await asyncio.sleep(float(retry_after) / 10)
                        continue
                    code = _CODE.search(text)
                    if code and code.group(1).startswith((b"I", b"W")):
                        level.accepted += 1
                        latencies.append(elapsed)
                        if is_read:
                            self.accepted_reads.add(request_id)
                    else:
                        level.refused += 1
                        name = code.group(1).decode() if code else f"HTTP {status}"
                        level.refused_codes[name] = level.refused_codes.get(name, 0) + 1
            finally:
                if lean is not None:
                    lean.close()

        began = time.perf_counter()
        await asyncio.gather(*(one(n) for n in range(clients)))
        wall = time.perf_counter() - began
        level.sr_per_s = round(level.accepted / wall, 1)
        if level.accepted:
            core = (_cpu_seconds(serve_pid) - cpu_before) * 1000 / level.accepted
            edge_ms = (_cpu_seconds(edge) - edge_before) * 1000 / level.accepted if edge else 0.0
            level.cpu_ms_per_sr = round(core + edge_ms, 2)
            if edge:
                level.core_cpu_ms_per_sr, level.edge_cpu_ms_per_sr = round(core, 2), round(edge_ms, 2)
            level.client_cpu_ms_per_sr = round((time.process_time() - own_before) * 1000 / level.accepted, 2)
        if latencies:
            ordered = sorted(latencies)
            level.p50_ms = round(statistics.median(ordered) * 1000, 1)
            level.p99_ms = round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 1)
        level.share_503 = round(level.unavailable / level.sent, 3) if level.sent else 0.0
        return level


def host_speed() -> float:
    """Millions of iterations a second of a fixed pure-Python loop, best of 3 (one core): this
    VM's CPUs run the same code up to a third slower at some times than at others, so a run's
    figures are read next to it (docs/recovery.md, "Throughput")."""
    best = 0.0
    for _ in range(3):
        started = time.process_time()
        total = 0
        for n in range(1_000_000):
            total += n & 7
        best = max(best, 1.0 / (time.process_time() - started))
    return round(best, 2)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (all its threads), from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _python_pid(pid: int) -> int:
    """The serve process itself when it runs under a profiler (its child)."""
    for _ in range(100):
        try:
            with open(f"/proc/{pid}/task/{pid}/children") as f:
                children = f.read().split()
        except OSError:
            return pid
        if children:
            return int(children[0])
        time.sleep(0.05)
    return pid


async def bench(levels: list[int], seconds: float, max_in_flight: int, mix: bool, settle: float,
                code: Path = ROOT, profile: Path | None = None, signed: bool = False,
                count_fsyncs: bool = False, workers: int = 1, lean: bool = True) -> dict:
    speed_before = host_speed()
    folder = Path(tempfile.mkdtemp(prefix="ch-load-"))
    receiver: Receiver | LeanReceiver
    runner: web.AppRunner | None = None
    if lean:
        receiver = LeanReceiver()
        endpoint = f"http://127.0.0.1:{await receiver.start()}/user"
    else:
        receiver = Receiver()
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_post("/user", receiver.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        endpoint = f"http://127.0.0.1:{runner.addresses[0][1]}/user"
    prefix = None
    fsync_log = folder / "fsync.strace"
    if count_fsyncs:
        prefix = ["strace", "-f", "--seccomp-bpf", "-c", "-e", "trace=fsync,fdatasync", "-o", str(fsync_log)]
    if profile is not None:
        prefix = [str(Path(sys.executable).parent / "py-spy"), "record", "--format", "speedscope", "--threads", "--gil", "--nonblocking",
                  "--rate", "250", "--output", str(profile), "--"]
    process, base_url = await asyncio.to_thread(
        start_serve, folder / "serve.db", endpoint, folder / "serve.log",
        ["--max-in-flight", str(max_in_flight), *(["--require-signatures"] if signed else []),
         *(["--workers", str(workers)] if workers != 1 else [])],
        code=code, prefix=prefix)
    serve_pid = _python_pid(process.pid) if prefix else process.pid
    edge = edge_pid(serve_pid) if workers == 2 else None
    results: list[Level] = []
    lost = -1
    try:
        clients = Clients(base_url, mix, user_signer() if signed else None)
        if lean:
            for n in levels:
                results.append(await clients.run_level(None, n, seconds, serve_pid, edge))
        else:
            connector = TCPConnector(limit=0)
            async with ClientSession(timeout=ClientTimeout(total=TIMEOUT_S), connector=connector) as session:
                for n in levels:
                    results.append(await clients.run_level(session, n, seconds, serve_pid, edge))
        deadline = time.monotonic() + settle
        outstanding = set(clients.accepted_reads)
        while time.monotonic() < deadline:
            outstanding = clients.accepted_reads - _answered(folder / "serve.db", set(receiver.counts))
            if not outstanding:
                break
            await asyncio.sleep(1.0)
        lost = len(outstanding)
    finally:
        os.kill(serve_pid, signal.SIGTERM)
        await asyncio.to_thread(process.wait, 60)
        if runner is not None:
            await runner.cleanup()
        if isinstance(receiver, LeanReceiver):
            await receiver.close()
    fsyncs = _strace_calls(fsync_log) if count_fsyncs else None
    total = sum(level.accepted for level in results)
    return {"levels": [asdict(r) for r in results], "accepted_but_lost": lost, "signed": signed,
            "clients": "lean" if lean else "aiohttp", "host_speed": [speed_before, host_speed()],
            "fsyncs": fsyncs, "fsyncs_per_sr": round(fsyncs / total, 3) if fsyncs is not None and total else None,
            "accepted_reads": len(clients.accepted_reads), "max_in_flight": max_in_flight, "workers": workers,
            "load_average": os.getloadavg()}


def _strace_calls(summary: Path) -> int:
    """fsync + fdatasync calls in an ``strace -c`` summary."""
    calls = 0
    for line in summary.read_text().splitlines():
        fields = line.split()
        if fields and fields[-1] in ("fsync", "fdatasync"):
            calls += int(fields[3])
    return calls


def _answered(db: Path, delivered: set[str]) -> set[str]:
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT message_id, record FROM outbox WHERE code = '11.2'").fetchall()
    finally:
        conn.close()
    return {json.loads(record).get("request_id") for mid, record in rows if mid in delivered}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", default="1,10,50,200")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--max-in-flight", type=int, default=64)
    parser.add_argument("--settle", type=float, default=120.0)
    parser.add_argument("--mix", action="store_true")
    parser.add_argument("--workers", type=int, choices=(1, 2), default=1,
                        help="2: serve --workers 2 (core + edge process); CPU is then given per process too")
    parser.add_argument("--clients", choices=("lean", "aiohttp"), default="lean",
                        help="the load generator: lean (benchmarks/lean_http.py, default: little of the 2 cores goes "
                             "to it) or aiohttp's client and server")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--code", type=Path, default=ROOT, help="run serve from this checkout")
    parser.add_argument("--profile", type=Path, help="py-spy speedscope profile of serve to this file")
    parser.add_argument("--count-fsyncs", action="store_true",
                        help="run serve under strace and print its fsync/fdatasync calls per accepted SR")
    parser.add_argument("--signed", action="store_true",
                        help="sign every request with the ZAZ1 test user's key (DCC's npm keystore) and start serve "
                             "with --require-signatures")
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    report = asyncio.run(bench(levels, args.seconds, args.max_in_flight, args.mix, args.settle,
                               args.code.resolve(), args.profile, args.signed, args.count_fsyncs, args.workers,
                               args.clients == "lean"))
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"serve ({args.code}, --workers {args.workers}), SQLite on disk, --max-in-flight {report['max_in_flight']}, "
          f"{'signed requests (--require-signatures), ' if args.signed else 'unsigned requests, '}"
          f"{args.clients} clients, "
          f"{args.seconds:g} s per level, load average {os.getloadavg()[0]:.2f}")
    print(f"{'clients':>8} {'SR/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'503':>7} {'timeouts':>9} {'refused':>8} "
          f"{'CPU ms/SR':>10} {'core/edge':>11} {'client CPU':>11}")
    for level in report["levels"]:
        split = f"{level['core_cpu_ms_per_sr']}/{level['edge_cpu_ms_per_sr']}" if args.workers == 2 else "-"
        print(f"{level['clients']:>8} {level['sr_per_s']:>8} {level['p50_ms']:>8} {level['p99_ms']:>8} "
              f"{level['share_503']:>7.1%} {level['timed_out']:>9} {level['refused']:>8} "
              f"{level['cpu_ms_per_sr']:>10} {split:>11} {level['client_cpu_ms_per_sr']:>11}")
    for level in report["levels"]:
        if level["refused_codes"]:
            print(f"refused at {level['clients']} clients: "
                  + ", ".join(f"{code} x{count}" for code, count in sorted(level["refused_codes"].items())))
    print(f"accepted 11.2: {report['accepted_reads']}, accepted but never answered: {report['accepted_but_lost']} "
          "[target 0]")
    if report["fsyncs"] is not None:
        print(f"fsync/fdatasync calls of serve (strace): {report['fsyncs']}, {report['fsyncs_per_sr']} per accepted SR "
              "(all levels, start-up and shutdown included)")
    print(f"load average at the end {os.getloadavg()[0]:.2f}; host speed before / after "
          f"{report['host_speed'][0]} / {report['host_speed'][1]} M loop iterations/s (one core)")
    print("targets: >= 500 SR/s on 2 cores; p99 <= 250 ms at 50 clients")
    return 0


if __name__ == "__main__":
    sys.exit(main())
