"""Runs a fleet: fixed-size chunks of premises on worker processes (or a Dask cluster), results
streamed back in premises order, progress merged, one summary.

A chunk is ``chunk`` consecutive premises indices (the last may be shorter); its size does not
depend on the number of workers, and every premises is built from its global index alone, so the
per-device results and the results digest are the same on 1 worker, 16 workers or a cluster.
Chunks finish in any order; the parent hands their device results on (to the tally, a results
file, the caller) strictly in chunk order, buffering at most ``window`` chunks, so a million
devices never sit in memory at once.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import queue as queue_module
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from .shard import FAILED, IDLE, STATES, WAVE_PREMISES, DeviceResult, run_range
from .spec import FleetSpec
from .tally import FleetTally

_LOGGER = logging.getLogger(__name__)

ProgressCallback = Callable[[dict[str, Any]], None]
ResultCallback = Callable[[DeviceResult], None]

# Premises per chunk (one task): one wave (WAVE_PREMISES). Small enough that a lost worker costs
# little, the in-order buffer stays small and a small fleet still spreads over the workers; large
# enough that a task's overhead (a queue round trip, a Dask task) is noise beside its seconds.
CHUNK_PREMISES = WAVE_PREMISES

Row = tuple[int, int, str, str | None, str, str | None, float | None]  # a DeviceResult, compact


@dataclass(frozen=True, slots=True)
class ChunkResult:
    """What a worker sends back for one chunk: compact rows in premises order, and totals."""

    index: int
    rows: tuple[Row, ...]
    block_exchanges: int
    simulated_s: float
    wall_s: float

    def results(self) -> Iterator[DeviceResult]:
        for row in self.rows:
            yield DeviceResult(*row)


def run_chunk(spec: FleetSpec, index: int, start: int, stop: int, wave: int = WAVE_PREMISES,
              on_progress: ProgressCallback | None = None) -> ChunkResult:
    """Run premises ``start .. stop - 1`` (one chunk); a pure function of its arguments."""
    shard = run_range(spec, range(start, stop), on_progress, wave=wave)
    ordered = sorted(shard.results, key=lambda r: (r.premises, r.device))
    rows = tuple((r.device, r.premises, r.device_type, r.fault, r.outcome, r.reason, r.duration_s) for r in ordered)
    return ChunkResult(index, rows, shard.block_exchanges, shard.simulated_s, shard.wall_s)


def chunk_ranges(premises: int, chunk: int = CHUNK_PREMISES) -> list[range]:
    if chunk < 1:
        raise ValueError(f"chunk must be at least 1 premises, got {chunk}")
    return [range(start, min(start + chunk, premises)) for start in range(0, premises, chunk)]


def shard_ranges(premises: int, workers: int) -> list[range]:
    """``premises`` split into ``workers`` contiguous ranges (kept for callers that shard by hand)."""
    workers = max(1, min(workers, premises))
    size, extra = divmod(premises, workers)
    out, start = [], 0
    for i in range(workers):
        n = size + (1 if i < extra else 0)
        out.append(range(start, start + n))
        start += n
    return out


class FleetError(RuntimeError):
    """A chunk failed or a worker vanished (the message names the chunk and its premises)."""


@dataclass
class FleetResult:
    spec: FleetSpec
    tally: FleetTally
    block_exchanges: int
    simulated_s: float
    wall_s: float
    workers: int
    backend: str = "processes"
    results: list[DeviceResult] = field(default_factory=list)  # every device's; empty with keep_results=False

    def failed_by_reason(self) -> dict[str, int]:
        return self.tally.failed_by_reason()

    def digest(self) -> str:
        """SHA-256 over every device's result in premises order: equal digests, identical outcomes."""
        return self.tally.digest()

    def summary(self) -> dict[str, Any]:
        t = self.tally
        return {
            "event": "fleet_summary",
            "premises": self.spec.premises,
            "devices": t.devices,
            "succeeded": t.succeeded,
            "failed": t.failed_by_reason(),
            "duration_s": t.duration_summary(),
            "simulated_s": round(self.simulated_s, 3),
            "wall_s": round(self.wall_s, 3),
            "block_exchanges": self.block_exchanges,
            "exchanges_per_wall_s": round(self.block_exchanges / self.wall_s, 1) if self.wall_s > 0 else None,
            "workers": self.workers,
            "backend": self.backend,
            "seed": self.spec.seed,
            "faults": t.faults(),
            "results_digest": t.digest(),
        }


# -- backends: each yields ("progress", chunk, snapshot) and ("result", chunk, ChunkResult) -----------
Event = tuple[str, int, Any]


def _serial(spec: FleetSpec, chunks: list[range], wave: int, _window: int,
            _released: Callable[[], int]) -> Iterator[Event]:
    pending: list[Event] = []
    for i, r in enumerate(chunks):
        def progress(snap: dict[str, Any], i: int = i) -> None:
            pending.append(("progress", i, snap))

        result = run_chunk(spec, i, r.start, r.stop, wave, progress)
        yield from pending
        pending.clear()
        yield "result", i, result


def _pool_worker(spec: FleetSpec, tasks: Any, out: Any, wave: int) -> None:
    # What the worker inherited (modules, the spec and its image) lives as long as the worker:
    # out of the collector's sight, the full collections a fleet triggers have less to walk.
    gc.collect()
    gc.freeze()
    for index, start, stop in iter(tasks.get, None):
        try:
            result = run_chunk(spec, index, start, stop, wave, lambda snap: out.put(("progress", index, snap)))
            out.put(("result", index, result))
        except BaseException as exc:  # reported to the parent, which raises it with the chunk named
            out.put(("error", index, f"{type(exc).__name__}: {exc}"))
            return


