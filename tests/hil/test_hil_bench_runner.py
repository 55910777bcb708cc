"""`ch-emulator hil check` and `hil run` against the dongle emulator, as CI's stand-in bench.

The test starts an EzspNcp with emulated devices behind it (the "devices under test") and
writes a bench file pointing at its ``socket://`` address; the commands run in a worker thread
(each with its own event loop, as from a shell) while the NCP serves on the test's loop.
"""

from __future__ import annotations

import asyncio
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import AsyncIterator

import pytest

from emulator.cli import main
from emulator.dcc.premises import default_premises
from emulator.han.ezsp.ncp import EzspNcp
from emulator.scenario.ezsp_sim import premises_devices
from emulator.han.virtual import VirtualHan
from emulator.hil.bench import parse_bench
from emulator.hil.check import check_bench
from emulator.runtime.clock import AsyncioClock
from emulator.runtime.events import EventBus, EventCollector

REPO = Path(__file__).resolve().parents[2]
PPMID = "00-DB-12-34-56-78-90-A4"
ESME = "00-DB-12-34-56-78-90-A0"
ABSENT = "00-DB-12-34-56-78-90-EE"
WALL_LIMIT_S = 60.0


class StandInBench:
    def __init__(self, ncp: EzspNcp, devices: dict, events: EventCollector) -> None:
        self.ncp, self.devices, self.events = ncp, devices, events

    def bench_toml(self, *, channel: int = 15, devices: tuple[tuple[str, str], ...] = ((PPMID, "PPMID"), (ESME, "ESME"))) -> str:
        lines = [f'[dongle]\npath = "{self.ncp.url}"\n',
                 f'[network]\nchannel = {channel}\npan_id = "1A62"\nnetwork_key = "01030507090B0D0F00020406080A0C0D"\n']
        for eui, kind in devices:
            lines.append(f'[[devices]]\neui64 = "{eui}"\ntype = "{kind}"\nanswer_timeout_s = 8\n')
        return "\n".join(lines)


BOTH_VERSIONS = pytest.mark.parametrize("stand_in", [8, 13], ids=["ezsp8", "ezsp13"], indirect=True)


@pytest.fixture
async def stand_in(request: pytest.FixtureRequest) -> AsyncIterator[StandInBench]:
    """EZSP 13 unless parametrised; the air behind the dongle has no latency of its own."""
    events = EventCollector()
    clock = AsyncioClock()
    bus = EventBus(clock)
    bus.subscribe(events)
    devices: dict = {}
    ncp = EzspNcp(ezsp_version=getattr(request, "param", 13), han=VirtualHan(clock, latency=0.0),
                  populate=premises_devices(default_premises(), bus, devices=devices))
    await ncp.start("127.0.0.1", 0)
    try:
        yield StandInBench(ncp, devices, events)
    finally:
        await ncp.stop()


async def run_cli(*argv: str) -> int:
    return await asyncio.wait_for(asyncio.to_thread(main, list(argv)), WALL_LIMIT_S)


@BOTH_VERSIONS
async def test_check_reports_dongle_network_and_devices(stand_in: StandInBench, tmp_path: Path, capsys) -> None:
    bench_file = tmp_path / "bench.toml"
    bench_file.write_text(stand_in.bench_toml())
    junit = tmp_path / "check.xml"

    code = await run_cli("hil", "check", str(bench_file), "--junit", str(junit))

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 0, lines
    by_item = {line["item"]: line for line in lines if line["event"] == "hil_check"}
    assert by_item["dongle"]["ezsp_version"] == stand_in.ncp.ezsp_version
    assert by_item["dongle"]["firmware"].startswith("7.4.4.0")
    assert "network_key" not in by_item["dongle"]  # compared, never printed
    assert by_item["network.channel"]["ok"] and by_item["network.pan_id"]["actual"] == "0x1A62"
    ppmid = by_item[f"device PPMID {PPMID}"]
    assert ppmid["ok"] and ppmid["current_file_version"] == "ACDC0001" and ppmid["image_type"] == "0x0084"
    assert by_item[f"device ESME {ESME}"]["ok"]
    # the probe's Image Notify was heard, and the device was told there is nothing to download
    assert any(e.event == "no_image" and e.device == 0x00DB1234567890A4 for e in stand_in.events.events)
    assert not any(e.event == "download_started" for e in stand_in.events.events)
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "0"
    assert len(suite.findall("testcase")) == len(by_item)


