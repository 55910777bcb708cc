"""Strict reading of the user's TOML files: every mistake names the file and the key."""

from __future__ import annotations

import pytest

from emulator.config import StrictTable, read_toml


class MyError(ValueError):
    pass


class Table(StrictTable):
    error = MyError


def test_unknown_key_is_named_with_its_path():
    top = Table({"han": {"latency_s": 1, "latncy": 2}}, "", "bench.toml")
    han = top.table("han")
    han.get("latency_s", float)
    with pytest.raises(MyError, match=r"bench.toml: han: unknown key\(s\) latncy \(known: latency_s\)"):
        han.done()


def test_wrong_type_and_missing_key():
    rows = Table({"devices": [{"eui64": 5}]}, "", "s.toml").tables("devices")
    with pytest.raises(MyError, match=r"s.toml: devices\[0\].eui64: expected str, got 5"):
        rows[0].eui("eui64")
    with pytest.raises(MyError, match=r"s.toml: devices\[0\].type: is required"):
        rows[0].get("type", str, required=True)


def test_numbers_and_euis():
    table = Table({"pan": "0x1A62", "big": "1FFFF", "eui": "00-DB-12"}, "network", "b.toml")
    assert table.number("pan", 16) == 0x1A62
    with pytest.raises(MyError, match=r"network.big: 0x1ffff does not fit 16 bits"):
        table.number("big", 16)
    with pytest.raises(MyError, match=r"network.eui: EUI-64 '00-DB-12' must have 8 bytes"):
        table.eui("eui")


def test_read_toml_errors_name_the_file(tmp_path):
    with pytest.raises(MyError, match="missing.toml: no such file"):
        read_toml(tmp_path / "missing.toml", MyError)
    bad = tmp_path / "bad.toml"
    bad.write_text("a = = 1")
    with pytest.raises(MyError, match="bad.toml: not valid TOML"):
        read_toml(bad, MyError)
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe")
    with pytest.raises(MyError, match=r"bin.toml: not UTF-8 text \(byte 0\)"):
        read_toml(binary, MyError)
