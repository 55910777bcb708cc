"""Benchmark: what ``serve``'s persisted GBCS state costs: storing the devices' TEST ONLY keys with
the premises when it starts (first start, then a restart that finds them), and drawing GBCS
originator counters from the database-backed counters against the in-memory ones.

Usage: ``python benchmarks/serve_gbcs_state.py [--devices N] [--counters N]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from emulator.dcc.device_keys import store_device_keys  # noqa: E402
from emulator.dcc.gbcs_counters import PersistedOriginatorCounters  # noqa: E402
from emulator.dcc.store import Store  # noqa: E402
from emulator.gbcs.flow import OriginatorCounters  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=2000)
    parser.add_argument("--counters", type=int, default=100_000)
    args = parser.parse_args()
    devices = range(0x00DB000000000000, 0x00DB000000000000 + args.devices)
    with tempfile.TemporaryDirectory() as folder:
        store = Store(Path(folder) / "serve.db")
        start = time.perf_counter()
        added = store_device_keys(store, devices, 1)
        first = time.perf_counter() - start
        start = time.perf_counter()
        store_device_keys(store, devices, 1)
        again = time.perf_counter() - start
        print(f"device keys: {added} stored for {args.devices} devices in {first:.3f} s at first start "
              f"({first / max(added, 1) * 1e6:.0f} us/key); {again:.3f} s on a restart")
        originators = [0x90B3D51F30010000, 0x90B3D51F30000002, *list(devices)[:8]]
        for name, counters in (("in memory", OriginatorCounters()), ("persisted", PersistedOriginatorCounters(store))):
            start = time.perf_counter()
            for n in range(args.counters):
                counters.next(originators[n % len(originators)])
            took = time.perf_counter() - start
            print(f"counters {name}: {args.counters} in {took:.3f} s ({took / args.counters * 1e6:.2f} us each)")
        store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
