"""What an EZSP dongle keeps in flash: identity and the network it has formed.

This survives NCP resets and host reconnections; everything negotiated over a connection
(protocol version, endpoints, configuration values) lives in the session instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DEFAULT_NCP_EUI64 = 0x00124B0001C0FFEE
DEFAULT_NETWORK_KEY = bytes.fromhex("01030507090B0D0F00020406080A0C0D")
WELL_KNOWN_TC_LINK_KEY = b"ZigBeeAlliance09"
SILICON_LABS_MFG_CODE = 0x1049


@dataclass
class DongleState:
    """Identity and network of the emulated NCP (a coordinator on an already-formed network)."""

    eui64: int = DEFAULT_NCP_EUI64
    nwk: int = 0x0000
    pan_id: int = 0x1A62
    extended_pan_id: int = 0x00DB1234567890A1
    channel: int = 15
    tx_power: int = 8
    nwk_update_id: int = 0
    network_key: bytes = DEFAULT_NETWORK_KEY
    network_key_seq: int = 0
    network_key_frame_counter: int = 0x1000
    tc_link_key: bytes = WELL_KNOWN_TC_LINK_KEY
    security_level: int = 5
    manufacturer_code: int = SILICON_LABS_MFG_CODE
    mfg_string: str = "ch-emulator"
    board_name: str = "ncp-sim"
    firmware_version: tuple[int, int, int, int, int] = (7, 4, 4, 0, 0)
    """major, minor, patch, special, build (as EmberZNet reports VALUE_VERSION_INFO)."""
    neighbours: dict[int, int] = field(default_factory=dict)
    """NWK -> EUI-64 of the nodes the coordinator knows (children, address table, heard)."""
    cbke_identities: dict[int, Any] = field(default_factory=dict)
    """Crypto suite (1, 2) -> the preinstalled CBKE data (a ``CbkeIdentity``; the MFG_CBKE_DATA
    tokens); empty: the image has no CBKE library (the commands answer LIBRARY_NOT_PRESENT)."""
    cbke_temporary: dict[int, Any] = field(default_factory=dict)
    """The CBKE library's data of the exchange in progress, per suite."""
    link_keys: dict[int, bytes] = field(default_factory=dict)
    """EUI-64 -> APS link key in the key table (stored by clearTemporaryDataMaybeStoreLinkKey)."""

    def __post_init__(self) -> None:
        if not 11 <= self.channel <= 26:
            raise ValueError(f"channel {self.channel} is outside the 2.4 GHz band (11..26)")
        for name in ("network_key", "tc_link_key"):
            if len(getattr(self, name)) != 16:
                raise ValueError(f"{name} must be 16 bytes, got {len(getattr(self, name))}")

    @property
    def stack_version(self) -> int:
        """EmberZNet stack version as ``version`` reports it: 0xMmPS nibbles."""
        major, minor, patch, special, _ = self.firmware_version
        return (major << 12) | (minor << 8) | (patch << 4) | special

    def eui64_of(self, nwk: int) -> int | None:
        if nwk == self.nwk:
            return self.eui64
        return self.neighbours.get(nwk)

    def nwk_of(self, eui64: int) -> int | None:
        if eui64 == self.eui64:
            return self.nwk
        for nwk, known in self.neighbours.items():
            if known == eui64:
                return nwk
        return None

    def store_link_key(self, partner: int, key: bytes) -> None:
        if len(key) != 16:
            raise ValueError(f"a link key is 16 bytes, got {len(key)}")
        self.link_keys[partner] = key

    def learn(self, nwk: int, eui64: int) -> None:
        if eui64 and nwk < 0xFFF8 and nwk != self.nwk:
            self.neighbours[nwk] = eui64
