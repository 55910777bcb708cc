"""APS frame security (ZigBee spec 4.4 / 4.5.1): CCM* with AES-128 at security level 5.

A secured APS frame is::

    APS header (security bit 0x20 set) | auxiliary header | encrypted payload | MIC (4)

    auxiliary header = security control (1) | frame counter (4, LE)
                       | source EUI-64 (8, LE; if extended nonce) | key sequence number (1; network key)

The nonce is source EUI-64 (LE) | frame counter (LE) | security control; the authenticated data is
the APS header and auxiliary header. ZigBee PRO sends the security level field as 0 on the air;
nonce and authenticated data use the real level (5, ENC-MIC-32) in its place.

Key identifiers: DATA (0) uses the link key itself; KEY_TRANSPORT (2) and KEY_LOAD (3) use
HMAC-AES-MMO(link key, 00 / 02) (ZigBee spec 4.5.3). CCM* with a 4-octet MIC is plain CCM with
L = 2, which ``cryptography``'s AESCCM does.
"""

from __future__ import annotations

import enum
from typing import NamedTuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESCCM

from .aes_mmo import hmac_aes_mmo

SECURITY_LEVEL_ENC_MIC_32 = 5
MIC_LENGTH = 4
APS_FC_SECURITY = 0x20

_APS_FRAME_DATA = 0x00
_APS_FRAME_COMMAND = 0x01
_APS_FRAME_ACK = 0x02
_APS_DELIVERY_GROUP = 0x03
_APS_FC_EXTENDED_HEADER = 0x80
_SC_EXTENDED_NONCE = 0x20


class KeyIdentifier(enum.IntEnum):
    DATA = 0  # a link key
    NETWORK = 1
    KEY_TRANSPORT = 2
    KEY_LOAD = 3


class AuxiliaryHeader(NamedTuple):
    key_id: KeyIdentifier
    frame_counter: int
    source: int | None  # EUI-64 in the header (extended nonce), else None
    key_sequence: int | None = None  # network key only


class ApsSecurityError(ValueError):
    """A secured APS frame that cannot be read: malformed, or its MIC does not verify."""


def _frame_key(link_key: bytes, key_id: KeyIdentifier) -> bytes:
    if len(link_key) != 16:
        raise ValueError(f"an APS key is 16 octets, got {len(link_key)}")
    if key_id is KeyIdentifier.KEY_TRANSPORT:
        return hmac_aes_mmo(link_key, b"\x00")
    if key_id is KeyIdentifier.KEY_LOAD:
        return hmac_aes_mmo(link_key, b"\x02")
    return link_key


def aps_header_length(frame: bytes) -> int:
    """Length of the APS header at the start of ``frame`` (data and command frames)."""
    if not frame:
        raise ApsSecurityError("empty APS frame")
    fc = frame[0]
    frame_type = fc & 0x03
    if frame_type == _APS_FRAME_COMMAND:
        length = 2  # frame control, counter
    elif frame_type == _APS_FRAME_DATA:
        delivery = (fc >> 2) & 0x03
        length = 1 + (2 if delivery == _APS_DELIVERY_GROUP else 1) + 2 + 2 + 1 + 1
    else:
        raise ApsSecurityError(f"APS frame type {frame_type} (offset 0) is not data or command")
    if fc & _APS_FC_EXTENDED_HEADER:
        if len(frame) <= length:
            raise ApsSecurityError(f"APS extended header missing at offset {length}")
        fragmentation = frame[length] & 0x03
        length += 1 + (1 if fragmentation else 0)
    if len(frame) < length:
        raise ApsSecurityError(f"APS header is {length} octets, frame has {len(frame)}")
    return length


def _nonce(source: int, frame_counter: int, security_control: int) -> bytes:
    return source.to_bytes(8, "little") + frame_counter.to_bytes(4, "little") + bytes([security_control])


