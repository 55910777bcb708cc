"""The dongle emulator's Trust Centre on its own, in virtual time: the join window permitJoining
opens, the TC policy's bits and the transient key table with its timeout decide each join."""

from __future__ import annotations

import bellows.types as t

from emulator.han.ezsp.dongle import WELL_KNOWN_TC_LINK_KEY
from emulator.han.ezsp.ncp_trust_centre import (
    ALLOW_JOINS,
    JOINS_USE_INSTALL_CODE_KEY,
    SEND_KEY_IN_CLEAR,
    WILDCARD_EUI64,
    JoinOutcome,
    NcpTrustCentre,
)
from emulator.runtime.clock import VirtualClock

DEVICE = 0x00DB123456789001
OTHER = 0x00DB123456789002
INSTALL_CODE_KEY = bytes(range(16))
INSTALL_CODE_ONLY = ALLOW_JOINS | JOINS_USE_INSTALL_CODE_KEY


def tc(clock: VirtualClock, policy: int = INSTALL_CODE_ONLY) -> NcpTrustCentre:
    centre = NcpTrustCentre(clock)
    centre.set_policy(t.EzspPolicyId.TRUST_CENTER_POLICY, policy)
    return centre


def test_the_join_window_closes_after_its_duration() -> None:
    clock = VirtualClock()
    centre = tc(clock)
    centre.add_transient_key(DEVICE, INSTALL_CODE_KEY)
    assert centre.decide(DEVICE, INSTALL_CODE_KEY, WELL_KNOWN_TC_LINK_KEY).outcome is JoinOutcome.WINDOW_CLOSED
    centre.permit_joining(60)
    clock.run(until=59.0)
    verdict = centre.decide(DEVICE, INSTALL_CODE_KEY, WELL_KNOWN_TC_LINK_KEY)
    assert verdict.outcome is JoinOutcome.ADMITTED
    assert verdict.decision == t.EmberJoinDecision.USE_PRECONFIGURED_KEY
    clock.run(until=61.0)
    closed = centre.decide(DEVICE, INSTALL_CODE_KEY, WELL_KNOWN_TC_LINK_KEY)
    assert closed.outcome is JoinOutcome.WINDOW_CLOSED and closed.decision is None  # the host hears nothing
    centre.permit_joining(0xFF)  # until closed
    clock.run(until=10_000.0)
    centre.add_transient_key(DEVICE, INSTALL_CODE_KEY)
    assert centre.decide(DEVICE, INSTALL_CODE_KEY, WELL_KNOWN_TC_LINK_KEY).on_network
    centre.permit_joining(0)
    assert centre.decide(DEVICE, INSTALL_CODE_KEY, WELL_KNOWN_TC_LINK_KEY).outcome is JoinOutcome.WINDOW_CLOSED


def test_install_code_policy_denies_a_device_without_a_transient_key_and_the_key_times_out() -> None:
    clock = VirtualClock()
    centre = tc(clock)
    centre.permit_joining(0xFF)
    centre.add_transient_key(DEVICE, INSTALL_CODE_KEY)
    denied = centre.decide(OTHER, INSTALL_CODE_KEY, WELL_KNOWN_TC_LINK_KEY)
    assert (denied.outcome, denied.decision) == (JoinOutcome.DENIED, t.EmberJoinDecision.DENY_JOIN)
    # The well-known key does not get a device in either, transient key or not.
    assert centre.decide(OTHER, WELL_KNOWN_TC_LINK_KEY, WELL_KNOWN_TC_LINK_KEY).outcome is JoinOutcome.DENIED
    wrong = centre.decide(DEVICE, WELL_KNOWN_TC_LINK_KEY, WELL_KNOWN_TC_LINK_KEY)
    assert (wrong.outcome, wrong.decision) == (JoinOutcome.KEY_MISMATCH, t.EmberJoinDecision.USE_PRECONFIGURED_KEY)
    # CONFIG_TRANSIENT_KEY_TIMEOUT_S (300 s by default): the key is gone afterwards.
    clock.run(until=301.0)
    assert centre.decide(DEVICE, INSTALL_CODE_KEY, WELL_KNOWN_TC_LINK_KEY).outcome is JoinOutcome.DENIED


def test_bellows_default_policy_lets_the_well_known_key_in_and_the_wildcard_key_serves_anyone() -> None:
    """Why the hub sets the install-code-only policy: with bellows' start-up policy
    (ALLOW_PRECONFIGURED_KEY_JOINS, the ALLOW_JOINS bit) a ZigBeeAlliance09 device joins."""
    clock = VirtualClock()
    centre = tc(clock, ALLOW_JOINS)
    centre.permit_joining(60)
    assert centre.decide(OTHER, WELL_KNOWN_TC_LINK_KEY, WELL_KNOWN_TC_LINK_KEY).on_network
    centre.add_transient_key(WILDCARD_EUI64, INSTALL_CODE_KEY)
    assert centre.decide(OTHER, INSTALL_CODE_KEY, WELL_KNOWN_TC_LINK_KEY).on_network
    assert not centre.decide(OTHER, WELL_KNOWN_TC_LINK_KEY, WELL_KNOWN_TC_LINK_KEY).on_network
    clear = tc(clock, ALLOW_JOINS | SEND_KEY_IN_CLEAR)
    clear.permit_joining(60)
    verdict = clear.decide(OTHER, bytes(16), WELL_KNOWN_TC_LINK_KEY)
    assert verdict.on_network and verdict.decision == t.EmberJoinDecision.SEND_KEY_IN_THE_CLEAR
    closed = tc(clock, 0)  # ALLOW_JOINS clear
    closed.permit_joining(60)
    assert closed.decide(DEVICE, WELL_KNOWN_TC_LINK_KEY, WELL_KNOWN_TC_LINK_KEY).decision == \
        t.EmberJoinDecision.DENY_JOIN
