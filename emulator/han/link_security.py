"""APS link-key security for one node, applied at the transport boundary.

A GB device APS-encrypts every OTA (0x0019) and Tunneling (0x0704) unicast with the link key it
established by CBKE, and refuses such a frame that arrives unencrypted; NWK security alone is not
enough for those clusters. Key Establishment (0x0800) and broadcasts (Image Notify) travel with
NWK security only. :class:`ApsLinkSecurity` does this for one node: the transport secures what it
sends and unsecures what it receives, so the OTA engines, the hub and the devices above it see
plain :class:`~emulator.han.packet.ApsPacket` records and never know.

On the air a secured frame is a :class:`SecuredApsPacket`: the same addressing fields, and as
payload what follows the APS header in the real frame (auxiliary header, ciphertext, MIC), so the
capture writer puts it on the air byte for byte and Wireshark decrypts it with the link key.
"""

from __future__ import annotations

import enum
import logging
import struct
from dataclasses import dataclass
from typing import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESCCM

from .aps_fragmentation import ACK_REQUEST, EXTENDED_HEADER_LENGTH, EXTENDED_HEADER_PRESENT, ApsFragment
from .packet import OTA_CLUSTER, ApsPacket
from .security.aps_security import APS_FC_SECURITY, MIC_LENGTH, ApsSecurityError, unsecure

_LOGGER = logging.getLogger(__name__)

TUNNELING_CLUSTER = 0x0704
PROTECTED_CLUSTERS = frozenset({OTA_CLUSTER, TUNNELING_CLUSTER})
"""Clusters a GB device only accepts APS-encrypted (SE 1.x: application link key)."""

APS_FC_DATA_UNICAST = 0x00
APS_HEADER_LENGTH = 8
# What this layer sends: key identifier DATA (link key), extended nonce, level 0 on the air and
# 5 (ENC-MIC-32) in the nonce and authenticated data. Anything else received goes through the
# general codec (:func:`~emulator.han.security.aps_security.unsecure`).
_CONTROL_AIR = 0x20
_CONTROL_REAL = bytes([0x25])
_AUX_LENGTH = 13
_HEADER = struct.Struct("<BBHHBB")
_AUX_TAIL = struct.Struct("<IQ")
_NONCE_HEAD = struct.Struct("<QI")


class SecuredApsPacket(ApsPacket):
    """An APS frame with APS security, as it is on the air: ``payload`` is the auxiliary header,
    the encrypted ZCL frame and the 4-octet MIC."""

    __slots__ = ()


class SecuredApsFragment(SecuredApsPacket, ApsFragment):  # type: ignore[misc]  # both add no fields
    """An APS block with APS security, as it is on the air: ``payload`` is the extended header,
    then the block's auxiliary header, encrypted block and MIC (ZigBee secures each block)."""

    __slots__ = ()


_FC_BLOCK = EXTENDED_HEADER_PRESENT | ACK_REQUEST


def aps_data_header(packet: ApsPacket, *, secured: bool) -> bytes:
    """The APS data header of a unicast as the capture writer writes it: no ack request, but
    for a block (:class:`ApsFragment`) the extended header, with an ack request."""
    fc = APS_FC_DATA_UNICAST | (APS_FC_SECURITY if secured else 0)
    if isinstance(packet, ApsFragment):
        return _HEADER.pack(fc | _FC_BLOCK, packet.dst_ep, packet.cluster, packet.profile, packet.src_ep,
                            packet.aps_counter & 0xFF) + packet.extended_header
    return _HEADER.pack(fc, packet.dst_ep, packet.cluster, packet.profile, packet.src_ep,
                       packet.aps_counter & 0xFF)


class Refusal(str, enum.Enum):
    """Why a node dropped a frame at the APS security layer."""

    UNENCRYPTED = "unencrypted"  # a protected cluster without APS security
    NO_KEY = "no_key"  # secured, but no link key with the sender
    MIC_FAILED = "mic_failed"  # the key does not authenticate it (wrong key, tampered)
    REPLAYED = "replayed"  # frame counter not above the last one accepted from the sender


@dataclass(frozen=True, slots=True)
class FrameRefused:
    """A frame a node's APS security layer did not hand up."""

    node: int
    sender: int
    cluster: int
    refusal: Refusal
    detail: str = ""


RefusalListener = Callable[[FrameRefused], None]


