"""Progress of a fleet run: a live rich display for people, JSON lines for CI.

Both take the merged snapshots :func:`emulator.fleet.run.run_fleet` reports; neither is needed
for the run itself.
"""

from __future__ import annotations

import json
import time
from typing import Any, TextIO

from .shard import STATES, SUCCEEDED, FAILED


class JsonProgress:
    """One ``fleet_progress`` JSON object per line, at most every ``every_s`` wall seconds, and
    always the one that shows every device finished."""

    def __init__(self, stream: TextIO, *, every_s: float = 1.0) -> None:
        self.stream = stream
        self.every_s = every_s
        self._last = -1e18
        self._finished_shown = False

    def __call__(self, snapshot: dict[str, Any]) -> None:
        now = time.perf_counter()
        states = snapshot.get("states", {})
        finished = states.get("succeeded", 0) + states.get("failed", 0) == snapshot.get("devices", -1)
        if finished and self._finished_shown:
            return  # the whole fleet done is shown once
        if now - self._last < self.every_s and not finished:
            return
        self._last = now
        self._finished_shown = finished
        self.stream.write(json.dumps(snapshot) + "\n")
        self.stream.flush()


def _eta(done: int, total: int, elapsed: float) -> float | None:
    if done <= 0 or total <= done:
        return None
    return elapsed * (total - done) / done


class RichProgress:
    """Overall bar with ETA in simulated and wall time, and counts per state and failure reason."""

    def __init__(self, total_devices: int) -> None:
        from rich.console import Console
        from rich.live import Live

        self.total = total_devices
        self.console = Console(stderr=True)
        self._live = Live(console=self.console, refresh_per_second=4, transient=False)
        self._started = time.perf_counter()

    def __enter__(self) -> "RichProgress":
        self._live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._live.__exit__(*exc)

    def __call__(self, snapshot: dict[str, Any]) -> None:
        self._live.update(self.render(snapshot))

    def render(self, snapshot: dict[str, Any]) -> Any:
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        states = snapshot["states"]
        done = states.get(SUCCEEDED, 0) + states.get(FAILED, 0)
        wall = time.perf_counter() - self._started
        sim = snapshot["time"]
        eta_wall = _eta(done, self.total, wall)
        eta_sim = _eta(done, self.total, sim)
        table = Table.grid(padding=(0, 2))
        table.add_row(ProgressBar(total=self.total, completed=done, width=40),
                      f"{done}/{self.total} devices",
                      f"sim {sim:,.0f} s (ETA {'-' if eta_sim is None else f'{eta_sim:,.0f} s'})",
                      f"wall {wall:,.1f} s (ETA {'-' if eta_wall is None else f'{eta_wall:,.1f} s'})")
        lines = ["  ".join(f"{name}: {states.get(name, 0)}" for name in STATES)]
        lines += [f"  failed, {reason}: {n}" for reason, n in snapshot["failed"].items()]
        return Group(table, Text("\n".join(lines)))
