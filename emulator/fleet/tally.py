"""The summary of a fleet run, computed as the device results stream past (never all held).

:class:`FleetTally` takes each :class:`~emulator.fleet.shard.DeviceResult` once, in premises
order, and keeps only what the summary, the report and the JUnit file need: counts, failures by
reason with (up to ``max_listed``) the devices that failed, outcomes per fault, a bounded duration
sketch and the results digest (SHA-256 over every device's result, in order).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from .shard import SUCCEEDED, DeviceResult
from .sketch import DurationSketch

MAX_LISTED = 100_000  # failed devices remembered for the report and JUnit (the rest are counted)


@dataclass(slots=True)
class FailureGroup:
    """The devices that failed for one reason."""

    count: int = 0
    devices: list[DeviceResult] = field(default_factory=list)  # the first max_listed of them


class FleetTally:
    def __init__(self, *, max_listed: int = MAX_LISTED) -> None:
        self.max_listed = max_listed
        self.devices = 0
        self.succeeded = 0
        self.failures: dict[str, FailureGroup] = {}
        self.by_fault: dict[str, dict[str, int]] = {}
        self.by_type: dict[str, dict[str, int]] = {}
        self.durations = DurationSketch()
        self._listed = 0
        self._digest = hashlib.sha256()

    def add(self, r: DeviceResult) -> None:
        self.devices += 1
        self._digest.update(json.dumps(r.to_dict(), sort_keys=True).encode())
        key = SUCCEEDED if r.outcome == SUCCEEDED else (r.reason or "unknown")
        if r.outcome == SUCCEEDED:
            self.succeeded += 1
            if r.duration_s is not None:
                self.durations.add(r.duration_s)
        else:
            group = self.failures.get(key)
            if group is None:
                group = self.failures[key] = FailureGroup()
            group.count += 1
            if self._listed < self.max_listed:
                group.devices.append(r)
                self._listed += 1
        if r.fault is not None:
            bucket = self.by_fault.setdefault(r.fault, {})
            bucket[key] = bucket.get(key, 0) + 1
        per_type = self.by_type.setdefault(r.device_type, {})
        per_type[key] = per_type.get(key, 0) + 1

    @property
    def failed(self) -> int:
        return self.devices - self.succeeded

    @property
    def unfinished(self) -> int:
        return sum(g.count for reason, g in self.failures.items() if reason.startswith("unfinished"))

    def failed_by_reason(self) -> dict[str, int]:
        return {reason: self.failures[reason].count for reason in sorted(self.failures)}

    def digest(self) -> str:
        return self._digest.copy().hexdigest()

    def duration_summary(self) -> dict[str, Any]:
        d = self.durations
        p50, p95 = d.percentile(50), d.percentile(95)
        return {"p50": None if p50 is None else round(p50, 3), "p95": None if p95 is None else round(p95, 3),
                "max": round(d.max, 3) if d.count else None}

    def faults(self) -> dict[str, dict[str, int]]:
        return {k: dict(sorted(v.items())) for k, v in sorted(self.by_fault.items())}