@BOTH_VERSIONS
async def test_check_names_what_is_wrong(stand_in: StandInBench, tmp_path: Path, capsys) -> None:
    bench_file = tmp_path / "bench.toml"
    bench_file.write_text(stand_in.bench_toml(channel=20, devices=((PPMID, "PPMID"), (ABSENT, "ESME"))))
    junit = tmp_path / "check.xml"

    code = await run_cli("hil", "check", str(bench_file), "--junit", str(junit))

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 1
    failed = {line["item"]: line["message"] for line in lines if line["event"] == "hil_check" and not line["ok"]}
    assert set(failed) == {"network.channel", f"device ESME {ABSENT}"}
    assert "the bench says 20" in failed["network.channel"]
    assert "not joined" in failed[f"device ESME {ABSENT}"]
    failures = [case.get("name") for case in ET.parse(junit).getroot().iter("testcase") if case.find("failure") is not None]
    assert sorted(failures) == sorted(failed)


async def test_check_of_a_dongle_that_is_not_there(tmp_path: Path) -> None:
    bench = parse_bench({"dongle": {"path": "socket://127.0.0.1:1"},
                         "devices": [{"eui64": PPMID, "type": "PPMID"}]}, source="b.toml")
    (finding,) = await asyncio.wait_for(check_bench(bench), WALL_LIMIT_S)
    assert finding.item == "dongle" and not finding.ok and "socket://127.0.0.1:1" in finding.message


async def test_run_upgrades_the_bench_ppmid(stand_in: StandInBench, tmp_path: Path, capsys) -> None:
    bench_file = tmp_path / "bench.toml"
    bench_file.write_text(stand_in.bench_toml())
    junit = tmp_path / "run.xml"

    code = await run_cli("hil", "run", str(bench_file), str(REPO / "hil" / "scenarios" / "ppmid-upgrade.toml"),
                         "--junit", str(junit))

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    summary = lines[-1]
    assert code == 0 and summary["ok"] is True, summary
    assert summary["han"] == "hil" and summary["alerts"]["N49"] == 1
    # the hub served the real (here: stand-in) device, which activated the image itself
    assert stand_in.devices[0x00DB1234567890A4].firmware.active_version == 0xACDCACDD
    assert not any(line["event"] == "device_started" for line in lines)  # nothing emulated on the hub's side
    cases = list(ET.parse(junit).getroot().iter("testcase"))
    assert len(cases) == 3 and all(case.find("failure") is None for case in cases)


async def test_run_refuses_a_scenario_that_targets_a_device_not_on_the_bench(
        stand_in: StandInBench, tmp_path: Path, capsys) -> None:
    bench_file = tmp_path / "bench.toml"
    bench_file.write_text(stand_in.bench_toml(devices=((PPMID, "PPMID"),)))
    scenario = tmp_path / "s.toml"
    scenario.write_text('[[premises]]\ntemplate = "default"\n[[requests]]\nsr = "11.2"\nat_s = 0\n'
                        f'device = "{ESME}"\n')
    code = await run_cli("hil", "run", str(bench_file), str(scenario))
    err = capsys.readouterr().err
    assert code == 2
    assert "requests[0] targets 00-DB-12-34-56-78-90-A0" in err and "Traceback" not in err


async def test_check_reports_whether_the_dongle_holds_cbke_data(stand_in: StandInBench, tmp_path: Path,
                                                                 capsys) -> None:
    from emulator.han.security.provisioning import HanKeyMaterial

    bench_file = tmp_path / "bench.toml"
    bench_file.write_text(stand_in.bench_toml(devices=((PPMID, "PPMID"),)))
    assert await run_cli("hil", "check", str(bench_file)) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    (without,) = [line for line in lines if line.get("item") == "dongle.cbke"]
    assert without["ok"] and not without["cbke_suite2"]
    assert "LIBRARY_NOT_PRESENT" in without["message"] and "host must compute CBKE" in without["message"]

    stand_in.ncp.dongle.cbke_identities[2] = HanKeyMaterial(1).identity(stand_in.ncp.dongle.eui64)
    assert await run_cli("hil", "check", str(bench_file)) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    (with_data,) = [line for line in lines if line.get("item") == "dongle.cbke"]
    assert with_data["cbke_suite2"] and with_data["cbke"]["suite2"]["issuer"] == b"CHEMTEST".hex().upper()
    assert isinstance(with_data["cbke"]["suite1"], str)  # no suite-1 data: named, not a failure
