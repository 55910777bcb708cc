"""Benchmark: synchronous latency of ``serve`` for an SR 11.4 with signatures on, and what one
XML signature costs.

Builds the ``serve`` service in-process (the default premises, an SQLite file database, the
outbox), signs every request with a User key the service trusts, and POSTs DCC's sample 11.4 over
real HTTP on localhost, one at a time, with increasing RequestID counters. The service verifies
each request's signature, validates, answers (signed) at once; the figures are from send to full
answer. With DCC's ZAZ1 keystore installed (``npm ci --prefix tests/dcc/npm``) the DSP signs with
ZAZ1's DSP key and requests are signed with the ZAZ1 supplier key; else with throw-away TEST ONLY
keys.

Usage: ``python benchmarks/duis_latency.py [--requests N] [--json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiohttp import ClientSession, web  # noqa: E402

from emulator.dcc.duis.keystore import load_keystore  # noqa: E402
from emulator.dcc.duis.security import DuisSecurity  # noqa: E402
from emulator.dcc.duis.signing import DuisSigner  # noqa: E402
from emulator.scenario.serve import build_service  # noqa: E402
from emulator.scenario.spec import parse_scenario  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "tests" / "dcc" / "data" / "duis" / "11.4_UPDATE_PPMID_FIRMWARE_REQUEST_DUIS.XML"
ZAZ1 = ROOT / "tests" / "dcc" / "npm" / "node_modules" / "@smartdcc" / "dccboxed-keystore" / "keystore.json"
USER = 0x90B3D51F30010000


def _unsigned_sample() -> bytes:
    return re.sub(rb"\s*<ds:Signature.*</ds:Signature>", b"", SAMPLE.read_bytes(), flags=re.S)


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


async def _latency(requests: int, security: DuisSecurity, user_signer: DuisSigner, db: str) -> list[float]:
    service = build_service(parse_scenario({}, source="benchmark"), db=db, journal=None, security=security)
    runner = web.AppRunner(service.app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    template = _unsigned_sample()
    bodies = [user_signer.sign(template.replace(b":1000</sr:RequestID>", f":{2000 + n}</sr:RequestID>".encode()))
              for n in range(requests + 5)]
    samples: list[float] = []
    try:
        async with ClientSession() as session:
            for n, body in enumerate(bodies):
                start = time.perf_counter()
                async with session.post(f"http://127.0.0.1:{port}/api/v1/serviceD", data=body,
                                        headers={"Content-Type": "application/xml"}) as reply:
                    answer = await reply.read()
                elapsed = time.perf_counter() - start
                if reply.status != 200 or b"<ds:Signature" not in answer or b"E3<" in answer:
                    raise SystemExit(f"request {n}: HTTP {reply.status}: {answer[:300]!r}")
                if n >= 5:  # the first few warm up the connection and the caches
                    samples.append(elapsed)
    finally:
        await runner.cleanup()
        service.close()
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    logging.basicConfig(level=logging.ERROR)  # the sample's FirmwareVersion warning, once per request
    if not ZAZ1.is_file():
        raise SystemExit("install DCC's ZAZ1 keystore first: npm ci --prefix tests/dcc/npm")
    security = DuisSecurity.from_options(ZAZ1)
    user_entry = load_keystore(ZAZ1).signing_entry(USER)
    keys = "ZAZ1 (dccboxed-keystore)"
    assert security.signer is not None and user_entry is not None
    user_signer = DuisSigner(user_entry)

    # Signing cost: one typical answer (an 11.4 W110401 with a warning list), many times.
    from datetime import datetime, timezone

    from emulator.dcc.duis import render_dsp_response
    from emulator.dcc.messages import DspResponse, RejectionReason, ResponseCode

    answer = render_dsp_response(DspResponse(
        "90-B3-D5-1F-30-01-00-00:90-B3-D5-1F-30-00-00-02:1", "11.4", ResponseCode.W110401, (1,),
        {RejectionReason.INVALID_DEVICE: (2, 3)}), at=datetime.now(timezone.utc))
    rounds = 500
    start = time.perf_counter()
    for _ in range(rounds):
        security.signer.sign(answer)
    sign_ms = (time.perf_counter() - start) / rounds * 1000
    request = user_signer.sign(_unsigned_sample())
    from emulator.dcc.duis.xmlsafe import parse_document

    start = time.perf_counter()
    for _ in range(50):
        assert security.verifier is not None
        security.verifier.check(parse_document(request), USER)
    verify_ms = (time.perf_counter() - start) / 50 * 1000

    with tempfile.TemporaryDirectory() as tmp:
        samples = asyncio.run(_latency(args.requests, security, user_signer, str(Path(tmp) / "bench.db")))
    figures = {
        "requests": len(samples),
        "request_bytes": len(request),
        "keys": keys,
        "p50_ms": round(statistics.median(samples) * 1000, 2),
        "p99_ms": round(_percentile(samples, 0.99) * 1000, 2),
        "sign_ms_per_message": round(sign_ms, 3),
        "verify_ms_per_request": round(verify_ms, 3),
    }
    if args.json:
        print(json.dumps(figures))
    else:
        print(f"serve, SR 11.4 ({figures['request_bytes']} bytes, signed, {keys} keys), "
              f"{figures['requests']} requests one at a time over localhost HTTP:")
        print(f"  synchronous latency p50 {figures['p50_ms']} ms, p99 {figures['p99_ms']} ms")
        print(f"  signing one answer {figures['sign_ms_per_message']} ms; verifying one 11.4 request "
              f"{figures['verify_ms_per_request']} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
