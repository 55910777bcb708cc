"""The HAN keys of a scenario in the form Wireshark's ZigBee dissector takes. TEST ONLY.

Wireshark keeps its pre-configured ZigBee keys in the ``zigbee_pc_keys`` UAT (Preferences →
Protocols → ZigBee → Pre-configured Keys; the file of that name in the personal configuration
directory, e.g. ``~/.config/wireshark/zigbee_pc_keys``): one ``"key","byte order","label"`` line
per key, 32 hex digits, byte order ``Normal``. Wireshark tries each key on NWK and APS frames.

Every key comes from the scenario seed (:class:`~emulator.han.security.provisioning.HanKeyMaterial`):
per premises the network key, per device the TC link key of its install code and the link key
its first CBKE with the hub gives, so a capture of a run with that seed decrypts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from emulator.eui64 import format_eui64
from emulator.han.security.aes_mmo import link_key_from_install_code
from emulator.han.security.provisioning import HanKeyMaterial


@dataclass(frozen=True, slots=True)
class HanKey:
    key: bytes
    label: str

    def uat_line(self) -> str:
        return f'"{self.key.hex().upper()}","Normal","{self.label}"'


def han_keys(seed: int, premises: Iterable[tuple[int, Sequence[int]]], *,
             install_codes: Mapping[int, bytes] | None = None) -> list[HanKey]:
    """The keys of each (hub, devices) premises for ``seed``; ``install_codes`` override the seed's."""
    material = HanKeyMaterial(seed)
    codes = install_codes or {}
    keys: list[HanKey] = []
    for hub, devices in premises:
        keys.append(HanKey(material.network_key(hub), f"NWK key, Trust Centre {format_eui64(hub)} (TEST ONLY)"))
        for device in devices:
            code = codes.get(device) or material.install_code(device)
            keys.append(HanKey(link_key_from_install_code(code),
                               f"install-code TC link key {format_eui64(device)} (TEST ONLY)"))
            keys.append(HanKey(material.expected_link_key(hub, device),
                               f"CBKE link key {format_eui64(device)} (TEST ONLY, seed {seed})"))
    return keys


def write_zigbee_pc_keys(path: Path, keys: Sequence[HanKey]) -> None:
    """Write ``keys`` as a ``zigbee_pc_keys`` UAT file."""
    lines = ["# ch-emulator HAN keys, TEST ONLY: publicly derivable from the scenario seed",
             "# Wireshark: copy to <personal configuration directory>/zigbee_pc_keys"]
    path.write_text("\n".join(lines + [k.uat_line() for k in keys]) + "\n", encoding="utf-8")
