"""Bench files: strict, and every mistake names the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from emulator.han.security.aes_mmo import install_code_crc
from emulator.hil.bench import BenchError, load_bench, parse_bench

EXAMPLE = Path(__file__).resolve().parents[2] / "hil" / "benches" / "ezsp-sim.toml"


def bench(**changes) -> dict:
    data = {
        "dongle": {"path": "/dev/ttyUSB0", "baudrate": 115200, "flow_control": "hardware"},
        "network": {"channel": 15, "pan_id": "0x1A62", "extended_pan_id": "00-DB-12-34-56-78-90-A1",
                    "network_key": "01030507090B0D0F00020406080A0C0D"},
        "devices": [{"eui64": "00-DB-12-34-56-78-90-A4", "type": "PPMID",
                     "install_code": "83FED3407A939723A5C639B26916D505C3B5"}],
    }
    for path, value in changes.items():
        *parents, last = path.split("__")
        node = data
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        node[last] = value
    return data


def test_example_bench_loads() -> None:
    loaded = load_bench(EXAMPLE)
    assert loaded.dongle.path.startswith("socket://")
    assert loaded.network.pan_id == 0x1A62 and loaded.network.channel == 15
    assert [d.device_type for d in loaded.devices] == ["PPMID", "ESME"]


def test_fields_are_parsed() -> None:
    loaded = parse_bench(bench(), source="b.toml")
    assert loaded.dongle.flow_control == "hardware"
    assert loaded.network.extended_pan_id == 0x00DB1234567890A1
    (device,) = loaded.devices
    assert device.eui64 == 0x00DB1234567890A4 and device.install_code[-2:] == bytes.fromhex("C3B5")


def test_install_code_crc_is_the_zigbee_one() -> None:
    # the install code printed in the ZigBee specification's example, with its CRC C3B5
    assert install_code_crc(bytes.fromhex("83FED3407A939723A5C639B26916D505")).to_bytes(2, "little") == b"\xc3\xb5"


@pytest.mark.parametrize(("changes", "message"), [
    ({"dongle__speed": 1}, "b.toml: dongle: unknown key(s) speed"),
    ({"colour": "red"}, "b.toml: top level: unknown key(s) colour"),
    ({"devices__0__pin": "1234"}, "b.toml: devices[0]: unknown key(s) pin"),
    ({"network__channel": 27}, "b.toml: network.channel: 27 is outside the 2.4 GHz band"),
    ({"network__pan_id": "zz"}, "b.toml: network.pan_id: 'zz' is not a hexadecimal number"),
    ({"network__network_key": "0102"}, "b.toml: network.network_key: must be 16 bytes, got 2"),
    ({"dongle__flow_control": "rts"}, "b.toml: dongle.flow_control: 'rts': expected one of hardware, software"),
    ({"dongle__path": "ttyUSB0"}, "b.toml: dongle.path: 'ttyUSB0': expected a serial port"),
    ({"dongle__baudrate": "fast"}, "b.toml: dongle.baudrate: expected int, got 'fast'"),
    ({"devices__0__type": "TV"}, "b.toml: devices[0].type: unknown device type 'TV'"),
    ({"devices__0__eui64": "00-DB"}, "b.toml: devices[0].eui64: EUI-64 '00-DB' must have 8 bytes"),
    ({"devices__0__install_code": "83FED3407A939723A5C639B26916D505C3B6"},
     "b.toml: devices[0].install_code: CRC C3B6 does not match the code (expected C3B5)"),
    ({"devices__0__install_code": "0011C3B5"}, "b.toml: devices[0].install_code: 4 bytes"),
    ({"devices": []}, "b.toml: devices: a bench needs at least one device under test"),
])
def test_mistakes_name_the_file_and_key(changes: dict, message: str) -> None:
    with pytest.raises(BenchError) as caught:
        parse_bench(bench(**changes), source="b.toml")
    assert str(caught.value).startswith(message)


def test_missing_dongle_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(BenchError, match=r"dongle: is required"):
        parse_bench({"devices": []}, source="b.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[dongle\npath = 1\n")
    with pytest.raises(BenchError, match=r"broken.toml: not valid TOML"):
        load_bench(broken)
    with pytest.raises(BenchError, match=r"nothing.toml: no such file"):
        load_bench(tmp_path / "nothing.toml")
