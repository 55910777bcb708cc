"""The same fleet on a Dask cluster: same per-device results and digest as the process pool, also
when a worker dies mid-run (docs/fleet.md, Scale-out)."""

from __future__ import annotations

import json
import os
import signal
from typing import Any, Iterator

import pytest

from emulator.fleet.run import run_fleet
from emulator.fleet.spec import FleetSpec

distributed = pytest.importorskip("distributed")

MIX = {"first_request_lost": 20.0, "reboot_mid_transfer": 20.0, "invalid_image_at_end": 20.0}


@pytest.fixture(scope="module")
def cluster(ppmid_source: Any) -> Iterator[Any]:
    """Two small worker processes (one thread each) with nannies that restart a killed worker.

    Module-scoped, and warmed with one tiny run: distributed keeps one process-wide daemon thread
    ("Dask-Offload") from its first use on, by design; it starts here, before the thread-leak
    check of each test takes its snapshot, so the tests still catch threads a run leaves behind."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  silence_logs=50) as local:
        run_fleet(FleetSpec(premises=1, images=(ppmid_source,), radio=None), dask=local.scheduler_address)
        yield local


def test_dask_gives_the_process_pool_results(cluster: Any, small_fleet: FleetSpec) -> None:
    spec = small_fleet.with_(premises=6, faults=MIX)
    pool = run_fleet(spec, workers=2, chunk=2)
    on_dask = run_fleet(spec, dask=cluster.scheduler_address, chunk=2)
    assert on_dask.backend.startswith("dask") and on_dask.workers == 2
    assert [r.to_dict() for r in on_dask.results] == [r.to_dict() for r in pool.results]
    assert on_dask.digest() == pool.digest()
    assert on_dask.block_exchanges == pool.block_exchanges


def test_a_worker_lost_mid_run_is_retried_without_changing_results(cluster: Any, small_fleet: FleetSpec) -> None:
    spec = small_fleet.with_(premises=8, faults=MIX)
    reference = run_fleet(spec, workers=1)
    # A cluster of its own: its nanny restarts the killed worker (threads in this process), and
    # closing it here ends them before the thread-leak check.
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  silence_logs=50) as own:
        with distributed.Client(own.scheduler_address) as client:
            pids = list(client.run(os.getpid).values())
        killed: list[int] = []

        def kill_one(snapshot: dict[str, Any]) -> None:
            if not killed:  # after the first chunk came back, the others are running on both workers
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])

        lost = run_fleet(spec, dask=own.scheduler_address, chunk=1, on_progress=kill_one)
    assert killed
    assert lost.digest() == reference.digest()
    assert [r.to_dict() for r in lost.results] == [r.to_dict() for r in reference.results]


def test_unreachable_scheduler_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    from emulator.cli import main

    assert main(["fleet", "--premises", "1", "--dask", "tcp://127.0.0.1:9", "--json"]) == 2
    err = capsys.readouterr().err
    assert "cannot reach the Dask scheduler" in err and "Traceback" not in err


def test_cli_dask_local_runs_a_local_cluster(cluster: Any, ppmid_source: Any,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from emulator.cli import main

    assert main(["fleet", "--premises", "3", "--dask", "local", "--workers", "2", "--seed", "3", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert summary["backend"] == "dask local" and summary["workers"] == 2
    assert summary["succeeded"] == 3
    reference = run_fleet(FleetSpec(premises=3, images=(ppmid_source,), seed=3), workers=1)
    assert summary["results_digest"] == reference.digest()

