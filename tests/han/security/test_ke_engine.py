"""Initiator (device) against responder (hub / Trust Centre) over encoded frames in virtual time:
an agreed link key on both suites, and every Terminate status where the spec calls for it."""

from __future__ import annotations

from typing import Callable

import pytest
from cbke_harness import KeHan

from emulator.han.security import ke_frames
from emulator.han.security.cbke import CbkeIdentity
from emulator.han.security.certificates import CryptoSuite
from emulator.han.security.ke_engine import (
    DEFAULT_GENERATE_TIME_S,
    TIMEOUT_MARGIN_S,
    KeyEstablishmentClient,
    KeyEstablishmentServer,
)
from emulator.han.security.ke_frames import (
    ConfirmKeyDataRequest,
    ConfirmKeyDataResponse,
    EphemeralDataRequest,
    EphemeralDataResponse,
    InitiateKeyEstablishmentRequest,
    InitiateKeyEstablishmentResponse,
    KeFrame,
    KeStatus,
    TerminateKeyEstablishment,
)
from emulator.han.security.test_ca import TestCertificateAuthority
from emulator.runtime.clock import VirtualClock

HUB = 0x0001_0203_0405_0607
METER = 0x00DB_1234_5678_90A1
PPMID = 0x00DB_1234_5678_90A2

Identities = dict[str, CbkeIdentity]


@pytest.fixture(scope="module", params=[CryptoSuite.SUITE_1, CryptoSuite.SUITE_2], ids=["suite1", "suite2"])
def ids(request: pytest.FixtureRequest) -> Identities:
    suite = request.param
    ca = TestCertificateAuthority.default(suite)
    rogue = TestCertificateAuthority.generate(suite, b"ROGUE-CA")
    return {"hub": ca.issue(HUB), "meter": ca.issue(METER), "ppmid": ca.issue(PPMID),
            "rogue_meter": rogue.issue(METER), "rogue_hub": rogue.issue(HUB)}


@pytest.fixture(scope="module")
def suite2_ids() -> Identities:
    ca = TestCertificateAuthority.default(CryptoSuite.SUITE_2)
    return {"hub": ca.issue(HUB), "meter": ca.issue(METER)}


def _han(hub: CbkeIdentity, *devices: CbkeIdentity, manipulate: Callable[[int, bytes], bytes | None] | None = None,
         ) -> KeHan:
    han = KeHan(VirtualClock(), KeyEstablishmentServer(hub), HUB, manipulate=manipulate)
    for device in devices:
        han.add(KeyEstablishmentClient(device, trust_centre=HUB))
    return han


def _commands(han: KeHan) -> list[type]:
    return [type(a.frame.command) for a in han.air]


def _terminate_sent(han: KeHan) -> list[tuple[int, int]]:
    return [(a.sender, command.status) for a, command in han.terminates_on_air()]


def _editing(command: type, edit: Callable[[bytes], bytes]) -> Callable[[int, bytes], bytes | None]:
    """A manipulator that rewrites the payload of the first ``command`` frame on the air."""
    done: list[bool] = []

    def manipulate(sender: int, raw: bytes) -> bytes | None:
        if not done and type(ke_frames.decode(raw).command) is command:
            done.append(True)
            return raw[:3] + edit(raw[3:])
        return raw

    return manipulate


# -- the good path ---------------------------------------------------------------------------------

def test_device_and_hub_agree_on_a_link_key(ids: Identities) -> None:
    han = _han(ids["hub"], ids["meter"])
    han.start(METER)
    han.clock.run()
    keys = han.established()
    assert set(keys) == {HUB, METER}
    assert keys[HUB] == keys[METER] and len(keys[HUB]) == 16
    assert han.terminations() == []  # the step timers that fire later find nothing to time out
    assert _commands(han) == [InitiateKeyEstablishmentRequest, InitiateKeyEstablishmentResponse,
                              EphemeralDataRequest, EphemeralDataResponse,
                              ConfirmKeyDataRequest, ConfirmKeyDataResponse]
    suite = ids["hub"].suite
    initiate = han.air[0]
    assert len(initiate.raw) == 3 + 4 + suite.certificate_length  # 55 (suite 1) or 81 octets
    assert isinstance(initiate.frame.command, InitiateKeyEstablishmentRequest)
    assert initiate.frame.command.suite == suite
    ephemeral = han.air[2].frame.command
    assert isinstance(ephemeral, EphemeralDataRequest)
    assert len(ephemeral.ephemeral_data) == suite.curve.point_length
    assert han.server.partner is None and han.clients[METER].link_key == keys[METER]


def test_each_exchange_gives_a_fresh_key(suite2_ids: Identities) -> None:
    first, second = _han(suite2_ids["hub"], suite2_ids["meter"]), _han(suite2_ids["hub"], suite2_ids["meter"])
    for han in (first, second):
        han.start(METER)
        han.clock.run()
    assert first.established()[METER] != second.established()[METER]


