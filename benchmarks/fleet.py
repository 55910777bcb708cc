"""Fleet benchmarks: block exchanges per wall-second, memory per emulated device, fleets at scale.

    .venv/bin/python benchmarks/fleet.py [--json] [--scale-premises N ...] [--workers W]
                                         [--dask-premises N] [--skip-scale] [--han-security cbke]

Targets (issue 14, docs/fleet.md): >= 75,000 block exchanges/s on one core through server +
virtual HAN + client (printed per frame and with the fast path); < 4 KiB per emulated device beyond the shared image; 10,000 premises
(Comms Hub + PPMID, 64 KiB image, radio model) < 30 s wall; 100,000 < 5 min; peak RSS per worker
< 1 GB. Fleets not run (100,000 by default; 1,000,000 on 64 cores) are *projected* from the
measured cost per premises (core-seconds), and printed as projections.
"""

from __future__ import annotations

import argparse
import gc
from typing import TYPE_CHECKING
import json
import os
import sys
import tempfile
import time
import tracemalloc
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from emulator.devices.device import EmulatedDevice  # noqa: E402
from emulator.gbcs.codes import DeviceType  # noqa: E402
from emulator.han.virtual import VirtualHan  # noqa: E402
from emulator.hub.comms_hub import CommsHub  # noqa: E402
from emulator.ota.client import ClientProfile  # noqa: E402
from emulator.runtime.clock import VirtualClock  # noqa: E402
from emulator.runtime.events import EventBus  # noqa: E402

if TYPE_CHECKING:
    from emulator.fleet.spec import FleetSpec

IMAGE_SIZE = 64 * 1024


def make_image(size: int = IMAGE_SIZE) -> bytes:
    """A PPMID image (GBCS PPMID layout, no signature) of exactly ``size`` bytes."""
    from emulator.ota.image import build_image

    def build(n: int) -> bytes:
        return build_image(bytes((i * 31 + 7) & 0xFF for i in range(n)), manufacturer_code=0x121D,
                           image_type=0x0084, file_version=0xACDCACDD, header_string="bench PPMID TEST ONLY",
                           min_hardware_version=0x1111, max_hardware_version=0x1211, layout="gbcs-ppmid")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the layout note: the fleet reads it as a PPMID image anyway
        overhead = len(build(0))
        return build(size - overhead)


HAN_SECURITY = "none"  # --han-security: "cbke" joins, runs CBKE and APS-encrypts (docs/cbke.md)


def _secure(han: VirtualHan, hub: CommsHub, devices: dict, clock: VirtualClock, bus: EventBus) -> None:
    from types import SimpleNamespace

    from emulator.scenario.han_security import HanSecurity, HanSecurityMode, secure_premises

    site = SimpleNamespace(hub=hub, devices=devices, han=han, clock=clock, bus=bus,
                           spec=SimpleNamespace(premises_id="bench"))
    secure_premises(site, HanSecurity(HanSecurityMode.CBKE, seed=1))  # type: ignore[arg-type]


# One profile for every device, as the fleet shares one per device type and version (frozen).
_PROFILE = ClientProfile(0x121D, 0x84, 0xACDC0001, 0x1200, max_data_size=64)


def _premises(clock: VirtualClock, bus: EventBus, i: int, image: bytes, references: dict,
              fast: bool = False) -> tuple:
    from emulator.ota.fastpath import OtaFastPath
    from emulator.runtime.clock import PremisesClock

    local = PremisesClock(clock) if fast else None
    node_clock = local if local is not None else clock
    han = VirtualHan(node_clock, seed=i)
    hub_id, dev_id = 0x00DB000000000000 | (i << 8) | 0xA2, 0x00DB000000000000 | (i << 8) | 0xA4
    hub = CommsHub(hub_id, han.attach(hub_id, 0x0000), node_clock, bus)
    hub.add_image(image)
    device = EmulatedDevice(dev_id, DeviceType.PPMID, _PROFILE, han.attach(dev_id, 0x1234), node_clock, bus,
                            hub_eui64=hub_id)
    device.client.reference_images = references.get
    if HAN_SECURITY == "cbke":
        _secure(han, hub, {dev_id: device}, clock, bus)
    elif local is not None:
        han.fast_path = OtaFastPath(han, local, hub, {dev_id: device})
    return han, hub, device


