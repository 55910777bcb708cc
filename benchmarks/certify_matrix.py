"""Benchmark: the image mutation matrix of ``certify image`` and its wall time.

Each mutation (emulator/certify/mutations.py) turns a TEST ONLY sample from firmware_images/ into
a defective file; the matrix shows the check expected to catch it, every check that failed, and
whether the expected one did. The mutation score is caught / mutations. Wall time is one full
``certify image`` run (all A checks, parse included) on each sample and on the largest image the
DUIS allows, median of several runs.

Usage: ``python benchmarks/certify_matrix.py [--json] [--repeat N]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from emulator.certify.image_run import DUIS_MAX_IMAGE_SIZE  # noqa: E402
from emulator.gbcs.codes import DeviceType  # noqa: E402
from emulator.certify.mutations import Samples, gbcs_image, run_matrix  # noqa: E402
from emulator.certify.runner import certify_image  # noqa: E402
from emulator.ota.image import load_private_key  # noqa: E402

SAMPLES = {
    DeviceType.ESME: "esme-121D-0000-ACDCACDD-TEST-ONLY.ota",
    DeviceType.GSME: "gsme-121D-0001-ACDCACDD-TEST-ONLY.ota",
    DeviceType.PPMID: "ppmid-121D-0084-ACDCACDD-TEST-ONLY.ota",
}


def load_samples() -> Samples:
    folder = ROOT / "firmware_images"
    files = {device: (folder / name).read_bytes() for device, name in SAMPLES.items()}
    return Samples.from_files(files, load_private_key(folder / "TEST-ONLY-signing-key.pem"))


def wall_time(samples: Samples, device: DeviceType, data: bytes, repeat: int) -> float:
    options = samples.clean_options(device)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        certify_image(device.value, data, options)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    samples = load_samples()
    rows = run_matrix(samples)
    caught = sum(row.caught for row in rows)
    largest = gbcs_image(samples, bytes(DUIS_MAX_IMAGE_SIZE - 60 - 66))
    timings = {f"{device.value} sample ({len(s.data)} bytes)": wall_time(samples, device, s.data, args.repeat)
               for device, s in samples.by_device.items()}
    timings[f"ESME at the DUIS limit ({len(largest)} bytes)"] = wall_time(
        samples, DeviceType.ESME, largest, max(1, args.repeat // 2))
    if args.json:
        print(json.dumps({
            "mutations": [{"name": r.mutation.name, "defect": r.mutation.defect,
                           "expected": r.mutation.expected_check, "failed": list(r.failed_checks),
                           "caught": r.caught} for r in rows],
            "caught": caught, "total": len(rows), "score": caught / len(rows),
            "wall_time_s": timings,
        }))
        return 0
    width = max(len(r.mutation.name) for r in rows)
    print(f"{'mutation':<{width}}  expected  caught  checks that failed")
    for row in rows:
        mark = "yes" if row.caught else "NO"
        print(f"{row.mutation.name:<{width}}  {row.mutation.expected_check:<8}  {mark:<6}  "
              f"{', '.join(row.failed_checks) or '-'}")
    print(f"\nmutation score: {caught}/{len(rows)} = {caught / len(rows):.0%}")
    print("\ncertify image wall time (median, all A checks, parse included):")
    for label, seconds in timings.items():
        print(f"  {label}: {seconds * 1000:.1f} ms")
    return 0 if caught == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
