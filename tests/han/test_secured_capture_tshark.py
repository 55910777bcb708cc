"""A capture of a ``[han] security = "cbke"`` run is APS-secured as on the air, and tshark
decrypts and decodes its OTA frames with the keys ``ch-emulator keys export --wireshark`` writes
for the scenario's seed (before the run: the keys are derived, not recorded)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from emulator.cli import main
from emulator.scenario.runner import ScenarioRun
from emulator.scenario.spec import load_scenario

TSHARK = shutil.which("tshark")
PPMID_ID = 0x00DB1234567890A4

SCENARIO = """
name = "cbke-capture"
seed = 11
settle_s = 300
[han]
security = "cbke"
[[premises]]
template = "default"
[[requests]]
sr = "11.4"
at_s = 120
devices = ["00-DB-12-34-56-78-90-A4"]
image = "ppmid"
"""

FIELDS = ("zbee_aps.cluster", "zbee_aps.security", "zbee.sec.counter", "zbee.sec.src64",
          "zbee.sec.decryption_key", "zbee_zcl_general.ota.cmd.srv_tx.id", "zbee_zcl_general.ota.file.offset",
          "zbee_zcl_general.ota.file.version", "zbee_zcl_general.ota.status", "wpan.fcs_ok")


def _tshark(pcap: Path, config_home: Path | None) -> list[dict[str, str]]:
    assert TSHARK is not None
    env = dict(os.environ)
    empty = config_home or pcap.parent / "no-keys"
    empty.mkdir(exist_ok=True)
    env["XDG_CONFIG_HOME"] = str(empty)  # Wireshark's personal configuration directory
    env["HOME"] = str(empty)
    args = [TSHARK, "-n", "-r", str(pcap), "-Y", "zbee_aps.cluster == 0x0019", "-T", "fields",
            "-E", "separator=\t", "-E", "occurrence=f"]
    for name in FIELDS:
        args += ["-e", name]
    result = subprocess.run(args, capture_output=True, text=True, check=False, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    return [{k: v for k, v in zip(FIELDS, line.split("\t")) if v} for line in result.stdout.splitlines()]


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("cbke-capture")
    scenario_file = tmp / "cbke.toml"
    scenario_file.write_text(SCENARIO)
    config = tmp / "config"
    (config / "wireshark").mkdir(parents=True)
    assert main(["keys", "export", "--wireshark", str(config / "wireshark" / "zigbee_pc_keys"),
                 "--scenario", str(scenario_file)]) == 0
    pcap = tmp / "cbke.pcap"
    ScenarioRun(load_scenario(scenario_file), pcap=str(pcap)).run()
    return pcap, config


@pytest.mark.tshark
@pytest.mark.skipif(TSHARK is None, reason="tshark is not installed")
def test_tshark_decrypts_the_upgrade_with_the_exported_keys(capture: tuple[Path, Path]) -> None:
    pcap, config = capture
    rows = _tshark(pcap, config)
    secured = [r for r in rows if r.get("zbee_aps.security") in {"1", "True"}]
    assert len(secured) > 100  # the whole download: every unicast OTA frame is APS-secured
    assert all(r.get("wpan.fcs_ok") in {"1", "True"} for r in rows)
    assert all(r.get("zbee.sec.decryption_key", "").startswith("CBKE link key") for r in secured)
    # The hub and all three devices (the meters query too), each under its own CBKE key.
    assert {int(r["zbee.sec.src64"].replace(":", ""), 16) for r in secured} == \
        {PPMID_ID, 0x00DB1234567890A0, 0x00DB1234567890A1, 0x00DB1234567890A2}
    assert len({r["zbee.sec.decryption_key"] for r in secured}) == 3
    blocks = [r for r in secured if r.get("zbee_zcl_general.ota.cmd.srv_tx.id") in {"0x05", "5"}]
    offsets = [int(r["zbee_zcl_general.ota.file.offset"], 0) for r in blocks]
    assert offsets[0] == 0 and offsets == sorted(offsets) and offsets[-1] > 1000
    # Frame counters rise per sender, as the auxiliary header carries them.
    device_counters = [int(r["zbee.sec.counter"]) for r in secured
                       if int(r["zbee.sec.src64"].replace(":", ""), 16) == PPMID_ID]
    assert device_counters == sorted(device_counters) and len(set(device_counters)) == len(device_counters)
    ends = [r for r in secured if r.get("zbee_zcl_general.ota.cmd.srv_tx.id") in {"0x07", "7"}]
    assert ends, "the Upgrade End Response decodes"


@pytest.mark.tshark
@pytest.mark.skipif(TSHARK is None, reason="tshark is not installed")
def test_without_the_keys_tshark_sees_no_ota_fields(capture: tuple[Path, Path]) -> None:
    pcap, _ = capture
    rows = _tshark(pcap, None)
    secured = [r for r in rows if r.get("zbee_aps.security") in {"1", "True"}]
    assert secured
    assert not any("zbee_zcl_general.ota.file.offset" in r for r in secured)


@pytest.mark.tshark
@pytest.mark.skipif(TSHARK is None, reason="tshark is not installed")
def test_tshark_reassembles_the_blocks_that_went_on_the_air(capture: tuple[Path, Path]) -> None:
    """The 81-octet Initiate messages (NWK security only) and the tunnelled GBCS messages
    (APS-secured block by block) are written as the APS blocks the virtual HAN sent; tshark
    decrypts each block and reassembles the message."""
    pcap, config = capture
    fields = ("frame.len", "zbee_aps.cluster", "zbee_aps.security", "zbee_aps.fragment.count",
              "zbee_zcl_se.ke.cmd.srv_rx.id", "zbee_zcl_se.ke.cmd.srv_tx.id",
              "gbcs_message.grouping_header.message_code", "_ws.malformed")
    env = dict(os.environ, XDG_CONFIG_HOME=str(config), HOME=str(config))
    args = [str(TSHARK), "-n", "-r", str(pcap), "-Y", "zbee_aps.cluster == 0x0800 || zbee_aps.cluster == 0x0704",
            "-T", "fields", "-E", "separator=\t", "-E", "occurrence=f"]
    for name in fields:
        args += ["-e", name]
    result = subprocess.run(args, capture_output=True, text=True, check=False, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    rows = [dict(zip(fields, line.split("\t"))) for line in result.stdout.splitlines()]
    assert rows and all(int(r["frame.len"]) <= 127 for r in rows) and not any(r["_ws.malformed"] for r in rows)
    initiates = [r for r in rows if r["zbee_aps.cluster"] == "0x0800" and r["zbee_aps.fragment.count"]]
    assert initiates and all(r["zbee_aps.fragment.count"] == "2" for r in initiates)
    assert {r["zbee_zcl_se.ke.cmd.srv_rx.id"] or r["zbee_zcl_se.ke.cmd.srv_tx.id"] for r in initiates} == {"0x00"}
    gbcs = [r for r in rows if r["zbee_aps.cluster"] == "0x0704" and r["zbee_aps.fragment.count"]]
    assert gbcs and all(r["zbee_aps.security"] in {"1", "True"} for r in gbcs)
    assert all(r["gbcs_message.grouping_header.message_code"] for r in gbcs)  # decrypted, reassembled, dissected
