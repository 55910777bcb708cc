"""bellows runs the CBKE commands against the emulated dongle as against a Silicon Labs NCP with
a CBKE image: its certificate, an ephemeral key in a callback, both SMACs in a callback, and the
link key stored for the partner, all agreeing with a device doing its side in Python; a dongle
without CBKE data answers LIBRARY_NOT_PRESENT."""

from __future__ import annotations

import asyncio
from typing import Any

import bellows.types as t
import pytest

from emulator.han.security.cbke import EphemeralKey, derive
from emulator.han.security.certificates import CryptoSuite, ImplicitCertificate
from emulator.han.security.provisioning import HanKeyMaterial

from conftest import DEVICE_EUI64, DEVICE_NWK, WAIT, Bench

DEVICE = 0x00DB1234567890A4

SUITES = {
    CryptoSuite.SUITE_2: ("getCertificate283k1", "generateCbkeKeys283k1", "generateCbkeKeysHandler283k1",
                          "calculateSmacs283k1", "calculateSmacsHandler283k1",
                          "clearTemporaryDataMaybeStoreLinkKey283k1"),
    CryptoSuite.SUITE_1: ("getCertificate", "generateCbkeKeys", "generateCbkeKeysHandler", "calculateSmacs",
                          "calculateSmacsHandler", "clearTemporaryDataMaybeStoreLinkKey"),
}


async def _call_with_callback(ezsp: Any, command: str, callback: str, **params: Any) -> tuple[list, list]:
    """Send ``command`` and wait for ``callback`` (the NCP answers it after the response)."""
    arrived: asyncio.Future[list] = asyncio.get_running_loop().create_future()

    def on_callback(name: str, args: list) -> None:
        if name == callback and not arrived.done():
            arrived.set_result(list(args))

    handle = ezsp.add_callback(on_callback)
    try:
        response = await asyncio.wait_for(getattr(ezsp, command)(**params), WAIT)
        return list(response), await asyncio.wait_for(arrived, WAIT)
    finally:
        ezsp.remove_callback(handle)


@pytest.mark.parametrize("suite", list(SUITES), ids=["suite2", "suite1"])
async def test_bellows_runs_cbke_on_the_dongle_and_it_agrees_with_the_device(bench: Bench, suite: CryptoSuite) -> None:
    get_cert, generate, generated, calculate, calculated, clear = SUITES[suite]
    keys = HanKeyMaterial(5, suite=suite)
    hub_eui = bench.ncp.dongle.eui64
    bench.ncp.dongle.cbke_identities[suite.number] = keys.identity(hub_eui)
    device = keys.identity(DEVICE)
    ezsp = bench.transport.app._ezsp

    status, local_cert = await asyncio.wait_for(getattr(ezsp, get_cert)(), WAIT)
    assert status == t.EmberStatus.SUCCESS
    hub_cert = ImplicitCertificate.decode(bytes(local_cert), suite)
    assert hub_cert.subject == hub_eui

    (status,), (cb_status, ncp_ephemeral) = await _call_with_callback(ezsp, generate, generated)
    assert status == cb_status == t.EmberStatus.SUCCESS
    device_ephemeral = EphemeralKey.generate(suite.curve)
    data_types = (t.EmberCertificate283k1Data, t.EmberPublicKey283k1Data) if suite is CryptoSuite.SUITE_2 \
        else (t.EmberCertificateData, t.EmberPublicKeyData)
    (status,), (cb_status, initiator_smac, responder_smac) = await _call_with_callback(
        ezsp, calculate, calculated, amInitiator=False,
        partnerCertificate=data_types[0](device.certificate.encode()),
        partnerEphemeralPublicKey=data_types[1](device_ephemeral.encoded))
    assert status == cb_status == t.EmberStatus.SUCCESS

    mine = derive(device, device_ephemeral, hub_cert, bytes(ncp_ephemeral), am_initiator=True)
    assert bytes(initiator_smac) == mine.macu and bytes(responder_smac) == mine.macv

    (status,) = await asyncio.wait_for(getattr(ezsp, clear)(storeLinkKey=True), WAIT)
    assert status == t.EmberStatus.SUCCESS
    assert bench.ncp.dongle.link_keys[DEVICE] == mine.link_key
    # The temporary data is gone: storing again has nothing to store.
    (status,) = await asyncio.wait_for(getattr(ezsp, clear)(storeLinkKey=True), WAIT)
    assert status == t.EmberStatus.INVALID_CALL


