"""Benchmark: the image and device mutation matrices of ``certify`` and their wall times.

Image: each mutation (emulator/certify/mutations.py) turns a TEST ONLY sample from
firmware_images/ into a defective file; the matrix shows the check expected to catch it, every
check that failed, and whether the expected one did. Wall time is one full ``certify image`` run
(all A checks, parse included) on each sample and on the largest image the DUIS allows, median of
several runs.

Device: the conformant virtual device and every playable fault of the catalogue
(emulator/certify/device/matrix.py), each a full ``certify device --virtual`` run on the ESME
sample; a device defect is caught when its named B check fails, a radio condition or legal
behaviour when no check fails. The device mutation score is defects caught / defects. Wall time is
one full virtual-device run (all B checks) of the conformant device.

Usage: ``python benchmarks/certify_matrix.py [--json] [--repeat N] [--image-only | --device-only]``.
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
from emulator.certify.device.matrix import run_device_matrix, score  # noqa: E402
from emulator.ota.image import load_private_key  # noqa: E402
from emulator.scenario.samples import trusted_key  # noqa: E402

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


def device_matrix(samples: Samples, repeat: int) -> dict:
    """Every row of the device matrix, the score and the conformant run's wall time."""
    from emulator.certify.device.dut import CONFORMANT
    from emulator.certify.device.matrix import run_row

    image = samples.by_device[DeviceType.ESME].data
    key = trusted_key()
    rows = run_device_matrix(image, samples.signing_key, key)
    caught, defects = score(rows)
    times = []
    for _ in range(max(1, repeat // 2)):
        start = time.perf_counter()
        run_row(CONFORMANT, image, samples.signing_key, key)
        times.append(time.perf_counter() - start)
    return {"rows": rows, "caught": caught, "defects": defects, "wall_s": statistics.median(times)}


def print_device(result: dict) -> None:
    rows = result["rows"]
    width = max(len(r.name) for r in rows)
    print(f"{'device':<{width}}  {'class':<16}  expected  caught  checks that failed (warned)")
    for row in rows:
        kind = row.kind.value if row.kind else "reference"
        expected = row.expected_check or "none"
        mark = "yes" if row.caught else "NO"
        warned = f" ({', '.join(row.warned)})" if row.warned else ""
        print(f"{row.name:<{width}}  {kind:<16}  {expected:<8}  {mark:<6}  {', '.join(row.failed) or '-'}{warned}")
    caught, defects = result["caught"], result["defects"]
    print(f"\ndevice mutation score: {caught}/{defects} = {caught / defects:.0%}")
    print(f"certify device --virtual conformant wall time (all device checks, ESME sample): {result['wall_s']:.2f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--repeat", type=int, default=5)
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--image-only", action="store_true")
    which.add_argument("--device-only", action="store_true")
    args = parser.parse_args()
    samples = load_samples()
    if args.device_only:
        device = device_matrix(samples, args.repeat)
        if args.json:
            print(json.dumps(_device_json(device)))
        else:
            print_device(device)
        return 0 if device["caught"] == device["defects"] and all(r.caught for r in device["rows"]) else 1
    device = None if args.image_only else device_matrix(samples, args.repeat)
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
            **({"device": _device_json(device)} if device is not None else {}),
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
    if device is not None:
        print()
        print_device(device)
        if not all(r.caught for r in device["rows"]):
            return 1
    return 0 if caught == len(rows) else 1


def _device_json(device: dict) -> dict:
    return {"rows": [{"device": r.name, "class": r.kind.value if r.kind else "reference",
                      "expected": r.expected_check, "failed": list(r.failed), "warned": list(r.warned),
                      "caught": r.caught} for r in device["rows"]],
            "caught": device["caught"], "defects": device["defects"], "wall_s": round(device["wall_s"], 3)}


if __name__ == "__main__":
    sys.exit(main())
