"""Seed-derived TEST ONLY HAN keys: the same seed gives the same keys, each certificate belongs
to its private key under the default test CA, and the link key predicted offline is the one a
CBKE exchange of the engines establishes."""

from __future__ import annotations

from emulator.han.security import ke_frames
from emulator.han.security.aes_mmo import check_install_code
from emulator.han.security.certificates import CryptoSuite
from emulator.han.security.ke_engine import (
    Established,
    KeyEstablishmentClient,
    KeyEstablishmentServer,
    Send,
)
from emulator.han.security.provisioning import HanKeyMaterial
from emulator.han.security.test_ca import DEFAULT_ISSUER, TestCertificateAuthority

HUB, DEVICE = 0x00DB1234567890A2, 0x00DB1234567890A4


def test_same_seed_same_keys_other_seed_other_keys() -> None:
    a, b, c = HanKeyMaterial(3), HanKeyMaterial(3), HanKeyMaterial(4)
    assert a.install_code(DEVICE) == b.install_code(DEVICE) != c.install_code(DEVICE)
    assert a.network_key(HUB) == b.network_key(HUB) != c.network_key(HUB)
    assert a.identity(DEVICE).certificate == b.identity(DEVICE).certificate != c.identity(DEVICE).certificate
    check_install_code(a.install_code(DEVICE))  # 16 octets and a good CRC
    assert len(a.install_code(DEVICE)) == 18


def test_certificates_come_from_the_default_test_ca_and_match_their_keys() -> None:
    for suite in CryptoSuite:
        keys = HanKeyMaterial(1, suite=suite)
        identity = keys.identity(DEVICE)
        identity.check()
        assert identity.issuer == DEFAULT_ISSUER and identity.eui64 == DEVICE
        assert identity.ca_public_key == TestCertificateAuthority.default(suite).public_key


def test_the_predicted_link_key_is_what_cbke_establishes() -> None:
    keys = HanKeyMaterial(9)
    hub = KeyEstablishmentServer(keys.identity(HUB), ephemeral_source=keys.ephemeral_source(HUB))
    device = KeyEstablishmentClient(keys.identity(DEVICE), trust_centre=HUB,
                                    ephemeral_source=keys.ephemeral_source(DEVICE))
    outbox = device.start(0.0)
    established = []
    for _ in range(10):
        sends = [a for a in outbox if isinstance(a, Send)]
        if not sends:
            break
        (send,) = sends
        frame = ke_frames.decode(ke_frames.encode(send.frame))
        outbox = hub.on_frame(0.1, DEVICE, 0x1101, frame) if send.partner == HUB else \
            device.on_frame(0.1, HUB, 0x0000, frame)
        established += [a for a in outbox if isinstance(a, Established)]
    assert len(established) == 2
    assert {e.link_key for e in established} == {keys.expected_link_key(HUB, DEVICE)}
    assert keys.expected_link_key(HUB, DEVICE, exchange=1) != keys.expected_link_key(HUB, DEVICE)
