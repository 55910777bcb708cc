"""The emulated devices' GBCS keys (TEST ONLY), stored with the premises in ``serve``'s database.

``serve`` derives each Comms Hub's and device's DS and KA keys from the scenario's seed
(:mod:`emulator.keys.devices`) and writes them here when it starts, so the database it leaves
behind says which keys signed and MAC'd its devices' messages: ``ch-emulator keys export DIR --db
PATH`` reads them back for a user's tools. A database already holding keys of another seed is
refused (the devices would sign with keys the database does not name).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterable

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from emulator.dcc.store import Store, StoreError
from emulator.eui64 import format_eui64, parse_eui64
from emulator.keys.devices import derive_device_key
from emulator.keys.store import GBCS_KEY_USAGES, KeyUsage

_LOGGER = logging.getLogger(__name__)

_SCHEMA = ("CREATE TABLE IF NOT EXISTS gbcs_device_key (eui64 TEXT NOT NULL, usage TEXT NOT NULL, "
           "seed TEXT NOT NULL, private_key TEXT NOT NULL, PRIMARY KEY (eui64, usage))")


@dataclass(frozen=True, slots=True)
class StoredDeviceKey:
    eui64: int
    usage: KeyUsage
    seed: int
    private_key: ec.EllipticCurvePrivateKey


def store_device_keys(store: Store, devices: Iterable[int], seed: int) -> int:
    """Keep the keys of ``devices`` under ``seed`` (a device already stored keeps its row);
    returns how many keys were added. Raises :class:`StoreError` if the database holds keys of
    another seed."""
    with store.transaction() as conn:
        conn.execute(_SCHEMA)
        other = conn.execute("SELECT DISTINCT seed FROM gbcs_device_key WHERE seed != ?", (str(seed),)).fetchall()
        if other:
            raise StoreError(
                f"the database holds the emulated devices' GBCS keys of seed {other[0][0]}, not {seed}: "
                "run with the scenario (seed) that made it, or start a new --db")
        held = {(parse_eui64(eui), usage) for eui, usage in conn.execute("SELECT eui64, usage FROM gbcs_device_key")}
        added = 0
        for eui in sorted(set(devices)):
            for usage in GBCS_KEY_USAGES:
                if (eui, usage.value) in held:
                    continue
                pem = derive_device_key(seed, eui, usage).private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
                conn.execute("INSERT OR IGNORE INTO gbcs_device_key VALUES (?, ?, ?, ?)",
                             (format_eui64(eui), usage.value, str(seed), pem.decode("ascii")))
                added += 1
    if added:
        _LOGGER.info("stored %d TEST ONLY device key(s) (seed %d) in %s", added, seed, store.path)
    return added


def stored_device_keys(store: Store) -> list[StoredDeviceKey]:
    """Every device key the database holds, by EUI-64 then usage ([] if it holds none)."""
    conn = store.connection
    if conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='gbcs_device_key'").fetchone() is None:
        return []
    keys = []
    for eui, usage, seed, pem in conn.execute(
            "SELECT eui64, usage, seed, private_key FROM gbcs_device_key ORDER BY eui64, usage"):
        key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise StoreError(f"{store.path}: gbcs_device_key {eui} {usage}: not an EC private key")
        keys.append(StoredDeviceKey(parse_eui64(eui), KeyUsage(usage), int(seed), key))
    return keys
