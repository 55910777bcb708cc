"""What a CI gets from a fleet run: exit codes, JUnit, a streamed results file, path checks, the
HTML report; and the bounded summary structures behind them (docs/fleet.md, Output)."""

from __future__ import annotations

import json
import random
import sys
import tracemalloc
from pathlib import Path

import pytest
from lxml import etree

from emulator.cli import main
from emulator.fleet.run import run_fleet
from emulator.fleet.shard import DeviceResult
from emulator.fleet.sketch import DurationSketch
from emulator.fleet.spec import FleetSpec
from emulator.fleet.tally import FleetTally

FAILING = ["--fault", "invalid_image_at_end=50"]


def _fleet(*extra: str) -> list[str]:
    return ["fleet", "--premises", "4", "--seed", "7", "--workers", "1", "--json", *extra]


def test_all_succeeded_exits_0_failures_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_fleet()) == 0
    assert main(_fleet(*FAILING)) == 1
    err = capsys.readouterr().err
    assert "failed or unfinished" in err and "--max-failed 0 %" in err


def test_max_failed_allows_a_share_of_failures(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_fleet(*FAILING, "--max-failed", "100")) == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    failed = sum(summary["failed"].values())
    assert 0 < failed < 4
    share = 100 * failed / 4
    assert main(_fleet(*FAILING, "--max-failed", str(share))) == 0
    assert main(_fleet(*FAILING, "--max-failed", str(share - 1))) == 1


def test_unfinished_devices_fail_the_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_fleet("--duration", "8")) == 1  # the Service Request went in at 5 s: no time to finish
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert all(reason.startswith("unfinished") for reason in summary["failed"])


def test_junit_has_a_case_per_failure_reason_listing_the_devices(tmp_path: Path) -> None:
    junit = tmp_path / "fleet.xml"
    results = tmp_path / "results.jsonl"
    assert main(_fleet(*FAILING, "--junit", str(junit), "--results", str(results))) == 1
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    failed = [r for r in rows if r["outcome"] == "failed"]
    root = etree.parse(str(junit)).getroot()
    suite = root.find("testsuite")
    assert suite is not None and int(suite.get("failures")) == 1  # one reason
    (case,) = [c for c in suite.iter("testcase") if c.find("failure") is not None]
    assert case.get("name") == "0x8F89 INVALID_IMAGE"
    listed = case.find("failure").text or ""
    assert sorted(line.split()[0] for line in listed.splitlines()) == sorted(r["device"] for r in failed)


def test_junit_per_device(tmp_path: Path) -> None:
    junit = tmp_path / "fleet.xml"
    assert main(_fleet(*FAILING, "--junit", str(junit), "--junit-per-device")) == 1
    suite = etree.parse(str(junit)).getroot().find("testsuite")
    assert suite is not None
    cases = list(suite.iter("testcase"))
    assert len(cases) == int(suite.get("tests")) == 4
    failures = [c for c in cases if c.find("failure") is not None]
    assert len(failures) == int(suite.get("failures")) >= 1
    assert all(c.find("failure").get("type") == "0x8F89 INVALID_IMAGE" for c in failures)
    assert not list(tmp_path.glob(".junit-*"))  # the streamed body was folded in and removed