def secure(unsecured: bytes, link_key: bytes, *, source: int, frame_counter: int,
           key_id: KeyIdentifier = KeyIdentifier.DATA, extended_nonce: bool = True) -> bytes:
    """Encrypt and authenticate an APS frame (header + payload) sent by ``source``."""
    if not 0 <= frame_counter <= 0xFFFF_FFFF:
        raise ValueError(f"frame counter {frame_counter} does not fit 32 bits")
    if key_id is KeyIdentifier.NETWORK:
        raise ValueError("APS frames are secured with a link key (key identifier 0, 2 or 3)")
    header_len = aps_header_length(unsecured)
    header = bytes([unsecured[0] | APS_FC_SECURITY]) + unsecured[1:header_len]
    payload = unsecured[header_len:]
    control = (key_id << 3) | (_SC_EXTENDED_NONCE if extended_nonce else 0)
    aux_tail = frame_counter.to_bytes(4, "little") + (source.to_bytes(8, "little") if extended_nonce else b"")
    aux_air = bytes([control]) + aux_tail  # level 0 on the air
    aux_real = bytes([control | SECURITY_LEVEL_ENC_MIC_32]) + aux_tail
    nonce = _nonce(source, frame_counter, control | SECURITY_LEVEL_ENC_MIC_32)
    sealed = AESCCM(_frame_key(link_key, key_id), tag_length=MIC_LENGTH).encrypt(nonce, payload, header + aux_real)
    return header + aux_air + sealed


def unsecure(secured: bytes, link_key: bytes, *, source: int | None = None) -> tuple[bytes, AuxiliaryHeader]:
    """The unsecured APS frame (security bit cleared) and the auxiliary header it carried.

    ``source`` is the sender's EUI-64 when the frame has no extended nonce (the NWK header or the
    address map gives it). Raises :class:`ApsSecurityError` if the MIC does not verify.
    """
    header_len = aps_header_length(secured)
    if not secured[0] & APS_FC_SECURITY:
        raise ApsSecurityError("APS security bit (frame control 0x20) is not set")
    header = secured[:header_len]
    pos = header_len
    if len(secured) < pos + 5:
        raise ApsSecurityError(f"auxiliary header at offset {pos} is cut short")
    control = secured[pos]
    level = control & 0x07
    if level not in (0, SECURITY_LEVEL_ENC_MIC_32):
        raise ApsSecurityError(f"security level {level} at offset {pos} is not 5 (ENC-MIC-32)")
    key_id = KeyIdentifier((control >> 3) & 0x03)
    frame_counter = int.from_bytes(secured[pos + 1:pos + 5], "little")
    pos += 5
    header_source: int | None = None
    if control & _SC_EXTENDED_NONCE:
        if len(secured) < pos + 8:
            raise ApsSecurityError(f"extended nonce source at offset {pos} is cut short")
        header_source = int.from_bytes(secured[pos:pos + 8], "little")
        pos += 8
    key_sequence = None
    if key_id is KeyIdentifier.NETWORK:
        key_sequence = secured[pos]
        pos += 1
    sender = header_source if header_source is not None else source
    if sender is None:
        raise ApsSecurityError("no extended nonce in the frame and no source EUI-64 given")
    aux_real = bytes([control | SECURITY_LEVEL_ENC_MIC_32]) + secured[header_len + 1:pos]
    nonce = _nonce(sender, frame_counter, control | SECURITY_LEVEL_ENC_MIC_32)
    if len(secured) - pos < MIC_LENGTH:
        raise ApsSecurityError(f"MIC missing: {len(secured) - pos} octets after the auxiliary header")
    try:
        payload = AESCCM(_frame_key(link_key, key_id), tag_length=MIC_LENGTH).decrypt(
            nonce, secured[pos:], header + aux_real)
    except InvalidTag:
        raise ApsSecurityError(f"MIC check failed for frame counter {frame_counter} from {sender:016X}") from None
    unsecured = bytes([header[0] & ~APS_FC_SECURITY]) + header[1:] + payload
    return unsecured, AuxiliaryHeader(key_id, frame_counter, header_source, key_sequence)