class ApsLinkSecurity:
    """One node's APS link keys (one per partner), outgoing frame counter and replay window.

    ``require`` True: unicasts on the protected clusters must arrive secured (a GB device after
    CBKE, a Trust Centre in full security). Frames to a partner without a key go unsecured.
    """

    __slots__ = ("eui64", "require", "frame_counter", "on_refused", "_keys", "_ciphers", "_last_counter")

    def __init__(self, eui64: int, *, require: bool = True, on_refused: RefusalListener | None = None) -> None:
        self.eui64 = eui64
        self.require = require
        self.frame_counter = 0
        self.on_refused = on_refused
        self._keys: dict[int, bytes] = {}
        self._ciphers: dict[int, AESCCM] = {}  # one CCM context per key: a fleet secures every frame
        self._last_counter: dict[int, int] = {}

    def set_key(self, partner: int, key: bytes) -> None:
        """Use ``key`` with ``partner`` from now on (a new key restarts its replay window)."""
        if len(key) != 16:
            raise ValueError(f"an APS link key is 16 octets, got {len(key)} for {partner:016X}")
        self._keys[partner] = key
        self._ciphers[partner] = AESCCM(key, tag_length=MIC_LENGTH)
        self._last_counter.pop(partner, None)

    def key_of(self, partner: int) -> bytes | None:
        return self._keys.get(partner)

    def forget(self, partner: int) -> None:
        self._keys.pop(partner, None)
        self._ciphers.pop(partner, None)
        self._last_counter.pop(partner, None)

    # -- the transport calls these ---------------------------------------------------------------
    def outgoing(self, packet: ApsPacket) -> ApsPacket:
        """``packet`` as it goes on the air: secured if it is a protected unicast to a partner
        this node has a key with."""
        if packet.cluster not in PROTECTED_CLUSTERS or packet.is_broadcast:
            return packet
        return self.secure(packet)

    def secure(self, packet: ApsPacket) -> ApsPacket:
        """``packet`` (a unicast, any cluster) secured with the destination's key; unchanged if
        there is none (an NCP asked for the ENCRYPTION option calls this)."""
        cipher = self._ciphers.get(packet.dst)
        if cipher is None:
            return packet
        counter = self.frame_counter
        self.frame_counter = (counter + 1) & 0xFFFF_FFFF
        # ZigBee 4.4.1.1 as aps_security.secure() does it, inline: this runs for every frame.
        aux_tail = _AUX_TAIL.pack(counter, self.eui64)
        if isinstance(packet, ApsFragment):  # each block secured on its own, its extended header authenticated
            header = aps_data_header(packet, secured=True)
            sealed = cipher.encrypt(_NONCE_HEAD.pack(self.eui64, counter) + _CONTROL_REAL, packet.body,
                                    header + _CONTROL_REAL + aux_tail)
            return SecuredApsFragment._make((*packet[:4], packet.extended_header + bytes([_CONTROL_AIR]) + aux_tail
                                             + sealed, *packet[5:]))
        header = _HEADER.pack(APS_FC_DATA_UNICAST | APS_FC_SECURITY, packet.dst_ep, packet.cluster, packet.profile,
                              packet.src_ep, packet.aps_counter & 0xFF)
        sealed = cipher.encrypt(_NONCE_HEAD.pack(self.eui64, counter) + _CONTROL_REAL, bytes(packet.payload),
                                header + _CONTROL_REAL + aux_tail)
        return SecuredApsPacket._make((*packet[:4], bytes([_CONTROL_AIR]) + aux_tail + sealed, *packet[5:]))

    def incoming(self, packet: ApsPacket) -> ApsPacket | None:
        """The plain packet to hand up, or None (refused, and reported to ``on_refused``)."""
        if not isinstance(packet, SecuredApsPacket):
            if self.require and packet.cluster in PROTECTED_CLUSTERS and not packet.is_broadcast:
                return self._refuse(packet, Refusal.UNENCRYPTED, "APS security required on this cluster")
            return packet
        cipher = self._ciphers.get(packet.src)
        if cipher is None:
            return self._refuse(packet, Refusal.NO_KEY, "no link key with the sender")
        body = bytes(packet.payload)
        header = aps_data_header(packet, secured=True)
        block = isinstance(packet, ApsFragment)
        if block:
            body = body[EXTENDED_HEADER_LENGTH:]
        if len(body) >= _AUX_LENGTH + MIC_LENGTH and body[0] == _CONTROL_AIR:
            counter, source = _AUX_TAIL.unpack_from(body, 1)
            try:
                payload = cipher.decrypt(_NONCE_HEAD.pack(source, counter) + _CONTROL_REAL, body[_AUX_LENGTH:],
                                         header + _CONTROL_REAL + body[1:_AUX_LENGTH])
            except InvalidTag:
                return self._refuse(packet, Refusal.MIC_FAILED,
                                    f"MIC check failed for frame counter {counter} from {source:016X}")
        else:
            try:
                plain, aux = unsecure(header + body, self._keys[packet.src], source=packet.src)
            except ApsSecurityError as exc:
                return self._refuse(packet, Refusal.MIC_FAILED, str(exc))
            counter, payload = aux.frame_counter, plain[len(header):]
        last = self._last_counter.get(packet.src)
        if last is not None and counter <= last:
            return self._refuse(packet, Refusal.REPLAYED, f"frame counter {counter} <= {last}")
        self._last_counter[packet.src] = counter
        if block:
            return ApsFragment._make((*packet[:4], header[APS_HEADER_LENGTH:] + payload, *packet[5:]))
        return ApsPacket._make((*packet[:4], payload, *packet[5:]))

    def _refuse(self, packet: ApsPacket, refusal: Refusal, detail: str) -> ApsPacket | None:
        _LOGGER.debug("%016X: refused frame from %016X on 0x%04X: %s", self.eui64, packet.src, packet.cluster, detail)
        if self.on_refused is not None:
            self.on_refused(FrameRefused(self.eui64, packet.src, packet.cluster, refusal, detail))
        return None
