"""The JSON lines, JUnit and HTML reports carry every check, its verdict and its evidence."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from certify_paths import SAMPLE_FILES, SAMPLE_PUBLIC_KEY
from lxml import etree, html

from emulator import __version__
from emulator.gbcs.codes import DeviceType

WRONG_HASH = "00" * 32


def _run(certify, tmp_path: Path) -> tuple[int, str, Path, Path]:
    junit, page = tmp_path / "certify.xml", tmp_path / "certify.html"
    code, out, _ = certify(
        "image", SAMPLE_FILES[DeviceType.ESME], "--json", "--device-type", "ESME", "--hardware", "0x1300",
        "--cpl-hash", WRONG_HASH, "--supplier-key", SAMPLE_PUBLIC_KEY, "--junit", junit, "--html", page,
    )
    return code, out, junit, page


def test_json_lines_have_run_checks_and_summary(certify, tmp_path: Path) -> None:
    code, out, _, _ = _run(certify, tmp_path)
    lines = [json.loads(line) for line in out.splitlines()]
    assert [r["type"] for r in lines] == ["run"] + ["check"] * 12 + ["summary"]
    run, summary = lines[0], lines[-1]
    data = SAMPLE_FILES[DeviceType.ESME].read_bytes()
    assert run["image"]["file_sha256"] == hashlib.sha256(data).hexdigest()
    assert run["tool_version"] == __version__ and run["parameters"]["hardware_version"] == "0x1300"
    assert code == 1 and summary["exit_code"] == 1
    assert summary["counts"]["fail"] == 2  # A5 (hardware 0x1300 outside 0x1111..0x1211) and A8
    a8 = next(r for r in lines if r.get("id") == "A8")
    assert a8["source"] == "domain.md §3.4"
    assert a8["evidence"][0]["expected"] == WRONG_HASH
    assert a8["evidence"][0]["found"] == run["image"]["manufacturer_image_sha256"]


def test_junit_has_one_test_case_per_check_and_the_finding_as_failure_text(certify, tmp_path: Path) -> None:
    _, _, junit, _ = _run(certify, tmp_path)
    suite = etree.parse(str(junit)).getroot().find("testsuite")
    cases = suite.findall("testcase")
    assert [c.get("name").split()[0] for c in cases] == [f"A{n}" for n in range(1, 13)]
    assert suite.get("tests") == "12" and suite.get("failures") == "2"
    failed = {c.get("name").split()[0]: c.find("failure") for c in cases if c.find("failure") is not None}
    assert set(failed) == {"A5", "A8"}
    assert "excludes the target hardware version" in failed["A5"].get("message")
    assert "offset 56" in failed["A5"].text
    skipped = [c.get("name").split()[0] for c in cases if c.find("skipped") is not None]
    assert skipped == ["A4", "A10", "A11", "A12"]  # no --firmware-version, no certificate, GBCS, no --current-version
    properties = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert properties["image.file_version"] == "0xACDCACDD"
    assert properties["parameter.device_type"] == "ESME"


def test_html_report_shows_summary_checks_identity_and_parameters(certify, tmp_path: Path) -> None:
    _, _, _, page = _run(certify, tmp_path)
    document = html.parse(str(page)).getroot()
    banner = document.find_class("banner")[0].text_content()
    assert "FAILED: A5, A8" in banner and "exit code 1" in banner
    rows = document.xpath("//table[@class='checks']//tr[@id]")
    assert [r.get("id") for r in rows] == [f"A{n}" for n in range(1, 13)]
    a8 = rows[7].text_content()
    assert "fail" in a8 and "source: domain.md §3.4" in a8 and WRONG_HASH in a8
    text = document.text_content()
    data = SAMPLE_FILES[DeviceType.ESME].read_bytes()
    assert hashlib.sha256(data).hexdigest() in text
    assert "0x1300" in text and __version__ in text
    assert "max-width:1100px" in page.read_text()  # fits a screen: no sideways scrolling