async def test_a_dongle_without_cbke_data_says_library_not_present(bench: Bench) -> None:
    ezsp = bench.transport.app._ezsp
    status, _ = await asyncio.wait_for(ezsp.getCertificate283k1(), WAIT)
    assert status == t.EmberStatus.LIBRARY_NOT_PRESENT
    (status,) = await asyncio.wait_for(ezsp.generateCbkeKeys283k1(), WAIT)
    assert status == t.EmberStatus.LIBRARY_NOT_PRESENT


async def test_calculate_before_generate_is_an_invalid_call(bench: Bench) -> None:
    keys = HanKeyMaterial(5)
    bench.ncp.dongle.cbke_identities[2] = keys.identity(bench.ncp.dongle.eui64)
    ezsp = bench.transport.app._ezsp
    (status,) = await asyncio.wait_for(ezsp.calculateSmacs283k1(
        amInitiator=False, partnerCertificate=t.EmberCertificate283k1Data(keys.identity(DEVICE).certificate.encode()),
        partnerEphemeralPublicKey=t.EmberPublicKey283k1Data(bytes(37))), WAIT)
    assert status == t.EmberStatus.INVALID_CALL


async def test_host_installed_link_key_and_the_aps_encryption_option(bench: Bench, ezsp_version: int) -> None:
    """Where the NCP lacks the CBKE library the host computes the key and installs it
    (addOrUpdateKeyTableEntry on EZSP 8, importLinkKey on 13); OTA unicasts then go with the APS
    ENCRYPTION option, the dongle encrypts them on the air and decrypts the device's answers."""
    from emulator.han.link_security import ApsLinkSecurity, SecuredApsPacket
    from emulator.han.packet import OTA_CLUSTER, ApsPacket, DeliveryStatus

    key = HanKeyMaterial(5).expected_link_key(bench.ncp.dongle.eui64, DEVICE_EUI64)
    ezsp = bench.transport.app._ezsp
    address = t.EUI64(DEVICE_EUI64.to_bytes(8, "little"))
    notify = bytes.fromhex("19010000640000")
    plain = ApsPacket(bench.transport.eui64, DEVICE_EUI64, 0, DEVICE_NWK, notify)

    bench.transport.aps_encrypted_clusters = frozenset({OTA_CLUSTER})
    # No key in the table yet: the NCP refuses to send the frame it was asked to encrypt.
    assert await bench.send(plain) is DeliveryStatus.FAILED

    if ezsp_version >= 13:
        (status,) = await asyncio.wait_for(ezsp.importLinkKey(index=0, address=address, key=t.KeyData(key)), WAIT)
        assert status == t.sl_Status.OK
    else:
        (status,) = await asyncio.wait_for(
            ezsp.addOrUpdateKeyTableEntry(address=address, linkKey=True, keyData=t.KeyData(key)), WAIT)
        assert status == t.EmberStatus.SUCCESS
    assert bench.ncp.dongle.link_keys[DEVICE_EUI64] == key

    air: list[ApsPacket] = []
    bench.ncp.han.add_trace_hook(lambda _d, packet: air.append(packet))
    bench.device.port.security = ApsLinkSecurity(DEVICE_EUI64)  # the device refuses plain OTA now
    bench.device.port.security.set_key(bench.ncp.dongle.eui64, key)

    assert await bench.send(plain) is DeliveryStatus.DELIVERED
    await asyncio.wait_for(bench.device.arrived.wait(), WAIT)
    assert bench.device.heard[-1].payload == notify  # decrypted by the device's APS layer
    assert isinstance(air[-1], SecuredApsPacket) and notify not in air[-1].payload

    query = bytes.fromhex("0102011D12840001DCAC")  # the device answers its hub, encrypted
    bench.device.port.send(ApsPacket(DEVICE_EUI64, bench.ncp.dongle.eui64, DEVICE_NWK, 0x0000, query))
    answer = await asyncio.wait_for(bench.received.get(), WAIT)
    assert isinstance(air[-1], SecuredApsPacket)
    assert answer.payload == query and answer.src == DEVICE_EUI64
