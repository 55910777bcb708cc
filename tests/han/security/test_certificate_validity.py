"""CBKE checks the validity dates of the partner's ECQV certificate (suite 2): an expired or
not-yet-valid certificate ends the exchange with Terminate INVALID_CERTIFICATE (docs/cbke.md)."""

from __future__ import annotations

import pytest
from cbke_harness import KeHan

from emulator.han.security.cbke import CbkeIdentity
from emulator.han.security.certificates import CryptoSuite
from emulator.han.security.ke_engine import KeyEstablishmentClient, KeyEstablishmentServer
from emulator.han.security.ke_frames import KeStatus
from emulator.han.security.test_ca import TestCertificateAuthority
from emulator.runtime.clock import VirtualClock

HUB = 0x0001_0203_0405_0607
METER = 0x00DB_1234_5678_90A1
NOW = 1_767_225_600  # 2026-01-01T00:00:00Z: the engines' clock second 0
DAY = 86_400


@pytest.fixture(scope="module")
def ca() -> TestCertificateAuthority:
    return TestCertificateAuthority.default(CryptoSuite.SUITE_2)


def _run(hub: CbkeIdentity, meter: CbkeIdentity, clock_epoch: float | None = NOW) -> KeHan:
    han = KeHan(VirtualClock(), KeyEstablishmentServer(hub, clock_epoch=clock_epoch), HUB)
    han.add(KeyEstablishmentClient(meter, trust_centre=HUB, clock_epoch=clock_epoch))
    han.start(METER)
    han.clock.run()
    return han


def _terminates(han: KeHan) -> list[tuple[int, int]]:
    return [(a.sender, command.status) for a, command in han.terminates_on_air()]


def test_certificates_valid_now_complete_cbke(ca: TestCertificateAuthority) -> None:
    hub = ca.issue(HUB, valid_from=NOW - DAY, valid_to=2 * DAY)
    meter = ca.issue(METER, valid_from=NOW - DAY, valid_to=2 * DAY)
    assert set(_run(hub, meter).established()) == {HUB, METER}


@pytest.mark.parametrize("valid_from, valid_to, words", [
    (NOW - 2 * DAY, DAY, "expired at 2025-12-31T00:00:00Z"),
    (NOW - DAY, DAY, "expired at 2026-01-01T00:00:00Z"),  # ValidFrom + ValidTo is the first invalid second
    (NOW + DAY, 0xFFFFFFFF, "not valid before 2026-01-02T00:00:00Z"),
], ids=["expired", "expires-this-second", "not-yet-valid"])
def test_the_hub_refuses_a_device_certificate_outside_its_dates(ca: TestCertificateAuthority, valid_from: int,
                                                                valid_to: int, words: str) -> None:
    han = _run(ca.issue(HUB), ca.issue(METER, valid_from=valid_from, valid_to=valid_to))
    assert han.established() == {}
    assert _terminates(han) == [(HUB, KeStatus.INVALID_CERTIFICATE)]
    (ended, *_) = han.terminations()
    assert ended.side == HUB and words in ended.action.reason


def test_the_device_refuses_an_expired_hub_certificate(ca: TestCertificateAuthority) -> None:
    han = _run(ca.issue(HUB, valid_from=NOW - 2 * DAY, valid_to=DAY), ca.issue(METER))
    assert han.established() == {}
    assert _terminates(han) == [(METER, KeStatus.INVALID_CERTIFICATE)]


def test_without_a_time_base_the_dates_are_not_checked(ca: TestCertificateAuthority) -> None:
    expired = ca.issue(METER, valid_from=NOW - 2 * DAY, valid_to=DAY)
    assert set(_run(ca.issue(HUB), expired, clock_epoch=None).established()) == {HUB, METER}


def test_suite_1_certificates_carry_no_dates() -> None:
    ca1 = TestCertificateAuthority.default(CryptoSuite.SUITE_1)
    assert set(_run(ca1.issue(HUB), ca1.issue(METER)).established()) == {HUB, METER}
