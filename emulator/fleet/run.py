"""Runs a fleet: premises sharded over worker processes, progress merged, one summary.

Shards are contiguous ranges of premises indices. Each worker sends progress snapshots and its
results over a queue; the parent merges them. Results are sorted by premises and device, so the
summary (and ``results_digest``) is the same whatever the number of workers.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import queue as queue_module
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from .shard import STATES, SUCCEEDED, WAVE_PREMISES, DeviceResult, ShardResult, run_range
from .spec import FleetSpec

_LOGGER = logging.getLogger(__name__)

ProgressCallback = Callable[[dict[str, Any]], None]


@dataclass
class FleetResult:
    spec: FleetSpec
    results: list[DeviceResult]
    block_exchanges: int
    simulated_s: float
    wall_s: float
    workers: int
    progress: list[dict[str, Any]] = field(default_factory=list)  # merged snapshots, for the report

    @property
    def durations(self) -> list[float]:
        return sorted(r.duration_s for r in self.results if r.outcome == SUCCEEDED and r.duration_s is not None)

    def failed_by_reason(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.results:
            if r.outcome != SUCCEEDED:
                key = r.reason or "unknown"
                out[key] = out.get(key, 0) + 1
        return dict(sorted(out.items()))

    def digest(self) -> str:
        """SHA-256 over every device's result: equal digests mean identical per-device outcomes."""
        h = hashlib.sha256()
        for r in self.results:
            h.update(json.dumps(r.to_dict(), sort_keys=True).encode())
        return h.hexdigest()

    def summary(self) -> dict[str, Any]:
        d = self.durations
        by_fault: dict[str, dict[str, int]] = {}
        for r in self.results:
            if r.fault is None:
                continue
            key = SUCCEEDED if r.outcome == SUCCEEDED else (r.reason or "unknown")
            bucket = by_fault.setdefault(r.fault, {})
            bucket[key] = bucket.get(key, 0) + 1
        return {
            "event": "fleet_summary",
            "premises": self.spec.premises,
            "devices": len(self.results),
            "succeeded": sum(1 for r in self.results if r.outcome == SUCCEEDED),
            "failed": self.failed_by_reason(),
            "duration_s": {"p50": _percentile(d, 50), "p95": _percentile(d, 95), "max": round(d[-1], 3) if d else None},
            "simulated_s": round(self.simulated_s, 3),
            "wall_s": round(self.wall_s, 3),
            "block_exchanges": self.block_exchanges,
            "exchanges_per_wall_s": round(self.block_exchanges / self.wall_s, 1) if self.wall_s > 0 else None,
            "workers": self.workers,
            "seed": self.spec.seed,
            "faults": {k: dict(sorted(v.items())) for k, v in sorted(by_fault.items())},
            "results_digest": self.digest(),
        }


def _percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile of sorted ``values``."""
    if not values:
        return None
    rank = max(1, -(-len(values) * pct // 100))
    return round(values[int(rank) - 1], 3)


def shard_ranges(premises: int, workers: int) -> list[range]:
    workers = max(1, min(workers, premises))
    size, extra = divmod(premises, workers)
    out, start = [], 0
    for i in range(workers):
        n = size + (1 if i < extra else 0)
        out.append(range(start, start + n))
        start += n
    return out


def _worker(spec: FleetSpec, indices: range, slot: int, out: Any, wave: int) -> None:
    try:
        result = run_range(spec, indices, lambda snapshot: out.put(("progress", slot, snapshot)), wave=wave)
        out.put(("result", slot, result))
    except BaseException as exc:  # reported to the parent, which raises it with the shard named
        out.put(("error", slot, f"{type(exc).__name__}: {exc}"))


class FleetError(RuntimeError):
    """A shard failed (the message names the shard and its premises)."""


def run_fleet(spec: FleetSpec, *, workers: int | None = None,
              on_progress: ProgressCallback | None = None, wave: int = WAVE_PREMISES) -> FleetResult:
    """Run ``spec``; ``on_progress`` gets merged snapshots (counts per state, failed by reason).

    Each worker runs its premises in waves of ``wave`` (see :func:`~emulator.fleet.shard.run_range`)."""
    spec.validate()
    wanted = workers or spec.workers or os.cpu_count() or 1
    ranges = shard_ranges(spec.premises, wanted)
    started = time.perf_counter()
    snapshots: dict[int, dict[str, Any]] = {}
    history: list[dict[str, Any]] = []
    devices_total = None

    def merged() -> dict[str, Any]:
        states = {s: 0 for s in STATES}
        failed: dict[str, int] = {}
        exchanges = 0
        for snap in snapshots.values():
            for k, v in snap["states"].items():
                states[k] += v
            for k, v in snap["failed"].items():
                failed[k] = failed.get(k, 0) + v
            exchanges += snap["block_exchanges"]
        sim = min(s["time"] for s in snapshots.values()) if len(snapshots) == len(ranges) else 0.0
        return {"event": "fleet_progress", "time": round(sim, 3), "wall_s": round(time.perf_counter() - started, 3),
                "devices": sum(states.values()), "states": states, "failed": dict(sorted(failed.items())),
                "block_exchanges": exchanges}

    def progress(slot: int, snapshot: dict[str, Any]) -> None:
        snapshots[slot] = snapshot
        m = merged()
        history.append({"time": snapshot["time"], "slot": slot, "done": snapshot["states"].get(SUCCEEDED, 0)})
        if on_progress is not None and len(snapshots) == len(ranges):
            on_progress(m)  # only once every worker has reported, so the totals are whole

    results: dict[int, ShardResult] = {}
    if len(ranges) == 1:
        results[0] = run_range(spec, ranges[0], lambda snap: progress(0, snap), wave=wave)
    else:
        ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
        out = ctx.Queue()
        procs = [ctx.Process(target=_worker, args=(spec, r, i, out, wave), daemon=True) for i, r in enumerate(ranges)]
        for p in procs:
            p.start()
        try:
            while len(results) < len(ranges):
                try:
                    kind, slot, payload = out.get(timeout=1.0)
                except queue_module.Empty:
                    dead = [i for i, p in enumerate(procs) if not p.is_alive() and i not in results]
                    if dead and out.empty():
                        r = ranges[dead[0]]
                        raise FleetError(f"shard {dead[0]} (premises {r.start}..{r.stop - 1}) ended without a result")
                    continue
                if kind == "progress":
                    progress(slot, payload)
                elif kind == "result":
                    results[slot] = payload
                else:
                    r = ranges[slot]
                    raise FleetError(f"shard {slot} (premises {r.start}..{r.stop - 1}) failed: {payload}")
        finally:
            for p in procs:
                p.join(timeout=5)
                if p.is_alive():
                    p.terminate()
    del devices_total
    all_results = sorted((r for s in results.values() for r in s.results), key=lambda r: (r.premises, r.device))
    return FleetResult(
        spec=spec, results=all_results,
        block_exchanges=sum(s.block_exchanges for s in results.values()),
        simulated_s=max(s.simulated_s for s in results.values()),
        wall_s=time.perf_counter() - started, workers=len(ranges),
        progress=_completions(all_results),
    )


def _completions(results: list[DeviceResult]) -> list[dict[str, Any]]:
    """Devices completed over simulated time (for the report's plot)."""
    times = sorted(r.duration_s for r in results if r.outcome == SUCCEEDED and r.duration_s is not None)
    return [{"time": t, "done": i + 1} for i, t in enumerate(times)]
