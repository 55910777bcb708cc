"""`ch-emulator submit`: DUIS request files through the CLI."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from emulator.cli import main
from emulator.scenario.samples import PUBLIC_KEY as PROJECT_KEY

SAMPLES = Path(__file__).resolve().parents[1] / "dcc" / "data" / "duis"


def test_dcc_samples_played_in_process(capsys):
    code = main(["submit", "--json", str(SAMPLES / "11.4_UPDATE_PPMID_FIRMWARE_REQUEST_DUIS.XML"),
                 str(SAMPLES / "CS08_11.2_SUCCESS_REQUEST_DUIS.XML")])
    assert code == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    alerts = [e["alert"] for e in events if e["event"] == "dcc_alert"]
    assert alerts == ["N59", "N61", "N62", "N39", "N49"]
    (read,) = [e for e in events if e["event"] == "sr_response"]
    assert read["firmware_version"] == "ACDCACDC"  # 11.2 after 11.4 reads the sample image's version


def test_bad_file_is_one_line_naming_it(tmp_path, capsys):
    bad = tmp_path / "req.xml"
    bad.write_bytes(b"<not-duis/>")
    assert main(["submit", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "invalid DUIS request" in err and "Traceback" not in err


def test_unreachable_server_is_a_clear_error(capsys):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens once the socket is closed
    code = main(["submit", "--url", f"http://127.0.0.1:{port}/api/v1/serviceD",
                 str(SAMPLES / "CS08_11.2_SUCCESS_REQUEST_DUIS.XML")])
    assert code == 2
    assert "cannot reach" in capsys.readouterr().err


def _device_alerts(capsys) -> list[str]:
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    return [e["alert"] for e in events if e["event"] == "dcc_device_alert"]


def test_dcc_sample_11_1_meets_the_meters_trusted_keys(tmp_path, capsys):
    """DCC signed its sample image with the published ZAZ1 supplier key (TEST ONLY), which the
    emulated meters trust by default: 0x8F72. A scenario trusting only another key gets 0x8F1C."""
    sample = str(SAMPLES / "11.1_UPDATE_FIRMWARE_REQUEST_DUIS.XML")
    assert main(["submit", "--json", sample]) == 0
    assert _device_alerts(capsys) == ["0x8F72"]
    strict = tmp_path / "strict.toml"
    strict.write_text(f'[signatures]\ntrusted_keys = ["{PROJECT_KEY}"]\n')
    assert main(["submit", "--json", "--scenario", str(strict), sample]) == 0
    assert _device_alerts(capsys) == ["0x8F1C"]


def test_trusted_key_file_that_is_not_a_key_is_named(tmp_path, capsys):
    scenario = tmp_path / "keys.toml"
    (tmp_path / "vendor.pem").write_text("not a key")
    scenario.write_text('[signatures]\ntrusted_keys = ["vendor.pem"]\n')
    assert main(["submit", "--scenario", str(scenario), str(SAMPLES / "CS08_11.2_SUCCESS_REQUEST_DUIS.XML")]) == 2
    err = capsys.readouterr().err
    assert "signatures.trusted_keys" in err and "vendor.pem" in err and "Traceback" not in err


def _events(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_submit_scenario_plays_on_the_scenarios_han(tmp_path, capsys):
    """`submit --scenario` builds the scenario's HAN: with every unicast lost the PPMID never
    downloads (as under `run`), and a slower HAN makes it activate later."""
    request = str(SAMPLES / "11.4_UPDATE_PPMID_FIRMWARE_REQUEST_DUIS.XML")
    assert main(["submit", "--json", request]) == 0
    clean = _events(capsys)
    (activated,) = [e for e in clean if e["event"] == "firmware_activated"]

    lossy = tmp_path / "lossy.toml"
    lossy.write_text("[han]\nloss = 1.0\n")
    main(["submit", "--json", "--scenario", str(lossy), request])
    events = _events(capsys)
    assert not [e for e in events if e["event"] in ("download_started", "download_complete", "firmware_activated")]
    assert "N49" not in [e.get("alert") for e in events if e["event"] == "dcc_alert"]

    slow = tmp_path / "slow.toml"
    slow.write_text("[han]\nlatency_s = 0.25\n")
    assert main(["submit", "--json", "--scenario", str(slow), request]) == 0
    (late,) = [e for e in _events(capsys) if e["event"] == "firmware_activated"]
    assert late["time"] > activated["time"] + 10 * 0.25  # every frame of the transfer waits longer
