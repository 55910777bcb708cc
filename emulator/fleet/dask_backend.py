"""Fleet chunks on a Dask distributed cluster (``ch-emulator fleet --dask ADDRESS``).

The same chunks as the local process pool, as Dask tasks: :func:`~emulator.fleet.run.run_chunk`
is a pure function of (spec, chunk), so when a worker is lost mid-run the scheduler runs its
chunks again elsewhere and the results do not change. The spec (with its image bytes) is
scattered to every worker once. Tasks are submitted at most ``window`` chunks ahead of the
consumer, so results wait in memory only for the chunks before them. ``"local"`` starts a
LocalCluster on this machine (``workers`` processes, one thread each) and closes it afterwards.
"""

from __future__ import annotations

import logging
import socket
import uuid
from urllib.parse import urlsplit
from typing import Any, Callable, Iterator

from .run import Event, FleetError, run_chunk
from .spec import FleetSpec

_LOGGER = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0


class DaskUnavailable(FleetError):
    """distributed is not installed, or the scheduler cannot be reached."""


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise DaskUnavailable("--dask needs the 'distributed' package: pip install 'ch-emulator[fleet]'") from None
    return distributed


def _probe(address: str) -> None:
    """Fail fast, and before any Dask machinery starts, when nothing listens at ``address``."""
    parsed = urlsplit(address if "://" in address else f"tcp://{address}")
    try:
        host, port = parsed.hostname, parsed.port or 8786
    except ValueError as exc:
        raise DaskUnavailable(f"--dask {address}: not a scheduler address (tcp://HOST:PORT): {exc}") from None
    if parsed.scheme not in ("tcp", "tls") or not host:
        raise DaskUnavailable(f"--dask {address}: not a scheduler address (tcp://HOST:PORT, or 'local')")
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise DaskUnavailable(f"--dask {address}: cannot reach the Dask scheduler: "
                              f"{exc.strerror or exc}") from None


class DaskBackend:
    def __init__(self, address: str, workers: int) -> None:
        self.address = address
        self.workers = workers
        self.workers_seen = 0

    def _connect(self, distributed: Any) -> tuple[Any, Any]:
        if self.address == "local":
            cluster = distributed.LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True,
                                               dashboard_address=":0", silence_logs=logging.WARNING)
            return distributed.Client(cluster), cluster
        _probe(self.address)
        try:
            return distributed.Client(self.address, timeout=CONNECT_TIMEOUT_S), None
        except (OSError, TimeoutError, ValueError) as exc:
            raise DaskUnavailable(f"--dask {self.address}: cannot reach the Dask scheduler: {exc}") from None

    def __call__(self, spec: FleetSpec, chunks: list[range], wave: int, window: int,
                 released: Callable[[], int]) -> Iterator[Event]:
        distributed = _import_distributed()
        client, cluster = self._connect(distributed)
        try:
            self.workers_seen = len(client.scheduler_info().get("workers", {}))
            run_id = uuid.uuid4().hex[:12]
            [spec_future] = client.scatter([spec], broadcast=True, hash=False)
            running = distributed.as_completed()
            submitted = 0

            def feed() -> None:
                nonlocal submitted
                while submitted < len(chunks) and submitted < released() + window:
                    r = chunks[submitted]
                    running.add(client.submit(run_chunk, spec_future, submitted, r.start, r.stop, wave,
                                              key=f"fleet-chunk-{run_id}-{submitted}", pure=False))
                    submitted += 1

            feed()
            for future in running:
                try:
                    result = future.result()
                except Exception as exc:  # the chunk raised on a worker: a bug, not a lost worker
                    raise FleetError(f"chunk {future.key}: {type(exc).__name__}: {exc}") from exc
                future.release()
                self.workers_seen = max(self.workers_seen, len(client.scheduler_info().get("workers", {})))
                yield "result", result.index, result
                feed()
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
