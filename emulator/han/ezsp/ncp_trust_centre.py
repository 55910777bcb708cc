"""The Trust Centre of an EmberZNet NCP acting as coordinator: join window, TC policy, transient keys.

What the dongle's own stack decides when a device asks to join, from what the host set up:

- ``permitJoining(duration)`` opens the MAC join window for ``duration`` seconds (0 closes it,
  0xFF leaves it open until closed, as EmberZNet accepts it). While it is closed the coordinator's
  beacons say "not permitting" and an association is refused at the MAC layer: the Trust Centre
  never hears of the device, so the host sees nothing.
- ``setPolicy(TRUST_CENTER_POLICY, bitmask)`` (EzspDecisionBitmask): ALLOW_JOINS clear denies
  every join; JOINS_USE_INSTALL_CODE_KEY requires a transient key for the joining EUI-64 (else
  the join is denied); SEND_KEY_IN_CLEAR sends the network key unencrypted.
- ``addTransientLinkKey`` (EZSP 8-12, 0x00AF) / ``importTransientKey`` (EZSP 13+, 0x0111) put a
  key for one EUI-64 (or the wildcard FF..FF) in the transient key table, where it stays for
  CONFIG_TRANSIENT_KEY_TIMEOUT_S (300 s by default); ``clearTransientLinkKeys`` (0x006B) empties it.

A join inside the window is reported with ``trustCenterJoinHandler`` (status
STANDARD_SECURITY_UNSECURED_JOIN and the decision: USE_PRECONFIGURED_KEY, SEND_KEY_IN_THE_CLEAR
or DENY_JOIN). The network key then goes to the device in a Transport Key encrypted with the
key the Trust Centre chose: a device holding another key cannot decrypt it and never gets on the
network, although the NCP has already reported the join (a real NCP does not learn that either;
the device just stays silent). All of this is per boot: an NCP reset forgets it, as RAM does.
"""

from __future__ import annotations

import enum
import logging
import math
from dataclasses import dataclass, field

import bellows.types as t

from emulator.runtime.clock import Clock

_LOGGER = logging.getLogger(__name__)

WILDCARD_EUI64 = 0xFFFFFFFFFFFFFFFF
DEFAULT_TRANSIENT_KEY_TIMEOUT_S = 300
"""EmberZNet's default CONFIG_TRANSIENT_KEY_TIMEOUT_S."""
TRANSIENT_KEY_TABLE_SIZE = 16
PERMIT_JOIN_FOREVER = 0xFF
NO_KEY_TABLE_ENTRY = 0xFF

ALLOW_JOINS = int(t.EzspDecisionBitmask.ALLOW_JOINS)
SEND_KEY_IN_CLEAR = int(t.EzspDecisionBitmask.SEND_KEY_IN_CLEAR)
JOINS_USE_INSTALL_CODE_KEY = int(t.EzspDecisionBitmask.JOINS_USE_INSTALL_CODE_KEY)
DEFAULT_TC_POLICY = ALLOW_JOINS
"""A fresh NCP admits joins with the preconfigured (global) TC link key."""


class JoinOutcome(enum.Enum):
    """What became of one join attempt on the air."""

    WINDOW_CLOSED = "window_closed"  # MAC association refused: the Trust Centre never hears of it
    DENIED = "denied"  # the TC policy denied it (reported with DENY_JOIN)
    KEY_MISMATCH = "key_mismatch"  # reported as admitted; the device cannot decrypt the network key
    ADMITTED = "admitted"  # the device has the network key


@dataclass(frozen=True, slots=True)
class JoinVerdict:
    outcome: JoinOutcome
    decision: t.EmberJoinDecision | None  # what trustCenterJoinHandler reports; None: not reported

    @property
    def on_network(self) -> bool:
        return self.outcome is JoinOutcome.ADMITTED


@dataclass
class NcpTrustCentre:
    """One boot's Trust Centre state; the session's handlers set it, the air side asks it."""

    clock: Clock
    tc_policy: int = DEFAULT_TC_POLICY
    policies: dict[int, int] = field(default_factory=dict)
    permit_until: float = -math.inf
    transient_keys: dict[int, tuple[bytes, float]] = field(default_factory=dict)
    """EUI-64 -> (key, clock time it was added)."""
    transient_key_timeout_s: float = DEFAULT_TRANSIENT_KEY_TIMEOUT_S

    # -- what the host sets ------------------------------------------------------------------
    def permit_joining(self, duration: int) -> None:
        now = self.clock.now()
        if duration == PERMIT_JOIN_FOREVER:
            self.permit_until = math.inf
        else:
            self.permit_until = now + duration if duration else -math.inf
        _LOGGER.info("NCP: join window %s", "closed" if duration == 0 else
                     "open until closed" if duration == PERMIT_JOIN_FOREVER else f"open for {duration} s")

    def set_policy(self, policy: int, decision: int) -> None:
        self.policies[policy] = decision
        if policy == t.EzspPolicyId.TRUST_CENTER_POLICY:
            self.tc_policy = decision

    def policy(self, policy: int) -> int:
        if policy == t.EzspPolicyId.TRUST_CENTER_POLICY:
            return self.tc_policy
        return self.policies.get(policy, 0)

    def add_transient_key(self, eui64: int, key: bytes) -> bool:
        """False when the table is full (the entry for ``eui64`` is replaced, never doubled)."""
        self._expire()
        if eui64 not in self.transient_keys and len(self.transient_keys) >= TRANSIENT_KEY_TABLE_SIZE:
            return False
        self.transient_keys[eui64] = (bytes(key), self.clock.now())
        return True

    def clear_transient_keys(self) -> None:
        self.transient_keys.clear()

    # -- what the air side asks ---------------------------------------------------------------
    @property
    def permitting(self) -> bool:
        return self.clock.now() < self.permit_until

    def transient_key(self, eui64: int) -> bytes | None:
        self._expire()
        entry = self.transient_keys.get(eui64) or self.transient_keys.get(WILDCARD_EUI64)
        return None if entry is None else entry[0]

    def decide(self, eui64: int, device_key: bytes, preconfigured_key: bytes) -> JoinVerdict:
        """A device associates holding ``device_key``: what the stack does with it."""
        if not self.permitting:
            return JoinVerdict(JoinOutcome.WINDOW_CLOSED, None)
        policy = self.tc_policy
        if not policy & ALLOW_JOINS:
            return JoinVerdict(JoinOutcome.DENIED, t.EmberJoinDecision.DENY_JOIN)
        if policy & SEND_KEY_IN_CLEAR:
            return JoinVerdict(JoinOutcome.ADMITTED, t.EmberJoinDecision.SEND_KEY_IN_THE_CLEAR)
        key = self.transient_key(eui64)
        if key is None:
            if policy & JOINS_USE_INSTALL_CODE_KEY:
                return JoinVerdict(JoinOutcome.DENIED, t.EmberJoinDecision.DENY_JOIN)
            key = preconfigured_key
        outcome = JoinOutcome.ADMITTED if device_key == key else JoinOutcome.KEY_MISMATCH
        return JoinVerdict(outcome, t.EmberJoinDecision.USE_PRECONFIGURED_KEY)

    def _expire(self) -> None:
        cutoff = self.clock.now() - self.transient_key_timeout_s
        for eui64 in [e for e, (_, added) in self.transient_keys.items() if added <= cutoff]:
            del self.transient_keys[eui64]
