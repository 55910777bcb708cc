"""Where per-device results go as they stream past: a JSON-lines file, a JUnit file per device.

Both write each result as it arrives and keep nothing but a file handle, so a million devices
cost a file on disk, not memory.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import IO
from xml.sax.saxutils import quoteattr

from .shard import SUCCEEDED, DeviceResult


class JsonLinesSink:
    """``--results FILE``: one JSON object a line, in premises order (docs/fleet.md, Output)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._out: IO[str] = open(path, "w", encoding="utf-8")

    def __call__(self, r: DeviceResult) -> None:
        self._out.write(json.dumps(r.to_dict()) + "\n")

    def close(self) -> None:
        self._out.close()


def junit_case(r: DeviceResult) -> str:
    """One ``<testcase>`` for one device (``--junit-per-device``)."""
    d = r.to_dict()
    name = f"{d['device']} {r.device_type}" + (f" ({r.fault})" if r.fault else "")
    time_s = f"{r.duration_s:.3f}" if r.duration_s is not None else "0"
    head = f'<testcase classname={quoteattr(f"fleet.P{r.premises:06d}")} name={quoteattr(name)} time="{time_s}"'
    if r.outcome == SUCCEEDED:
        return head + "/>\n"
    reason = r.reason or "unknown"
    return head + f"><failure type={quoteattr(reason)} message={quoteattr(reason)}/></testcase>\n"


class JUnitPerDeviceSink:
    """``--junit FILE --junit-per-device``: test cases stream into a temporary file beside
    ``path``; :meth:`close` writes the suite header (which needs the totals) and appends them."""

    def __init__(self, path: str) -> None:
        self.path = path
        folder = os.path.dirname(os.path.abspath(path))
        fd, self._body_path = tempfile.mkstemp(prefix=".junit-", suffix=".part", dir=folder)
        self._body: IO[str] = os.fdopen(fd, "w", encoding="utf-8")
        self.tests = 0
        self.failures = 0

    def __call__(self, r: DeviceResult) -> None:
        self.tests += 1
        if r.outcome != SUCCEEDED:
            self.failures += 1
        self._body.write(junit_case(r))

    def close(self, *, wall_s: float = 0.0, name: str = "ch-emulator fleet") -> None:
        self._body.close()
        try:
            with open(self.path, "w", encoding="utf-8") as out, open(self._body_path, encoding="utf-8") as body:
                out.write('<?xml version="1.0" encoding="UTF-8"?>\n')
                attrs = f'name={quoteattr(name)} tests="{self.tests}" failures="{self.failures}" errors="0"'
                out.write(f'<testsuites {attrs} time="{wall_s:.3f}">\n<testsuite {attrs} time="{wall_s:.3f}">\n')
                shutil.copyfileobj(body, out)
                out.write("</testsuite>\n</testsuites>\n")
        finally:
            os.unlink(self._body_path)

    def discard(self) -> None:
        self._body.close()
        if os.path.exists(self._body_path):
            os.unlink(self._body_path)
