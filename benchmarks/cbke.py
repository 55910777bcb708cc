"""Benchmark: one full CBKE key establishment per side, both crypto suites, pure Python.

Runs the responder (hub) and initiator (device) engines of :mod:`emulator.han.security.ke_engine`
against each other through the frame codec, and times the CPU each side spends in its engine
calls: for the hub, answering Initiate (certificate checks), Ephemeral Data (key generation,
ECQV, ECMQV, KDF, SMACs) and Confirm Key; for the device, the same work on its side. Also prints
one scalar multiplication, and the projected CPU for a fleet whose every device runs CBKE once.

Usage: ``python benchmarks/cbke.py [--runs N] [--premises P] [--devices-per-premises D] [--json]``.
Target: under 1 s per side per key establishment.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from emulator.han.security import ke_frames  # noqa: E402
from emulator.han.security.certificates import CryptoSuite  # noqa: E402
from emulator.han.security.ke_engine import (  # noqa: E402
    Established,
    KeAction,
    KeyEstablishmentClient,
    KeyEstablishmentServer,
    Send,
)
from emulator.han.security.test_ca import TestCertificateAuthority  # noqa: E402

HUB, DEVICE = 0x0001020304050607, 0x00DB1234567890A1


def one_exchange(server: KeyEstablishmentServer, client: KeyEstablishmentClient) -> tuple[float, float]:
    """(hub seconds, device seconds) of CPU for one complete establishment."""
    spent = {HUB: 0.0, DEVICE: 0.0}
    keys: dict[int, bytes] = {}
    start = time.process_time()
    pending: list[tuple[int, KeAction]] = [(DEVICE, a) for a in client.start(0.0)]
    spent[DEVICE] += time.process_time() - start
    while pending:
        side, action = pending.pop(0)
        if isinstance(action, Established):
            keys[side] = action.link_key
        if not isinstance(action, Send):
            continue
        frame = ke_frames.decode(ke_frames.encode(action.frame))
        receiver = HUB if side == DEVICE else DEVICE
        start = time.process_time()
        if receiver == HUB:
            out = server.on_frame(1.0, DEVICE, 0x1234, frame)
        else:
            out = client.on_frame(1.0, HUB, 0x0000, frame)
        spent[receiver] += time.process_time() - start
        pending += [(receiver, a) for a in out]
    if keys.get(HUB) is None or keys.get(HUB) != keys.get(DEVICE):
        raise SystemExit("key establishment failed: the benchmark measured nothing useful")
    return spent[HUB], spent[DEVICE]


def scalar_multiplication(suite: CryptoSuite, runs: int) -> float:
    curve = suite.curve
    k = curve.order - 12345
    start = time.process_time()
    for _ in range(runs):
        curve.mul(k, curve.generator)
    return (time.process_time() - start) / runs


def measure(suite: CryptoSuite, runs: int) -> dict[str, Any]:
    ca = TestCertificateAuthority.default(suite)
    hub, device = ca.issue(HUB), ca.issue(DEVICE)
    hub_times, device_times = [], []
    for _ in range(runs):
        server = KeyEstablishmentServer(hub)
        client = KeyEstablishmentClient(device, trust_centre=HUB)
        hub_s, device_s = one_exchange(server, client)
        hub_times.append(hub_s)
        device_times.append(device_s)
    return {
        "suite": suite.number,
        "curve": suite.curve.name,
        "scalar_multiplication_ms": 1000 * scalar_multiplication(suite, max(3, runs)),
        "hub_ms": 1000 * statistics.median(hub_times),
        "device_ms": 1000 * statistics.median(device_times),
        "hub_max_ms": 1000 * max(hub_times),
        "device_max_ms": 1000 * max(device_times),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="key establishments per suite (median reported)")
    parser.add_argument("--premises", type=int, default=1000)
    parser.add_argument("--devices-per-premises", type=int, default=3, help="e.g. ESME, GSME, PPMID")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = []
    for suite in (CryptoSuite.SUITE_1, CryptoSuite.SUITE_2):
        result = measure(suite, args.runs)
        exchanges = args.premises * args.devices_per_premises
        result["fleet_exchanges"] = exchanges
        result["fleet_hub_cpu_s"] = exchanges * result["hub_ms"] / 1000
        result["fleet_device_cpu_s"] = exchanges * result["device_ms"] / 1000
        results.append(result)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"CBKE, pure Python, median of {args.runs} establishments (CPU time per side)")
    for r in results:
        print(f"  suite {r['suite']} ({r['curve']}): hub {r['hub_ms']:.0f} ms, device {r['device_ms']:.0f} ms "
              f"per establishment (max {r['hub_max_ms']:.0f} / {r['device_max_ms']:.0f} ms); "
              f"one scalar multiplication {r['scalar_multiplication_ms']:.1f} ms")
    for r in results:
        total = r["fleet_hub_cpu_s"] + r["fleet_device_cpu_s"]
        print(f"  fleet, suite {r['suite']}: {args.premises} premises x {args.devices_per_premises} devices = "
              f"{r['fleet_exchanges']} establishments: hubs {r['fleet_hub_cpu_s']:.0f} s + devices "
              f"{r['fleet_device_cpu_s']:.0f} s = {total:.0f} s of CPU ({total / 60:.1f} min on one core)")
    worst = max(max(r["hub_ms"], r["device_ms"]) for r in results)
    print(f"  target < 1000 ms per side: {'met' if worst < 1000 else 'MISSED'} (worst {worst:.0f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
