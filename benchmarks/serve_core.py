"""Benchmark: the core of ``serve`` alone, in one process: CPU per 11.2 with the database on disk.

``benchmarks/serve_load.py`` measures the whole service over HTTP, and its figures move with
whatever the host does to this VM's CPUs (the same code measured 2.6 and 4.0 ms CPU per SR
minutes apart). This runs only what the core process of ``serve --workers 2`` runs per Service
Request: the DSP's checks and records, the CSP, the hub's GBCS command, the virtual HAN, the
emulated ESME's answer, the DSP's response record and the timeline, with group commit on a
database file. DCC's sample 11.2 (ECS52, to the ESME) is parsed once; each request gets a fresh
counter; ``--window`` requests are in flight at once, as the edge keeps them. It prints CPU
microseconds per request (``time.process_time``, this process's threads) and, with
``--callgrind``, is the program to run under ``valgrind --tool=callgrind``, whose instruction
count does not depend on the host (docs/recovery.md, "Throughput").

Usage: ``python benchmarks/serve_core.py [--requests 3000] [--window 50] [--rounds 3] [--profile FILE]``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import dataclasses
import io
import os
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from emulator.dcc.duis.requests import parse_request  # noqa: E402
from emulator.dcc.messages import UserMessage  # noqa: E402
from emulator.scenario.serve import build_core  # noqa: E402
from emulator.scenario.spec import parse_scenario  # noqa: E402

SAMPLE = ROOT / "tests/dcc/data/duis/ECS52_11.2_SUCCESS_REQUEST_DUIS.XML"


def _shape(sql: str) -> str:
    """A statement with its values taken out, so the same statement counts as one."""
    sql = re.sub(r"'(?:[^']|'')*'", "?", " ".join(sql.split()))
    return re.sub(r"\b\d+(?:\.\d+)?(?:e-?\d+)?\b", "?", sql)[:120]


async def one_round(requests: int, window: int, db: str, profile: cProfile.Profile | None,
                    trace_sql: bool = False) -> float:
    """CPU seconds per request for ``requests`` 11.2s through a fresh core on ``db``."""
    core = build_core(parse_scenario({}, source="default premises"), db=db, timeline=io.StringIO(),
                      json_timeline=True)
    system = core.system
    template = parse_request(SAMPLE.read_bytes())
    answered: dict[str, asyncio.Future[None]] = {}

    def on_message(message: UserMessage) -> None:
        waiter = answered.pop(message.request_id or "", None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    system.add_sink(on_message)
    statements: Counter[str] | None = Counter() if trace_sql else None
    if statements is not None:
        system.store.connection.set_trace_callback(lambda sql: statements.update([_shape(sql)]))
    system.start()
    system.recover()
    loop = asyncio.get_running_loop()
    counter = int(time.time() * 1000)
    header = template.header

    async def request(n: int) -> None:
        request_id = f"{header.request_id.rsplit(':', 1)[0]}:{counter + n}"
        sr = dataclasses.replace(template, header=dataclasses.replace(header, request_id=request_id,
                                                                      counter=counter + n))
        done = loop.create_future()
        answered[request_id] = done
        response = system.submit(sr)
        if not response.response_code.startswith("I"):
            raise SystemExit(f"request {n}: {response.response_code} {response.error}")
        await system.store.durable()
        await done

    started = time.process_time()
    if profile is not None:
        profile.enable()
    pending: set[asyncio.Task[None]] = set()
    for n in range(requests):
        if len(pending) >= window:
            _done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        pending.add(asyncio.create_task(request(n)))
    await asyncio.gather(*pending)
    if profile is not None:
        profile.disable()
    spent = time.process_time() - started
    system.store.close()
    if statements is not None:
        print(f"SQL statements per request on the DSP's connection: {sum(statements.values()) / requests:.1f}")
        for sql, count in statements.most_common(40):
            print(f"{count / requests:6.2f}  {sql}")
    return spent / requests


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--window", type=int, default=50, help="requests in flight at once")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", type=Path, help="cProfile of the last round to this file (pstats)")
    parser.add_argument("--trace-sql", action="store_true", help="count the DSP connection's SQL statements per request")
    args = parser.parse_args()
    figures = []
    for n in range(args.rounds):
        folder = tempfile.mkdtemp(prefix="ch-core-")
        profile = cProfile.Profile() if args.profile and n == args.rounds - 1 else None
        figures.append(asyncio.run(one_round(args.requests, args.window, os.path.join(folder, "serve.db"), profile,
                                         args.trace_sql)))
        if profile is not None:
            profile.dump_stats(str(args.profile))
    us = [f * 1e6 for f in figures]
    print(f"serve core, {args.requests} x 11.2 (ECS52) per round, window {args.window}, database on disk: "
          f"{statistics.median(us):.0f} us CPU per request (median of {len(us)}: "
          f"{', '.join(f'{u:.0f}' for u in us)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
