"""A node's APS link security: what it puts on the air is what the reference codec
(``aps_security``) reads, what the codec secures it reads, and it refuses what a GB device
refuses (unencrypted OTA/tunnel unicasts, wrong key, tampering, replays)."""

from __future__ import annotations

import pytest

from emulator.han.link_security import (
    ApsLinkSecurity,
    FrameRefused,
    Refusal,
    SecuredApsPacket,
    aps_data_header,
)
from emulator.han.packet import ApsPacket
from emulator.han.security import aps_security as aps

HUB, DEVICE = 0x00DB1234567890A2, 0x00DB1234567890A4
KEY = bytes.fromhex("0FE2E9CF7B97947A97D2A21ED6CB54A3")
ZCL = bytes.fromhex("190105000000001D12840001DCAC0000000040") + bytes(range(64))


def pair() -> tuple[ApsLinkSecurity, ApsLinkSecurity, list[FrameRefused]]:
    refused: list[FrameRefused] = []
    hub = ApsLinkSecurity(HUB, on_refused=refused.append)
    device = ApsLinkSecurity(DEVICE, on_refused=refused.append)
    hub.set_key(DEVICE, KEY)
    device.set_key(HUB, KEY)
    return hub, device, refused


def block(payload: bytes = ZCL, cluster: int = 0x0019, counter: int = 7) -> ApsPacket:
    return ApsPacket(HUB, DEVICE, 0x0000, 0x1101, payload, cluster=cluster, aps_counter=counter)


def test_what_goes_on_the_air_is_read_by_the_reference_codec() -> None:
    hub, _, _ = pair()
    hub.frame_counter = 0x1234
    secured = hub.outgoing(block())
    assert isinstance(secured, SecuredApsPacket) and secured.payload != ZCL
    assert len(secured.payload) == len(ZCL) + 13 + 4  # auxiliary header (extended nonce) and MIC
    plain, aux = aps.unsecure(aps_data_header(secured, secured=True) + secured.payload, KEY)
    assert plain[8:] == ZCL and plain[0] & aps.APS_FC_SECURITY == 0
    assert (aux.key_id, aux.frame_counter, aux.source) == (aps.KeyIdentifier.DATA, 0x1234, HUB)


def test_a_frame_the_reference_codec_secured_is_accepted() -> None:
    _, device, refused = pair()
    packet = block()
    frame = aps.secure(aps_data_header(packet, secured=False) + ZCL, KEY, source=HUB, frame_counter=99)
    received = device.incoming(SecuredApsPacket._make((*packet[:4], frame[8:], *packet[5:])))
    assert received is not None and received.payload == ZCL and not refused
    assert type(received) is ApsPacket  # the node above sees a plain frame


def test_round_trip_and_the_counter_rises() -> None:
    hub, device, refused = pair()
    first, second = hub.outgoing(block()), hub.outgoing(block())
    assert first.payload[1:5] != second.payload[1:5]
    assert device.incoming(first).payload == ZCL and device.incoming(second).payload == ZCL
    assert not refused


@pytest.mark.parametrize("cluster", [0x0019, 0x0704])
def test_an_unencrypted_unicast_on_ota_or_tunneling_is_refused(cluster: int) -> None:
    _, device, refused = pair()
    assert device.incoming(block(cluster=cluster)) is None
    assert refused[-1].refusal is Refusal.UNENCRYPTED and refused[-1].cluster == cluster


def test_key_establishment_and_broadcasts_pass_without_aps_security() -> None:
    hub, device, refused = pair()
    ke = block(b"\x01\x00\x00", cluster=0x0800)
    assert hub.outgoing(ke) is ke and device.incoming(ke) is ke
    notify = ApsPacket(HUB, 0, 0x0000, 0xFFFF, b"\x19\x01\x00\x00\x64", cluster=0x0019)
    assert hub.outgoing(notify) is notify and device.incoming(notify) is notify
    assert not refused


def test_wrong_key_tampering_and_replay_are_refused() -> None:
    hub, device, refused = pair()
    secured = hub.outgoing(block())
    stranger = ApsLinkSecurity(DEVICE, on_refused=refused.append)
    stranger.set_key(HUB, bytes(16))
    assert stranger.incoming(secured) is None and refused[-1].refusal is Refusal.MIC_FAILED
    body = bytearray(secured.payload)
    body[20] ^= 0x80
    assert device.incoming(secured._replace(payload=bytes(body))) is None
    assert refused[-1].refusal is Refusal.MIC_FAILED
    assert device.incoming(secured) is not None
    assert device.incoming(secured) is None and refused[-1].refusal is Refusal.REPLAYED
    nobody = ApsLinkSecurity(DEVICE, on_refused=refused.append)
    assert nobody.incoming(secured) is None and refused[-1].refusal is Refusal.NO_KEY


def test_a_link_key_must_be_16_octets() -> None:
    with pytest.raises(ValueError, match="16 octets, got 15 for 00DB1234567890A4"):
        ApsLinkSecurity(HUB).set_key(DEVICE, bytes(15))
