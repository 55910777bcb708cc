"""The dongle emulator's own APS-encrypted sends: a message longer than one frame goes on the air
as APS blocks, each encrypted with the device's link key from the key table (the same
fragmentation as every node's), and the device reassembles the plain message."""

from __future__ import annotations

import pytest
from conftest import DEVICE_EUI64, DEVICE_NWK, Bench

from emulator.han.aps_fragmentation import FRAGMENT_PAYLOAD, ApsFragment
from emulator.han.link_security import ApsLinkSecurity, SecuredApsPacket
from emulator.han.packet import ApsPacket, DeliveryStatus

LINK_KEY = bytes.fromhex("66B6900981E1EE3CA4206B6B861C02BB")  # TEST ONLY
TUNNELING = 0x0704


def _secure_both_ends(bench: Bench) -> list[ApsPacket]:
    bench.ncp.dongle.store_link_key(DEVICE_EUI64, LINK_KEY)
    device_security = ApsLinkSecurity(DEVICE_EUI64)
    device_security.set_key(bench.ncp.dongle.eui64, LINK_KEY)
    bench.device.port.security = device_security  # type: ignore[attr-defined]
    bench.transport.aps_encrypted_clusters = frozenset({TUNNELING})
    air: list[ApsPacket] = []
    bench.ncp.han.add_trace_hook(lambda _direction, packet: air.append(packet))  # type: ignore[union-attr]
    return air


@pytest.mark.parametrize("length", [75, 190], ids=["one-sendUnicast", "host-fragmented"])
async def test_an_encrypted_message_longer_than_a_frame_goes_as_encrypted_blocks(bench: Bench, length: int) -> None:
    """75 octets: bellows sends it whole (EZSP takes up to 82), the NCP splits it on the air;
    190: the host sends APS blocks with the ENCRYPTION option, the NCP reassembles and re-splits."""
    air = _secure_both_ends(bench)
    message = bytes((i * 5 + 3) & 0xFF for i in range(length))
    packet = ApsPacket(src=bench.transport.eui64, dst=DEVICE_EUI64, src_nwk=0, dst_nwk=DEVICE_NWK, payload=message,
                       cluster=TUNNELING)
    assert await bench.send(packet) is DeliveryStatus.DELIVERED
    assert bench.device.heard[-1].payload == message
    on_air = [p for p in air if p.cluster == TUNNELING]
    assert len(on_air) == -(-length // FRAGMENT_PAYLOAD)
    assert all(isinstance(p, SecuredApsPacket) and isinstance(p, ApsFragment) for p in on_air)
    assert message[:16] not in b"".join(bytes(p.payload) for p in on_air)  # ciphertext on the air


async def test_without_a_key_in_the_table_an_encrypted_send_is_refused(bench: Bench) -> None:
    bench.transport.aps_encrypted_clusters = frozenset({TUNNELING})
    packet = ApsPacket(src=bench.transport.eui64, dst=DEVICE_EUI64, src_nwk=0, dst_nwk=DEVICE_NWK,
                       payload=bytes(190), cluster=TUNNELING)
    assert await bench.send(packet) is DeliveryStatus.FAILED
    assert not [p for p in bench.device.heard if p.cluster == TUNNELING]
