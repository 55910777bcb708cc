"""A small fleet end to end: DCC flow, determinism across workers, summary, CLI, spec errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emulator.cli import main
from emulator.dcc.premises import TARGET_FIRMWARE_VERSION
from emulator.gbcs.codes import DeviceType
from emulator.fleet.run import run_fleet
from emulator.fleet.shard import Shard
from emulator.fleet.spec import FleetSpec, FleetSpecError, load_spec
from emulator.scenario.samples import sample_path

MIX = {"first_request_lost": 25.0, "reboot_mid_transfer": 25.0, "invalid_image_at_end": 25.0}


def test_sr_drives_every_premises_through_the_dcc_flow(small_fleet: FleetSpec) -> None:
    shard = Shard(small_fleet, range(small_fleet.premises))
    result = shard.run()
    assert [r.outcome for r in result.results] == ["succeeded"] * small_fleet.premises
    codes = [m.code for m in shard.system.messages]
    for code in ("N59", "N61", "N62", "N39", "N49"):
        assert codes.count(code) == small_fleet.premises, code
    ppmids = [d for d in shard.system.dsp.smi.devices() if d.eui64 in shard.tracked]
    assert {d.firmware_version for d in ppmids} == {TARGET_FIRMWARE_VERSION + 1}  # the sample's version


def test_same_seed_same_results_whatever_the_workers(small_fleet: FleetSpec) -> None:
    spec = small_fleet.with_(premises=6, faults=MIX)
    one = run_fleet(spec, workers=1)
    two = run_fleet(spec, workers=2, chunk=1)  # 6 chunks over 2 processes, finishing in any order
    assert two.backend == "processes" and two.workers == 2
    assert [r.to_dict() for r in one.results] == [r.to_dict() for r in two.results]
    assert one.summary()["results_digest"] == two.summary()["results_digest"]
    assert one.simulated_s == two.simulated_s
    other = run_fleet(spec.with_(seed=spec.seed + 1), workers=1)
    assert [r.fault for r in other.results] != [r.fault for r in one.results]


def test_same_results_whatever_the_wave_size(small_fleet: FleetSpec) -> None:
    """A worker runs its premises in waves on fresh clocks; which premises share one changes nothing."""
    spec = small_fleet.with_(premises=6, faults=MIX)
    together = run_fleet(spec, workers=1, wave=1000)
    snapshots: list[dict] = []
    in_waves = run_fleet(spec, workers=1, wave=2, on_progress=snapshots.append)
    assert [r.to_dict() for r in in_waves.results] == [r.to_dict() for r in together.results]
    assert in_waves.simulated_s == together.simulated_s
    assert in_waves.block_exchanges == together.block_exchanges
    assert all(s["devices"] == len(together.results) for s in snapshots)  # later waves count as idle
    assert snapshots[-1]["states"]["succeeded"] == together.summary()["succeeded"]


def test_summary_counts_and_percentiles(small_fleet: FleetSpec) -> None:
    spec = small_fleet.with_(premises=8, faults={"invalid_image_at_end": 50.0})
    summary = run_fleet(spec, workers=1).summary()
    failed = summary["failed"].get("0x8F89 INVALID_IMAGE", 0)
    assert summary["succeeded"] + failed == summary["devices"] == 8
    assert summary["faults"]["invalid_image_at_end"] == {"0x8F89 INVALID_IMAGE": failed}
    d = summary["duration_s"]
    assert 0 < d["p50"] <= d["p95"] <= d["max"]


def test_cli_json_ends_with_the_summary(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    report = tmp_path / "fleet.html"
    code = main(["fleet", "--premises", "3", "--image", str(sample_path("PPMID", 0x0084)), "--seed", "3",
                 "--workers", "2", "--json", "--report", str(report)])
    assert code == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    summary = lines[-1]
    assert summary["event"] == "fleet_summary"
    assert summary["premises"] == 3 and summary["succeeded"] == 3 and summary["failed"] == {}
    assert set(summary["duration_s"]) == {"p50", "p95", "max"}
    progress = [line for line in lines if line["event"] == "fleet_progress"]
    assert progress and progress[-1]["devices"] == 3  # the last progress line shows the whole fleet done
    assert progress[-1]["states"]["succeeded"] == 3
    text = report.read_text()
    assert text.count("<svg") == 2 and "http" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_spec_file_with_a_typo_names_the_key(tmp_path: Path) -> None:
    spec = tmp_path / "fleet.toml"
    image = sample_path("PPMID", 0x0084)
    spec.write_text(f'premises = 2\n[[image]]\nfile = "{image}"\n[radio]\nlos = 0.1\n')
    with pytest.raises(FleetSpecError, match=r"fleet.toml: radio: unknown key\(s\) los \(known: .*burst.*loss"):
        load_spec(spec)


def test_spec_file_is_read(tmp_path: Path) -> None:
    spec = tmp_path / "fleet.toml"
    image = sample_path("PPMID", 0x0084)
    spec.write_text(f'premises = 2\nseed = 4\n[[image]]\nfile = "{image}"\ndevice_type = "PPMID"\n'
                    '[[device]]\ntype = "PPMID"\nfirmware_version = "ACDC0001"\n'
                    '[faults]\nfirst_request_lost = 10\n[radio]\nloss = 0.01\n'
                    '[radio.burst]\nmean_good_s = 30\nmean_bad_s = 1\nloss_bad = 0.5\n')
    loaded = load_spec(spec).validate()
    assert loaded.premises == 2 and loaded.seed == 4
    assert loaded.devices[0].device_type is DeviceType.PPMID and loaded.devices[0].firmware_version == 0xACDC0001
    assert loaded.radio is not None and loaded.radio.burst is not None and loaded.radio.burst.loss_bad == 0.5


@pytest.mark.parametrize("argv, message", [
    (["fleet", "--premises", "2", "--image", "PPMID=esme"], "does not fit a PPMID"),
    (["fleet", "--premises", "2", "--image", "{esme}"], "does not fit a PPMID"),
    (["fleet", "--premises", "2", "--image", "ESME={image}", "--devices", "ESME=1"], "layout gbcs-ppmid does not fit an ESME"),
    (["fleet", "--premises", "0"], "premises must be 1.."),
    (["fleet", "--image", "GSME=esme", "--devices", "GSME=1"], "the sample ESME image does not fit device type GSME"),
    (["fleet", "--premises", "2", "--image", "/nonexistent.ota"], "/nonexistent.ota: cannot read"),
    (["fleet", "--premises", "2", "--image", "{image}", "--fault", "no_such=5"], "unknown fault 'no_such'"),
    (["fleet", "--premises", "2", "--image", "{image}", "--fault", "first_request_lost=80",
      "--fault", "reboot_mid_transfer=30"], "add up to 110"),
    (["fleet", "--premises", "2", "--image", "{image}", "--devices", "ESME=1"], "no image for device type ESME"),
])
def test_user_mistakes_are_one_line_errors(argv: list[str], message: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    argv = [a.replace("{image}", str(sample_path("PPMID", 0x0084))).replace("{esme}", str(sample_path("ESME", 0)))
            for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