def cbke_cost(premises: int = 4, devices: int = 3) -> dict:
    """CPU seconds to provision (certificates) and run join + CBKE for ``premises`` hubs with
    ``devices`` devices each, until every device holds its link key; and the projection for a
    1,000-premises fleet of 3 devices each."""
    clock = VirtualClock()
    bus = EventBus(clock)
    started = time.process_time()
    sites = []
    for i in range(premises):
        han = VirtualHan(clock, seed=i)
        hub_id = 0x00DC000000000000 | (i << 8) | 0xA2
        hub = CommsHub(hub_id, han.attach(hub_id, 0x0000), clock, bus)
        devs = {}
        for k in range(devices):
            eui = 0x00DC000000000000 | (i << 8) | (0xB0 + k)
            devs[eui] = EmulatedDevice(eui, DeviceType.PPMID, ClientProfile(0x121D, 0x84, 0xACDC0001, 0x1200),
                                       han.attach(eui, 0x1000 + k), clock, bus, hub_eui64=hub_id)
        _secure(han, hub, devs, clock, bus)
        sites.append(devs)
    provisioned = time.process_time()
    for devs in sites:
        for device in devs.values():
            device.start()
    clock.run(until=600)
    done = sum(1 for devs in sites for d in devs.values() if d.key_establishment.link_key is not None)
    cpu = time.process_time() - started
    per_device = cpu / (premises * devices)
    return {"cbke_devices": premises * devices, "cbke_established": done,
            "cbke_provision_cpu_s": round(provisioned - started, 2), "cbke_cpu_s": round(cpu, 2),
            "cbke_cpu_s_per_device": round(per_device, 3),
            "cbke_1000_premises_x3_cpu_s": round(per_device * 3000), "cbke_virtual_s_last": round(clock.now(), 1)}


def exchanges_per_second(image: bytes, premises: int = 40, fast: bool = False) -> dict:
    """Block exchanges through server + virtual HAN + client per wall-second, one process;
    ``fast``: with the fast path (docs/fleet.md), else every frame through the full machinery."""
    from emulator.ota.image import parse_image

    header = parse_image(image).header
    references = {(header.manufacturer_code, header.image_type, header.file_version): image}
    clock = VirtualClock()
    bus = EventBus(clock)
    sites = [_premises(clock, bus, i, image, references, fast) for i in range(premises)]
    for _, _, device in sites:
        device.start()
    if HAN_SECURITY == "cbke":
        clock.run(until=0.5)  # join + CBKE (timed by cbke_cost): the rate is the encrypted transfer's
    started, cpu_started = time.perf_counter(), time.process_time()
    clock.run(until=3600)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    exchanges = sum(s.blocks_served for _, hub, _ in sites for s in hub.server.sessions)
    done = sum(1 for _, _, d in sites if d.firmware.active_version == header.file_version)
    return {"exchanges": exchanges, "wall_s": wall, "exchanges_per_s": exchanges / wall, "cpu_s": cpu,
            "exchanges_per_cpu_s": exchanges / cpu, "completed": done}


def bytes_per_device(image: bytes, premises: int = 20) -> dict:
    """Live memory per emulated device (hub or HAN device) after a completed upgrade, beyond the
    one shared copy of the image (tracemalloc: Python objects still referenced after a GC)."""
    from emulator.ota.image import parse_image

    header = parse_image(image).header
    references = {(header.manufacturer_code, header.image_type, header.file_version): image}
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    clock = VirtualClock()
    bus = EventBus(clock)
    sites = [_premises(clock, bus, i, image, references) for i in range(premises)]
    for _, _, device in sites:
        device.start()
    clock.run(until=3600)
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    devices = 2 * premises  # each premises: a Comms Hub and a PPMID
    done = sum(1 for _, _, d in sites if d.firmware.active_version == header.file_version)
    del sites
    return {"bytes_per_device": used / devices, "devices": devices, "completed": done}