def test_aps_duplicates_are_answered_once(suite2_ids: Identities) -> None:
    def duplicate(sender: int, raw: bytes) -> bytes | None:
        if type(ke_frames.decode(raw).command) is EphemeralDataRequest and not sent:
            sent.append(raw)
            han.clock.call_later(0.01, han._transmit, sender, HUB, raw)
        return raw

    sent: list[bytes] = []
    han = _han(suite2_ids["hub"], suite2_ids["meter"], manipulate=duplicate)
    han.start(METER)
    han.clock.run()
    assert _commands(han).count(EphemeralDataRequest) == 2
    assert _commands(han).count(EphemeralDataResponse) == 1
    assert set(han.established()) == {HUB, METER}


# -- certificates the other side must refuse --------------------------------------------------------

def test_device_certificate_from_another_ca_gets_unknown_issuer(ids: Identities) -> None:
    han = _han(ids["hub"], ids["rogue_meter"])
    han.start(METER)
    han.clock.run()
    assert han.established() == {}
    assert _terminate_sent(han) == [(HUB, KeStatus.UNKNOWN_ISSUER)]
    (device_side,) = [o.action for o in han.terminations() if o.side == METER]
    assert device_side.by_partner and device_side.status is KeStatus.UNKNOWN_ISSUER


def test_device_refuses_a_hub_certificate_from_another_ca(ids: Identities) -> None:
    rogue_cert = ids["rogue_hub"].certificate.encode()
    han = _han(ids["hub"], ids["meter"],
               manipulate=_editing(InitiateKeyEstablishmentResponse, lambda payload: payload[:4] + rogue_cert))
    han.start(METER)
    han.clock.run()
    assert han.established() == {}
    assert _terminate_sent(han) == [(METER, KeStatus.UNKNOWN_ISSUER)]
    assert {(o.side, o.action.by_partner) for o in han.terminations()} == {(METER, False), (HUB, True)}
    assert han.server.partner is None


def _flip_reconstruction_x(suite: CryptoSuite) -> Callable[[bytes], bytes]:
    start = 4 if suite is CryptoSuite.SUITE_1 else 4 + 37
    curve = suite.curve

    def edit(payload: bytes) -> bytes:
        cert = bytearray(payload[4:])
        point = cert[start - 4:start - 4 + curve.point_length]
        for delta in range(1, 256):  # the first x nearby with no point on the curve
            candidate = bytes([point[0]]) + curve.field.to_bytes(curve.field.from_bytes(bytes(point[1:])) ^ delta)
            try:
                curve.decompress(candidate)
            except ValueError:
                cert[start - 4:start - 4 + curve.point_length] = candidate
                return payload[:4] + bytes(cert)
        raise AssertionError("no invalid x found")

    return edit


def test_certificate_whose_reconstruction_point_is_off_the_curve_gets_bad_message(ids: Identities) -> None:
    suite = ids["hub"].suite
    han = _han(ids["hub"], ids["meter"],
               manipulate=_editing(InitiateKeyEstablishmentRequest, _flip_reconstruction_x(suite)))
    han.start(METER)
    han.clock.run()
    assert _terminate_sent(han) == [(HUB, KeStatus.BAD_MESSAGE)]
    assert "public_reconstruction_key" in [o.action for o in han.terminations() if o.side == HUB][0].reason


def test_certificate_for_another_device_gets_bad_message(ids: Identities) -> None:
    """The PPMID presents the meter's certificate: its subject is not the sender."""
    han = _han(ids["hub"], ids["ppmid"])
    meter_cert = ids["meter"].certificate.encode()
    han.inject(PPMID, KeFrame(1, True, InitiateKeyEstablishmentRequest(ids["hub"].suite, 10, 10, meter_cert)))
    han.clock.run()
    assert _terminate_sent(han) == [(HUB, KeStatus.BAD_MESSAGE)]
    assert "subject" in han.terminations()[0].action.reason


def test_truncated_certificate_gets_bad_message(ids: Identities) -> None:
    han = _han(ids["hub"], ids["meter"], manipulate=_editing(InitiateKeyEstablishmentRequest, lambda p: p[:-1]))
    han.start(METER)
    han.clock.run()
    assert len(han.malformed) == 1
    assert _terminate_sent(han) == [(HUB, KeStatus.BAD_MESSAGE)]
    (hub_side,) = [o.action for o in han.terminations() if o.side == HUB]
    assert "identity at offset 7" in hub_side.reason


def test_device_terminates_on_a_malformed_response(suite2_ids: Identities) -> None:
    han = _han(suite2_ids["hub"], suite2_ids["meter"],
               manipulate=_editing(EphemeralDataResponse, lambda p: p + b"\x00"))
    han.start(METER)
    han.clock.run()
    assert _terminate_sent(han) == [(METER, KeStatus.BAD_MESSAGE)]
    assert han.established() == {}


def test_hub_reports_its_suite_in_the_key_establishment_suite_attribute(ids: Identities) -> None:
    server = KeyEstablishmentServer(ids["hub"])
    assert server.attributes() == {0x0000: 0x0001 if ids["hub"].suite is CryptoSuite.SUITE_1 else 0x0002}


