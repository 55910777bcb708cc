"""`ch-emulator certify device`: options, exit codes and reports, virtual and on the stand-in bench."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import AsyncIterator

import pytest

from emulator.cli import main

TSHARK = shutil.which("tshark")


def test_the_conformant_device_exits_0_and_reports_device_and_image(certify) -> None:
    code, out, _ = certify("device", "--virtual", "conformant", "--only", "B5,B9,C1", "--json")
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0
    run, *checks, summary = lines
    assert run["command"] == "certify device"
    assert run["device"]["manufacturer_code"] == "0x121D" and run["device"]["hardware_version"] == "0x1200"
    assert run["image"]["file_version"] == "0xACDCACDD"
    assert run["parameters"]["time"] == "simulated (virtual device)"
    assert [(c["id"], c["verdict"]) for c in checks] == [("B5", "pass"), ("B9", "pass"), ("C1", "not-available")]
    assert "GBCS" in checks[2]["evidence"][0]["message"]
    assert any("ImageBlockResponse(status=ABORT" in line for line in checks[1]["frames"])
    assert checks[0]["budget"].endswith("wall") and "simulated" in checks[0]["budget"]
    assert summary["exit_code"] == 0


def test_a_device_defect_exits_1_with_the_finding_and_its_frames(certify, tmp_path: Path) -> None:
    junit = tmp_path / "device.xml"
    html = tmp_path / "device.html"
    code, out, _ = certify("device", "--virtual", "activates_unverified", "--only", "B11,B2",
                           "--junit", junit, "--html", html)
    assert code == 1
    assert "B11  FAIL" in out and "Upgrade End Request SUCCESS for a corrupted image" in out
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "1"
    cases = {c.get("name", "").split()[0]: c for c in suite.iter("testcase")}
    assert cases["B11"].find("failure") is not None and cases["B2"].find("failure") is None
    err = cases["B11"].findtext("system-err") or ""
    assert "UpgradeEndRequest(status=SUCCESS" in err
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert properties["device.fault"] == "activates_unverified"
    page = html.read_text()
    assert "FAILED: B11" in page and "Device under test" in page and "frames involved" in page


def test_a_profile_file_describes_another_device(certify, tmp_path: Path) -> None:
    profile = tmp_path / "device.toml"
    profile.write_text('fault = "hammers_queries"\n[declared]\nmin_query_interval_s = 5\n')
    code, out, _ = certify("device", "--virtual", profile, "--only", "B4")
    assert code == 0, out  # the device's 10 s back-off is within what it declares


@pytest.mark.parametrize("args, message", [
    (("--virtual", "no_such_fault"), "not 'conformant', a profile file"),
    (("--virtual", "server_silent_on_query"), "a server condition"),
    (("--virtual", "burst_radio_loss"), "radio condition"),
    (("--virtual", "conformant", "--only", "A1"), "A1 is an image check"),
    (("--virtual", "conformant", "--only", "B99"), "unknown check 'B99'"),
    (("--virtual", "conformant", "--image", "/nonexistent.ota"), "cannot read"),
    (("--virtual", "conformant", "--min-query-interval", "0"), "must be positive"),
])
def test_mistakes_exit_2_with_one_line(certify, args: tuple[str, ...], message: str) -> None:
    code, out, err = certify("device", *args)
    assert code == 2
    assert message in err and "Traceback" not in err


def test_a_bad_profile_file_names_the_key(certify, tmp_path: Path) -> None:
    profile = tmp_path / "device.toml"
    profile.write_text("[profile]\nmax_data_sise = 40\n")
    code, _, err = certify("device", "--virtual", profile)
    assert code == 2 and "profile.max_data_sise" in err


@pytest.mark.tshark
@pytest.mark.skipif(TSHARK is None, reason="Wireshark's tshark is not on PATH (apt-get install tshark)")
def test_each_check_gets_a_pcap_that_tshark_reads(certify, tmp_path: Path) -> None:
    code, out, _ = certify("device", "--virtual", "no_upgrade_end_on_abort", "--only", "B9",
                           "--pcap-dir", tmp_path / "pcap")
    assert code == 1
    pcap = tmp_path / "pcap" / "B9.pcap"
    assert f"pcap: {pcap}" in out
    result = subprocess.run([TSHARK, "-n", "-r", str(pcap), "-T", "fields", "-e", "zbee_zcl_general.ota.status"],
                            capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "0x95" in result.stdout.split()  # the Image Block Response ABORT the check sent


# --- the stand-in bench: the EZSP dongle emulator with emulated devices behind it ---------------

ESME = "00-DB-12-34-56-78-90-A0"


@pytest.fixture
async def ncp_url() -> AsyncIterator[str]:
    from emulator.dcc.premises import default_premises
    from emulator.han.ezsp.ncp import EzspNcp
    from emulator.han.virtual import VirtualHan
    from emulator.runtime.clock import AsyncioClock
    from emulator.runtime.events import EventBus
    from emulator.scenario.ezsp_sim import premises_devices

    clock = AsyncioClock()
    ncp = EzspNcp(ezsp_version=13, han=VirtualHan(clock, latency=0.0),
                  populate=premises_devices(default_premises(), EventBus(clock), devices={}))
    await ncp.start("127.0.0.1", 0)
    try:
        yield ncp.url
    finally:
        await ncp.stop()


async def test_bench_device_runs_the_same_checks_in_wall_time(ncp_url: str, tmp_path: Path, capsys) -> None:
    bench = tmp_path / "bench.toml"
    bench.write_text(f'[dongle]\npath = "{ncp_url}"\n\n[[devices]]\neui64 = "{ESME}"\ntype = "ESME"\n')
    code = await asyncio.wait_for(asyncio.to_thread(
        main, ["certify", "device", "--bench", str(bench), "--only", "B9,B14,B15", "--json"]), 60.0)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    verdicts = {line["id"]: line["verdict"] for line in lines if line["type"] == "check"}
    assert code == 0
    assert lines[0]["parameters"]["time"] == "wall (bench)"
    # A bench device's identity is what it says in its Query Next Image Request.
    assert lines[0]["device"]["queried_as"].startswith("manufacturer 0x121D, image type 0x0000")
    assert verdicts == {"B9": "pass", "B14": "inconclusive", "B15": "inconclusive"}
