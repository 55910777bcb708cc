"""Bench files (TOML): which dongle, which network, which devices under test.

Strict, like scenario files: an unknown key, a value of the wrong type or an impossible value
(a channel outside 11..26, an install code whose CRC does not match) is a :class:`BenchError`
naming the file and the key path (``devices[1].install_code``). Format: docs/hil.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from emulator.config import StrictTable, read_toml
from emulator.han.packet import format_eui64, parse_eui64
from emulator.han.security.aes_mmo import install_code_crc

DEVICE_TYPES = ("ESME", "GSME", "PPMID", "HCALCS")
FLOW_CONTROL = {"hardware": "hardware", "software": "software"}
"""Bench spelling -> bellows setting (bellows reads a missing setting as XON/XOFF)."""
INSTALL_CODE_SIZES = (6, 8, 12, 16)
"""ZigBee install-code lengths in bytes, before the 2-byte CRC."""


class BenchError(ValueError):
    """A bench file that cannot be used; the message names the file and the key."""


@dataclass(frozen=True, slots=True)
class Dongle:
    path: str
    baudrate: int = 115200
    flow_control: str | None = None


@dataclass(frozen=True, slots=True)
class Network:
    channel: int | None = None
    pan_id: int | None = None
    extended_pan_id: int | None = None
    network_key: bytes | None = None


@dataclass(frozen=True, slots=True)
class BenchDevice:
    eui64: int
    device_type: str
    install_code: bytes | None = None
    answer_timeout_s: float = 10.0
    """How long ``hil check`` waits for the device's Query Next Image Request."""

    @property
    def name(self) -> str:
        return f"{self.device_type} {format_eui64(self.eui64)}"


@dataclass(frozen=True, slots=True)
class Bench:
    name: str
    source: str
    dongle: Dongle
    network: Network
    devices: tuple[BenchDevice, ...]
    hub_identity: Any = None
    """``[cbke] hub_identity``: the hub's CBKE identity (a ``cbke issue`` file, TEST ONLY) for
    host-computed CBKE with ``[han] security = "cbke"``; None: the scenario seed's."""


class _Table(StrictTable):
    error = BenchError


def load_bench(path: str | Path) -> Bench:
    return parse_bench(read_toml(path, BenchError), source=str(path))


def parse_bench(data: Mapping[str, Any], *, source: str = "<bench>") -> Bench:
    top = _Table(data, "", source)
    name = top.get("name", str, Path(source).stem)

    dongle_table = top.table("dongle", required=True)
    path = dongle_table.get("path", str, required=True)
    if not (path.startswith("/") or path.startswith("socket://") or path.upper().startswith("COM")):
        raise dongle_table.fail("path", f"{path!r}: expected a serial port (/dev/ttyUSB0) or socket://HOST:PORT")
    baudrate = dongle_table.get("baudrate", int, 115200)
    if baudrate <= 0:
        raise dongle_table.fail("baudrate", f"{baudrate} is not a baud rate")
    flow = dongle_table.get("flow_control", str, "software")
    if flow not in FLOW_CONTROL:
        raise dongle_table.fail("flow_control", f"{flow!r}: expected one of {', '.join(FLOW_CONTROL)}")
    dongle_table.done()

    net = top.table("network")
    channel = net.get("channel", int)
    if channel is not None and not 11 <= channel <= 26:
        raise net.fail("channel", f"{channel} is outside the 2.4 GHz band (11..26)")
    pan_id = net.number("pan_id", 16)
    if pan_id is not None and pan_id >= 0xFFFF:
        raise net.fail("pan_id", "0xFFFF is not a PAN ID")
    extended = net.number("extended_pan_id", 64)
    key = net.hex_bytes("network_key")
    if key is not None and len(key) != 16:
        raise net.fail("network_key", f"must be 16 bytes, got {len(key)}")
    net.done()

    devices: list[BenchDevice] = []
    items = top.get("devices", list, [])
    for i, item in enumerate(items):
        dev = _Table(item, f"devices[{i}]", source)
        text = dev.get("eui64", str, required=True)
        try:
            eui64 = parse_eui64(text)
        except ValueError as exc:
            raise dev.fail("eui64", str(exc)) from None
        device_type = dev.get("type", str, required=True)
        if device_type not in DEVICE_TYPES:
            raise dev.fail("type", f"unknown device type {device_type!r} (known: {', '.join(DEVICE_TYPES)})")
        code = dev.hex_bytes("install_code")
        if code is not None:
            if len(code) - 2 not in INSTALL_CODE_SIZES:
                raise dev.fail("install_code", f"{len(code)} bytes: an install code is 6, 8, 12 or 16 bytes "
                                               "followed by its 2-byte CRC")
            crc = int.from_bytes(code[-2:], "little")
            if crc != install_code_crc(code[:-2]):
                raise dev.fail("install_code", f"CRC {code[-2:].hex().upper()} does not match the code "
                                               f"(expected {install_code_crc(code[:-2]).to_bytes(2, 'little').hex().upper()})")
        timeout = dev.get("answer_timeout_s", float, 10.0)
        if timeout <= 0:
            raise dev.fail("answer_timeout_s", "must be positive")
        dev.done()
        if any(d.eui64 == eui64 for d in devices):
            raise dev.fail("eui64", f"{format_eui64(eui64)} is listed twice")
        devices.append(BenchDevice(eui64, device_type, code, timeout))
    if not devices:
        raise top.fail("devices", "a bench needs at least one device under test ([[devices]])")
    cbke = top.table("cbke")
    identity = None
    identity_path = cbke.get("hub_identity", str)
    if identity_path is not None:
        from emulator.han.security.test_ca import KeyFileError, load_identity

        resolved = Path(source).parent / identity_path
        try:
            identity = load_identity(resolved)
        except (KeyFileError, OSError) as exc:
            raise cbke.fail("hub_identity", str(exc)) from None
    cbke.done()
    top.done()
    return Bench(name, source, Dongle(path, baudrate, FLOW_CONTROL[flow]), Network(channel, pan_id, extended, key),
                 tuple(devices), identity)