def test_tampered_certificate_fields_end_in_bad_key_confirm(suite2_ids: Identities) -> None:
    """ECQV certificates carry no signature: a changed serial gives another public key, which
    only the key confirmation exposes."""
    def edit(payload: bytes) -> bytes:
        return payload[:5] + bytes([payload[5] ^ 0x01]) + payload[6:]  # certificate offset 1: serial

    han = _han(suite2_ids["hub"], suite2_ids["meter"], manipulate=_editing(InitiateKeyEstablishmentRequest, edit))
    han.start(METER)
    han.clock.run()
    assert han.established() == {}
    assert _terminate_sent(han) == [(HUB, KeStatus.BAD_KEY_CONFIRM)]


def test_suite_1_device_at_a_suite_2_hub_gets_unsupported_suite(suite2_ids: Identities) -> None:
    device = TestCertificateAuthority.default(CryptoSuite.SUITE_1).issue(METER)
    han = _han(suite2_ids["hub"], device)
    han.start(METER)
    han.clock.run()
    assert _terminate_sent(han) == [(HUB, KeStatus.UNSUPPORTED_SUITE)]
    terminate = [a.frame.command for a in han.air if isinstance(a.frame.command, TerminateKeyEstablishment)][0]
    assert terminate.suite == CryptoSuite.SUITE_2  # the hub says what it supports


# -- key confirmation -------------------------------------------------------------------------------

def _flip_first_octet(payload: bytes) -> bytes:
    return bytes([payload[0] ^ 0x80]) + payload[1:]


def test_wrong_macu_gets_bad_key_confirm(ids: Identities) -> None:
    han = _han(ids["hub"], ids["meter"], manipulate=_editing(ConfirmKeyDataRequest, _flip_first_octet))
    han.start(METER)
    han.clock.run()
    assert han.established() == {}
    assert _terminate_sent(han) == [(HUB, KeStatus.BAD_KEY_CONFIRM)]
    assert [(o.side, o.action.status) for o in han.terminations()] == [
        (HUB, KeStatus.BAD_KEY_CONFIRM), (METER, KeStatus.BAD_KEY_CONFIRM)]


def test_wrong_macv_makes_the_device_terminate_with_bad_key_confirm(ids: Identities) -> None:
    han = _han(ids["hub"], ids["meter"], manipulate=_editing(ConfirmKeyDataResponse, _flip_first_octet))
    han.start(METER)
    han.clock.run()
    # The hub had confirmed MACU and stored the key; the device refuses and tells it so.
    assert set(han.established()) == {HUB}
    assert _terminate_sent(han) == [(METER, KeStatus.BAD_KEY_CONFIRM)]


def test_confirm_without_initiate_gets_bad_message(suite2_ids: Identities) -> None:
    han = _han(suite2_ids["hub"])
    han.inject(METER, KeFrame(9, True, ConfirmKeyDataRequest(bytes(16))))
    han.clock.run()
    assert _terminate_sent(han) == [(HUB, KeStatus.BAD_MESSAGE)]


# -- one partner at a time, back-off and timeouts ----------------------------------------------------

def test_second_device_is_told_to_wait_then_succeeds(ids: Identities) -> None:
    han = _han(ids["hub"], ids["meter"], ids["ppmid"])
    han.start(METER)
    han.start(PPMID, at=0.06)  # arrives while the meter's exchange is under way
    han.clock.run()
    keys = han.established()
    assert set(keys) == {HUB, METER, PPMID}
    assert keys[METER] != keys[PPMID]
    busy = han.terminates_on_air()
    assert [(command.status, command.wait_time > 0) for _, command in busy] == [(KeStatus.NO_RESOURCES, True)]
    retry_at = [a.time for a in han.air if a.sender == PPMID
                and isinstance(a.frame.command, InitiateKeyEstablishmentRequest)]
    assert len(retry_at) == 2
    air, command = busy[0]
    assert retry_at[1] - air.time == pytest.approx(command.wait_time + han.delay, abs=1e-6)


def test_responder_times_out_a_silent_partner_and_serves_the_next(suite2_ids: Identities) -> None:
    def drop_ephemeral(sender: int, raw: bytes) -> bytes | None:
        return None if type(ke_frames.decode(raw).command) is EphemeralDataRequest else raw

    han = _han(suite2_ids["hub"], suite2_ids["meter"], manipulate=drop_ephemeral)
    han.start(METER)
    han.clock.run()
    hub_side = [o for o in han.terminations() if o.side == HUB]
    assert [o.action.status for o in hub_side] == [None]
    responded_at = [a.time for a in han.air if isinstance(a.frame.command, InitiateKeyEstablishmentResponse)][0]
    assert hub_side[0].time == pytest.approx(responded_at + TIMEOUT_MARGIN_S + DEFAULT_GENERATE_TIME_S)
    assert [o.action.status for o in han.terminations() if o.side == METER] == [None]
    assert han.server.partner is None