@pytest.mark.parametrize("flag", ["--report", "--results", "--junit"])
def test_output_into_a_missing_directory_is_caught_before_the_run(
        flag: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "no-such-dir" / "out"
    assert main(_fleet(flag, str(target))) == 2
    err = capsys.readouterr()
    assert f"{flag} {target}: directory {target.parent} does not exist" in err.err
    assert "fleet_progress" not in err.out  # nothing ran
    assert main(_fleet(flag, str(tmp_path))) == 2
    assert "is a directory" in capsys.readouterr().err


def test_results_stream_in_premises_order_and_match_the_summary(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / "r.jsonl"
    assert main(["fleet", "--premises", "5", "--devices", "PPMID=2", "--workers", "2", "--json", "--seed", "2",
                 "--results", str(results)]) == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    assert len(rows) == summary["devices"] == 10
    assert [r["premises"] for r in rows] == sorted(r["premises"] for r in rows)
    assert sum(r["outcome"] == "succeeded" for r in rows) == summary["succeeded"]


def test_parquet_results_hold_the_json_lines_rows_typed_in_row_groups(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from emulator.fleet.sinks import ParquetSink

    jsonl, parquet = tmp_path / "r.jsonl", tmp_path / "r.parquet"
    common = ["--premises", "6", "--seed", "7", "--workers", "1", "--json", *FAILING]
    assert main(["fleet", *common, "--results", str(jsonl)]) == 1
    assert main(["fleet", *common, "--results", str(parquet)]) == 1
    expected = [json.loads(line) for line in jsonl.read_text().splitlines()]
    table = pq.read_table(parquet)
    assert table.column_names == list(ParquetSink.COLUMNS)
    assert str(table.schema.field("premises").type) == "int64"
    assert str(table.schema.field("duration_s").type) == "double"
    assert table.to_pylist() == expected
    assert any(r["outcome"] == "failed" and r["duration_s"] is None for r in expected)  # nulls survive
    # Streamed: a row group every ``row_group`` devices, never all rows held.
    small = tmp_path / "small.parquet"
    sink = ParquetSink(str(small), row_group=4)
    for row in expected:
        sink(DeviceResult(int(row["device"].replace("-", ""), 16), row["premises"], row["device_type"], row["fault"],
                          row["outcome"], row["reason"], row["duration_s"]))
    sink.close()
    assert pq.ParquetFile(small).metadata.num_row_groups == -(-len(expected) // 4)
    assert pq.read_table(small).to_pylist() == expected


def test_parquet_without_pyarrow_is_a_user_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow raises ImportError
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    assert main(_fleet("--results", str(tmp_path / "r.parquet"))) == 2
    err = capsys.readouterr().err
    assert "r.parquet" in err and "pyarrow" in err and "ch-emulator[parquet]" in err


def test_run_without_keeping_results_holds_no_device_list(small_fleet: FleetSpec) -> None:
    seen: list[DeviceResult] = []
    result = run_fleet(small_fleet, workers=1, keep_results=False, on_result=seen.append)
    assert result.results == [] and len(seen) == small_fleet.premises
    assert result.digest() == run_fleet(small_fleet, workers=1).digest()


def test_report_shows_parameters_failures_and_per_fault_outcomes(tmp_path: Path) -> None:
    report = tmp_path / "fleet.html"
    assert main(_fleet(*FAILING, "--report", str(report))) == 1
    page = report.read_text()
    for text in ("Run parameters", "invalid_image_at_end 50 %", "Failures by reason", "0x8F89 INVALID_IMAGE",
                 "-A4 (P00000", "simulated time after the Service Request (s)", "Outcomes per fault",
                 "as documented"):
        assert text in page, text
    assert page.count("<svg") == 2 and "<script" not in page
    etree.fromstring(page.encode(), etree.HTMLParser())  # parses


def test_histogram_is_not_flattened_by_one_outlier() -> None:
    from emulator.fleet.report import histogram_svg

    sketch = DurationSketch()
    rng = random.Random(1)
    for _ in range(999):
        sketch.add(30 + rng.random() * 10)
    sketch.add(3600.0)
    svg = histogram_svg(sketch)
    bars = [int(part.split(" devices")[0].rsplit(" ", 1)[1].replace(",", "")) for part in svg.split("<title>")[1:]]
    assert sum(bars) == 1000 and bars[-1] == 1
    assert len([b for b in bars[:-1] if b]) >= 20  # the bulk is spread over many bars, not one
    assert "&gt; 40" in svg  # the outlier's own bar, labelled with where it starts
    # Slow devices that are not a lone outlier (a fifth of them two hundred times slower, the
    # long_silent_phase fault): logarithmic bins show every group.
    wide = DurationSketch()
    for i in range(1000):
        wide.add(3000.0 + i % 13 if i % 5 == 0 else 14.0 + i % 7 / 10 if i % 4 else 30.0 + i % 11)
    svg = histogram_svg(wide)
    assert "log scale" in svg and "&gt;" not in svg
    starts = [float(part.split("–")[0].replace(",", "")) for part in svg.split("<title>")[1:]]
    assert min(starts) < 15 and any(25 < s < 45 for s in starts) and max(starts) > 2500


# -- bounded summary structures ----------------------------------------------------------------
def test_sketch_is_exact_while_small() -> None:
    values = [random.Random(2).uniform(1, 100) for _ in range(1)] + [float(i) for i in range(1, 1001)]
    sketch = DurationSketch()
    for v in values:
        sketch.add(v)
    ordered = sorted(values)
    assert sketch.exact
    assert sketch.percentile(50) == ordered[500]
    assert sketch.percentile(95) == ordered[950]


def test_sketch_stays_bounded_and_close_beyond_its_exact_limit() -> None:
    rng = random.Random(3)
    values = [rng.lognormvariate(3.5, 0.6) for _ in range(50_000)]
    sketch = DurationSketch(exact_limit=1000)
    for v in values:
        sketch.add(v)
    assert not sketch.exact and len(sketch._bins) < 5000
    ordered = sorted(values)
    for pct in (50, 95, 99):
        exact = ordered[-(-len(values) * pct // 100) - 1]
        assert sketch.percentile(pct) == pytest.approx(exact, rel=0.006)
    assert sketch.max == max(values)
    assert sketch.cumulative([ordered[len(ordered) // 2]])[0] == pytest.approx(len(values) / 2, rel=0.01)


def test_tally_memory_does_not_grow_with_devices() -> None:
    """Past the sketch's exact limit and the listed failures, more devices cost the tally nothing."""

    def cost(n: int) -> int:
        tally = FleetTally(max_listed=100)
        tally.durations = DurationSketch(exact_limit=1000)
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        for i in range(n):
            tally.add(DeviceResult(i, i, "PPMID", None, "succeeded" if i % 50 else "failed",
                                   None if i % 50 else "0x8F89 INVALID_IMAGE", 30.0 + (i % 997) / 10))
        used = tracemalloc.get_traced_memory()[0] - base
        tracemalloc.stop()
        assert tally.devices == n and not tally.durations.exact
        return used

    small, large = cost(5_000), cost(50_000)
    assert large < small + 64 * 1024
