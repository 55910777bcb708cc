"""The ZigBee Image Integrity Code: an AES-128 Matyas-Meyer-Oseas hash (ZigBee spec B.6).

The integrity-code element (tag 0x0003) holds the hash of every byte of the OTA file before the
element's own tag; checking it tells a user whether a vendor file was damaged in transit. The hash
is the project's one AES-MMO (:mod:`emulator.han.security.aes_mmo`, also used by CBKE).
"""

from __future__ import annotations

from emulator.han.security.aes_mmo import aes_mmo as aes_mmo_hash

__all__ = ["aes_mmo_hash"]