class _ProcessPool:
    """Worker processes fed chunk by chunk, never more than ``window`` chunks ahead."""

    def __init__(self, workers: int) -> None:
        self.workers = workers

    def __call__(self, spec: FleetSpec, chunks: list[range], wave: int, window: int,
                 released: Callable[[], int]) -> Iterator[Event]:
        ctx: Any = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
        tasks, out = ctx.Queue(), ctx.Queue()
        procs = [ctx.Process(target=_pool_worker, args=(spec, tasks, out, wave), daemon=True)
                 for _ in range(self.workers)]
        for p in procs:
            p.start()
        submitted = done = 0

        def feed(limit: int) -> None:
            nonlocal submitted
            while submitted < len(chunks) and submitted < limit:
                r = chunks[submitted]
                tasks.put((submitted, r.start, r.stop))
                submitted += 1

        feed(window)
        try:
            while done < len(chunks):
                try:
                    kind, index, payload = out.get(timeout=1.0)
                except queue_module.Empty:
                    if any(not p.is_alive() for p in procs) and out.empty():
                        raise FleetError(f"a worker process ended without a result (exit codes "
                                         f"{[p.exitcode for p in procs]}); chunks {done}..{submitted - 1} were running")
                    continue
                if kind == "error":
                    r = chunks[index]
                    raise FleetError(f"chunk {index} (premises {r.start}..{r.stop - 1}) failed: {payload}")
                if kind == "result":
                    done += 1
                yield kind, index, payload
                if kind == "result":
                    feed(released() + window)
        finally:
            for _ in procs:
                tasks.put(None)
            for p in procs:
                p.join(timeout=5)
                if p.is_alive():
                    p.terminate()
            for q in (tasks, out):  # end the queues' feeder threads in this process
                q.close()
                q.join_thread()


# A backend runs ``chunks`` and yields their events; it keeps at most ``window`` chunks beyond
# ``released()`` (how many chunks the consumer has handed on in order) submitted.
Backend = Callable[[FleetSpec, list[range], int, int, Callable[[], int]], Iterator[Event]]


def run_fleet(spec: FleetSpec, *, workers: int | None = None, on_progress: ProgressCallback | None = None,
              on_result: ResultCallback | None = None, keep_results: bool = True,
              wave: int = WAVE_PREMISES, chunk: int = CHUNK_PREMISES, dask: str | None = None) -> FleetResult:
    """Run ``spec``: ``on_progress`` gets merged snapshots (counts per state, failed by reason),
    ``on_result`` every device's result in premises order. ``dask`` is a scheduler address
    (``tcp://host:8786``) or ``"local"`` (a LocalCluster of ``workers`` processes); without it,
    ``workers`` local processes (default: the spec's, else all cores; 1 runs in this process)."""
    spec.validate()
    chunks = chunk_ranges(spec.premises, chunk)
    wanted = workers or spec.workers or os.cpu_count() or 1
    backend: Backend
    if dask is not None:
        from .dask_backend import DaskBackend

        dask_backend = DaskBackend(dask, wanted)
        backend, label = dask_backend, f"dask {dask}"
    elif min(wanted, len(chunks)) <= 1:
        backend, label = _serial, "in-process"
    else:
        backend, label = _ProcessPool(min(wanted, len(chunks))), "processes"
    per_premises = sum(m.count for m in spec.devices)
    total_devices = spec.premises * per_premises
    tally = FleetTally()
    kept: list[DeviceResult] = []
    started = time.perf_counter()
    finished: dict[int, ChunkResult] = {}
    live: dict[int, dict[str, Any]] = {}
    done_states: Counter[str] = Counter()
    done_reasons: Counter[str] = Counter()
    done_devices = done_exchanges = 0
    simulated = 0.0
    next_index = 0

    def snapshot() -> dict[str, Any]:
        states = Counter({s: 0 for s in STATES}) + done_states
        failed = Counter(done_reasons)
        exchanges, devices, sim = done_exchanges, done_devices, simulated
        for snap in live.values():
            states.update(snap["states"])
            failed.update(snap["failed"])
            exchanges += snap["block_exchanges"]
            devices += sum(snap["states"].values())
            sim = max(sim, snap["time"])
        states[IDLE] += total_devices - devices
        return {"event": "fleet_progress", "time": round(sim, 3), "wall_s": round(time.perf_counter() - started, 3),
                "devices": total_devices, "states": {s: states[s] for s in STATES},
                "failed": dict(sorted(failed.items())), "block_exchanges": exchanges}

    window = 4 * max(1, wanted)
    workers_used = 1
    for kind, index, payload in backend(spec, chunks, wave, window, lambda: next_index):
        if kind == "progress":
            live[index] = payload
        else:
            result: ChunkResult = payload
            live.pop(index, None)
            finished[index] = result
            done_exchanges += result.block_exchanges
            simulated = max(simulated, result.simulated_s)
            for row in result.rows:
                done_devices += 1
                done_states[row[4]] += 1
                if row[4] == FAILED:
                    done_reasons[row[5] or "unknown"] += 1
            while next_index in finished:  # hand results on in chunk order
                for r in finished.pop(next_index).results():
                    tally.add(r)
                    if on_result is not None:
                        on_result(r)
                    if keep_results:
                        kept.append(r)
                next_index += 1
        if on_progress is not None:
            on_progress(snapshot())
    if dask is not None:
        workers_used = dask_backend.workers_seen
    elif label == "processes":
        workers_used = min(wanted, len(chunks))
    if next_index != len(chunks):
        raise FleetError(f"only {next_index} of {len(chunks)} chunks came back")
    return FleetResult(spec=spec, tally=tally, block_exchanges=done_exchanges, simulated_s=simulated,
                       wall_s=time.perf_counter() - started, workers=workers_used, backend=label, results=kept)