FAULT_MIX_PERCENT = 14.0  # of the devices, spread evenly over the fault catalogue


def _spec(image_path: str, premises: int, *, per_frame: bool = False, faults: bool = False) -> "FleetSpec":
    from emulator.faults import FAULTS
    from emulator.fleet.spec import FleetSpec, read_image

    mix = {name: FAULT_MIX_PERCENT / len(FAULTS) for name in sorted(FAULTS)} if faults else {}
    return FleetSpec(premises=premises, images=(read_image(image_path, DeviceType.PPMID),), seed=1,
                     progress_interval_s=600.0, per_frame=per_frame, faults=mix)


def _peak_rss_children_mb() -> float:
    """Largest peak resident set of the worker processes this process waited for (Linux: KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def scale(image_path: str, premises: int, workers: int, dask: str | None = None, *, per_frame: bool = False,
          faults: bool = False) -> dict:
    """One fleet run; its cost per premises in core-seconds (wall x workers / premises), and the
    CPU it took: the worker processes' (user + system, as they exit) and this process's."""
    import resource

    from emulator.fleet.run import run_fleet

    def cpu(who: int) -> float:
        usage = resource.getrusage(who)
        return usage.ru_utime + usage.ru_stime

    spec = _spec(image_path, premises, per_frame=per_frame, faults=faults)
    parent, children = cpu(resource.RUSAGE_SELF), cpu(resource.RUSAGE_CHILDREN)
    result = run_fleet(spec, workers=workers, dask=dask, keep_results=False)
    parent, children = cpu(resource.RUSAGE_SELF) - parent, cpu(resource.RUSAGE_CHILDREN) - children
    s = result.summary()
    return {"premises": premises, "workers": result.workers, "backend": result.backend, "per_frame": per_frame,
            "fault_mix_percent": FAULT_MIX_PERCENT if faults else 0.0, "results_digest": s["results_digest"],
            "wall_s": round(result.wall_s, 1), "succeeded": s["succeeded"], "simulated_s": s["simulated_s"],
            "exchanges_per_s": s["exchanges_per_wall_s"], "duration_p50_s": s["duration_s"]["p50"],
            "core_s_per_premises": round(result.wall_s * result.workers / premises, 5),
            "cpu_ms_per_premises": round((parent + children) * 1000 / premises, 3),
            "parent_cpu_s": round(parent, 2), "worker_cpu_s": round(children, 2),
            "load_average_after": [round(x, 2) for x in os.getloadavg()]}


def project(core_s_per_premises: float, premises: int, cores: int) -> dict:
    return {"premises": premises, "cores": cores, "projected": True,
            "wall_s": round(core_s_per_premises * premises / cores, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="one JSON object with every figure")
    parser.add_argument("--scale-premises", type=int, nargs="+", default=[10_000],
                        help="fleets to run with the process pool (default 10000)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--dask-premises", type=int, default=400, help="a --dask local run of this size (0: none)")
    parser.add_argument("--skip-scale", action="store_true", help="only the one-core figures")
    parser.add_argument("--han-security", choices=("none", "cbke"), default="none",
                        help="one-core figures with join + CBKE + APS encryption on every HAN (default: none)")
    parser.add_argument("--per-frame", action="store_true", help="fleet runs without the fast path")
    parser.add_argument("--fault-mix-premises", type=int, default=400,
                        help=f"a run with {FAULT_MIX_PERCENT:g} %% of the devices faulty, fast path and per frame (0: none)")
    args = parser.parse_args(argv)
    global HAN_SECURITY
    HAN_SECURITY = args.han_security
    from emulator.compiled import compiled_modules, describe

    image = make_image()
    out: dict = {"image_bytes": len(image), "hot_modules_compiled": compiled_modules()}
    rate = exchanges_per_second(image)
    out.update(exchanges_per_s=round(rate["exchanges_per_s"]), exchanges_measured=rate["exchanges"],
               exchanges_per_cpu_s=round(rate["exchanges_per_cpu_s"]))
    batched = exchanges_per_second(image, fast=True)
    out.update(exchanges_per_s_batched=round(batched["exchanges_per_s"]))
    try:
        out["load_average"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    out["bytes_per_device"] = round(bytes_per_device(image)["bytes_per_device"])
    if HAN_SECURITY == "cbke":
        out["han_security"] = "cbke"
        out.update(cbke_cost())
    if not args.skip_scale:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "bench-ppmid.ota")
            Path(path).write_bytes(image)
            runs = [scale(path, n, args.workers, per_frame=args.per_frame) for n in args.scale_premises]
            out["scale_premises"] = runs
            if args.fault_mix_premises:
                out["fault_mix"] = [scale(path, args.fault_mix_premises, args.workers, faults=True, per_frame=pf)
                                    for pf in (False, True)]
            out["peak_rss_per_worker_mb"] = round(_peak_rss_children_mb(), 1)
            if args.dask_premises:
                out["dask_local"] = scale(path, args.dask_premises, 2, dask="local")
        cost = min(r["core_s_per_premises"] for r in runs)  # the largest fleets amortise start-up best
        biggest = max(r["premises"] for r in runs)
        out["projections"] = [project(cost, n, c) for n, c in ((100_000, args.workers), (1_000_000, 64))
                              if n > biggest]
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"hot modules: {describe()}")
    print(f"block exchanges per wall-second (1 core, fixed latency): {out['exchanges_per_s']:,}  (target >= 75,000); "
          f"per CPU-second: {out['exchanges_per_cpu_s']:,}")
    print(f"block exchanges per wall-second (1 core, fixed latency, fast path): {out['exchanges_per_s_batched']:,}")
    print(f"memory per emulated device beyond the image: {out['bytes_per_device']:,} B  (target < 4,096)")
    if "cbke_cpu_s" in out:
        print(f"join + CBKE (suite 2): {out['cbke_cpu_s_per_device']} s CPU per device, "
              f"{out['cbke_1000_premises_x3_cpu_s']:,} s CPU for 1,000 premises x 3 devices")
    for r in out.get("scale_premises", []):
        target = {10_000: " (target < 30 s)", 100_000: " (target < 300 s)"}.get(r["premises"], "")
        print(f"{r['premises']:,} premises, {len(image) // 1024} KiB image, {r['workers']} workers ({r['backend']}): "
              f"{r['wall_s']:,} s wall{target}; {r['succeeded']:,} succeeded, {r['exchanges_per_s']:,} exchanges/s, "
              f"{r['core_s_per_premises']} core-s per premises; CPU {r['cpu_ms_per_premises']} ms per premises "
              f"(workers {r['worker_cpu_s']:,} s, parent {r['parent_cpu_s']:,} s)")
    for r in out.get("fault_mix", []):
        print(f"{r['premises']:,} premises, {r['fault_mix_percent']:g} % faulty, {'per frame' if r['per_frame'] else 'fast path'}: "
              f"{r['wall_s']:,} s wall, {r['core_s_per_premises']} core-s per premises, digest {r['results_digest'][:12]}")
    if "peak_rss_per_worker_mb" in out:
        print(f"peak RSS per worker process: {out['peak_rss_per_worker_mb']:,} MB  (target < 1,024 MB)")
    if "dask_local" in out:
        r = out["dask_local"]
        print(f"--dask local, {r['workers']} workers, {r['premises']:,} premises: {r['wall_s']:,} s wall, "
              f"{r['core_s_per_premises']} core-s per premises")
    for p in out.get("projections", []):
        target = {100_000: " (target < 300 s)"}.get(p["premises"], "")
        print(f"projected, not run: {p['premises']:,} premises on {p['cores']} cores: {p['wall_s']:,} s{target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
