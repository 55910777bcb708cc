"""Strict reading of the user's TOML files: every mistake names the file and the key."""

from __future__ import annotations

import enum
from dataclasses import dataclass

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


class Mode(enum.Enum):
    FAST = "fast"
    SLOW = "slow"


@dataclass
class Settings:
    count: int = 1
    period_s: float = 1.0
    enabled: bool = False
    name: str = "x"
    limit: int | None = None
    mode: Mode = Mode.FAST


def test_dataclass_overrides_are_type_checked_against_the_fields() -> None:
    good = Table({"count": 3, "period_s": 2, "enabled": True, "limit": 7, "mode": "slow"}, "ota", "s.toml")
    assert good.overrides(Settings) == {"count": 3, "period_s": 2.0, "enabled": True, "limit": 7, "mode": Mode.SLOW}
    assert isinstance(good.overrides(Settings)["period_s"], float)
    cases = [
        ({"count": "3"}, r"s.toml: ota.count: expected int, got '3'"),
        ({"count": True}, r"s.toml: ota.count: expected int, got True"),
        ({"limit": 1.5}, r"s.toml: ota.limit: expected int, got 1.5"),
        ({"enabled": 1}, r"s.toml: ota.enabled: expected bool, got 1"),
        ({"mode": "medium"}, r"s.toml: ota.mode: 'medium' is not one of 'fast', 'slow'"),
        ({"cuont": 1}, r"s.toml: ota.cuont: unknown setting \(known: count, enabled, limit, mode, name, period_s\)"),
    ]
    for data, message in cases:
        with pytest.raises(MyError, match=message):
            Table(data, "ota", "s.toml").overrides(Settings)


def test_eui_keyed_tables_name_a_bad_key() -> None:
    table = Table({"00-DB-12-34-56-78-90-A4": "N19", "00-DB": "N18"}, "csp.devices", "s.toml")
    with pytest.raises(MyError, match=r"s.toml: csp.devices.00-DB: EUI-64 '00-DB' must have 8 bytes"):
        table.eui_keys()


def _settable_from_a_file(cls: type) -> list[str]:
    """The init fields of ``cls`` a TOML file could set (TOML has no null: a None default gets 1)."""
    import dataclasses

    names = []
    for f in dataclasses.fields(cls):
        if not f.init or f.default is dataclasses.MISSING:
            continue
        names.append(f.name)
    return names


@pytest.mark.parametrize("cls_name", ["ServerPolicy", "ClientProfile"])
def test_every_policy_and_profile_setting_can_be_set_from_a_file(cls_name: str) -> None:
    """Scenario and fleet files set these by their annotations, so each must survive (also in the
    compiled build, where the classes are built by mypyc: docs/fleet.md)."""
    import dataclasses

    from emulator.ota.policy import ServerPolicy
    from emulator.ota.profile import ClientProfile

    cls = {"ServerPolicy": ServerPolicy, "ClientProfile": ClientProfile}[cls_name]
    defaults = {f.name: f.default for f in dataclasses.fields(cls)}
    data = {name: (defaults[name].value if isinstance(defaults[name], enum.Enum)
                   else 1 if defaults[name] is None else defaults[name])
            for name in _settable_from_a_file(cls)}
    changes = Table(data, "ota", "s.toml").overrides(cls)
    assert changes == {name: (defaults[name] if defaults[name] is not None else 1) for name in data}
