"""Where per-device results go as they stream past: a JSON-lines or Parquet file, a JUnit file
per device.

Each writes results as they arrive and keeps at most one row group (Parquet) or nothing but a
file handle, so a million devices cost a file on disk, not memory.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import IO
from xml.sax.saxutils import quoteattr

from emulator.errors import UserError

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


PARQUET_ROW_GROUP = 65_536  # rows buffered before a row group is written (a few MB at most)


class ParquetSink:
    """``--results FILE.parquet``: the JSON-lines fields as typed columns (``device`` as text,
    ``premises`` int64, ``duration_s`` float64, the rest text; absent values are nulls), one row
    group per ``row_group`` devices, in premises order. Needs pyarrow (``ch-emulator[parquet]``)."""

    COLUMNS = ("device", "premises", "device_type", "fault", "outcome", "reason", "duration_s")

    def __init__(self, path: str, *, row_group: int = PARQUET_ROW_GROUP) -> None:
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise UserError(f"--results {path}: Parquet output needs pyarrow: pip install 'ch-emulator[parquet]' "
                            "(or write JSON lines: a FILE not ending in .parquet)") from None
        self.path = path
        self._pa = pa
        self._schema = pa.schema([("device", pa.string()), ("premises", pa.int64()), ("device_type", pa.string()),
                                  ("fault", pa.string()), ("outcome", pa.string()), ("reason", pa.string()),
                                  ("duration_s", pa.float64())])
        self._writer = pq.ParquetWriter(path, self._schema)
        self._row_group = row_group
        self._columns: list[list[object]] = [[] for _ in self.COLUMNS]

    def __call__(self, r: DeviceResult) -> None:
        d = r.to_dict()
        for column, name in zip(self._columns, self.COLUMNS):
            column.append(d[name])
        if len(self._columns[0]) >= self._row_group:
            self._flush()

    def _flush(self) -> None:
        if self._columns[0]:
            self._writer.write_batch(self._pa.record_batch(self._columns, schema=self._schema))
            self._columns = [[] for _ in self.COLUMNS]

    def close(self) -> None:
        self._flush()
        self._writer.close()


def results_sink(path: str) -> JsonLinesSink | ParquetSink:
    """The sink ``--results PATH`` names: Parquet for ``*.parquet``, JSON lines otherwise."""
    return ParquetSink(path) if path.lower().endswith(".parquet") else JsonLinesSink(path)


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
