"""TEST ONLY key pairs for emulated devices, derived from a seed and the device's EUI-64.

No device private key and no Device CA key is public, so an emulated ESME, GSME, CHF or PPMID
signs and MACs with keys the emulator makes. They are deterministic (same seed and EUI, same
keys) so a run can be replayed and a user's tools can verify it: ``export_device_keys`` writes
them as ``<eui>-ds.pem`` / ``<eui>-ka.pem`` public keys, the layout gbcs-parser's key-store
callback and :class:`~emulator.keys.store.DirectoryKeyStore` read.

Derivation: HKDF-SHA256(ikm = seed as 16 bytes, salt = :data:`DERIVATION_SALT`,
info = usage (``ds``/``ka``) ‖ EUI-64 ‖ attempt) gives 32 bytes; read as a big-endian integer it
is the P-256 private scalar if it lies in 1..n-1, else the next attempt is taken.
These keys protect nothing: anyone with the seed has them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .store import GBCS_KEY_USAGES, KeyEntry, KeyUsage

DERIVATION_SALT = b"ch-emulator GBCS device keys, TEST ONLY, v1"
DEFAULT_SEED = 0
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_SEED_BYTES = 16


def derive_device_key(seed: int, eui: int, usage: KeyUsage) -> ec.EllipticCurvePrivateKey:
    """The TEST ONLY P-256 private key of ``eui`` for ``usage`` under ``seed``."""
    if not 0 <= seed < 1 << (8 * _SEED_BYTES):
        raise ValueError(f"seed {seed} must be a non-negative integer below 2**128")
    if not 0 <= eui < 1 << 64:
        raise ValueError(f"EUI-64 {eui:#x} out of range")
    for attempt in range(256):
        okm = HKDF(algorithm=hashes.SHA256(), length=32, salt=DERIVATION_SALT,
                   info=usage.value.encode() + eui.to_bytes(8, "big") + bytes([attempt])
                   ).derive(seed.to_bytes(_SEED_BYTES, "big"))
        scalar = int.from_bytes(okm, "big")
        if 1 <= scalar < P256_ORDER:
            return ec.derive_private_key(scalar, ec.SECP256R1())
    raise AssertionError("no valid P-256 scalar in 256 attempts")  # pragma: no cover - probability ~2**-8192


@dataclass(frozen=True)
class DeviceKeyStore:
    """The emulated devices' keys (public and private) as a key store. TEST ONLY."""

    seed: int
    devices: frozenset[int]

    @classmethod
    def for_devices(cls, devices: Iterable[int], seed: int = DEFAULT_SEED) -> "DeviceKeyStore":
        return cls(seed, frozenset(devices))

    def entries(self, eui: int, usage: KeyUsage) -> Sequence[KeyEntry]:
        if eui not in self.devices:
            return ()
        key = derive_device_key(self.seed, eui, usage)
        return (KeyEntry(eui, usage, key.public_key(), key, f"emulated device (seed {self.seed})",
                         name=f"emulated-{usage.value}"),)


def export_device_keys(directory: str | Path, devices: Iterable[int], *, seed: int = DEFAULT_SEED,
                       include_private: bool = False) -> list[Path]:
    """Write ``<eui>-ds.pem`` and ``<eui>-ka.pem`` (SubjectPublicKeyInfo PEM) for each device.

    With ``include_private`` also ``<eui>-ds.key`` / ``<eui>-ka.key`` (PKCS#8, unencrypted) so that
    a user's tool can act as the device. Returns the files written, in order.
    """
    keys = [(eui, usage, derive_device_key(seed, eui, usage)) for eui in sorted(set(devices))
            for usage in GBCS_KEY_USAGES]
    return write_device_key_files(directory, keys, include_private=include_private)


def write_device_key_files(directory: str | Path, keys: Iterable[tuple[int, KeyUsage, ec.EllipticCurvePrivateKey]],
                           *, include_private: bool = False) -> list[Path]:
    """Write each (EUI-64, usage, private key) as ``<eui>-<usage>.pem`` (and ``.key``)."""
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for eui, usage, key in keys:
        stem = f"{eui:016x}-{usage.value}"
        pem = target / f"{stem}.pem"
        pem.write_bytes(key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        written.append(pem)
        if include_private:
            secret = target / f"{stem}.key"
            secret.write_bytes(key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
            written.append(secret)
    return written
