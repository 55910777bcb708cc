"""Runs the Key Establishment engines against each other in virtual time, over encoded frames.

Every frame goes through the production codec (encode, then decode at the receiver), so a test
also checks that what the engines send is what the wire carries. A ``manipulate`` hook sees each
frame on the air and may change it (bytes) or drop it (None), like the virtual HAN's hooks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Union

from emulator.han.security import ke_frames
from emulator.han.security.ke_engine import (
    Established,
    KeAction,
    KeyEstablishmentClient,
    KeyEstablishmentServer,
    Send,
    SetTimer,
    Terminated,
)
from emulator.han.security.ke_frames import TerminateKeyEstablishment
from emulator.runtime.clock import VirtualClock

HUB_NWK = 0x0000
Engine = Union[KeyEstablishmentServer, KeyEstablishmentClient]
Manipulator = Callable[[int, bytes], "bytes | None"]  # (sender EUI, ZCL bytes) -> bytes or drop


@dataclass
class Outcome:
    time: float
    side: int  # EUI-64 of the engine that reported it
    action: Union[Established, Terminated]


@dataclass
class Ended:
    time: float
    side: int
    action: Terminated


@dataclass
class Air:
    time: float
    sender: int
    frame: ke_frames.KeFrame
    raw: bytes


@dataclass
class KeHan:
    clock: VirtualClock
    server: KeyEstablishmentServer
    hub: int
    clients: dict[int, KeyEstablishmentClient] = field(default_factory=dict)
    delay: float = 0.05
    manipulate: Manipulator | None = None
    air: list[Air] = field(default_factory=list)
    malformed: list[bytes] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)

    def add(self, client: KeyEstablishmentClient) -> None:
        self.clients[client.identity.eui64] = client

    def start(self, eui64: int, at: float = 0.0) -> None:
        self.clock.call_later(at, lambda: self._carry(eui64, self.clients[eui64].start(self.clock.now())))

    def inject(self, sender: int, frame: ke_frames.KeFrame, at: float = 0.0) -> None:
        """Put a hand-made frame on the air from ``sender``."""
        self.clock.call_later(at, self._transmit, sender, self._destination(sender, frame), ke_frames.encode(frame))

    def inject_raw(self, sender: int, receiver: int, raw: bytes, at: float = 0.0) -> None:
        self.clock.call_later(at, self._transmit, sender, receiver, raw)

    def established(self) -> dict[int, bytes]:
        return {o.side: o.action.link_key for o in self.outcomes if isinstance(o.action, Established)}

    def terminations(self) -> list[Ended]:
        return [Ended(o.time, o.side, o.action) for o in self.outcomes if isinstance(o.action, Terminated)]

    def terminates_on_air(self) -> list[tuple[Air, TerminateKeyEstablishment]]:
        return [(a, a.frame.command) for a in self.air if isinstance(a.frame.command, TerminateKeyEstablishment)]

    # -- plumbing ------------------------------------------------------------------------------
    def _engine(self, eui64: int) -> Engine:
        return self.server if eui64 == self.hub else self.clients[eui64]

    def _destination(self, sender: int, frame: ke_frames.KeFrame) -> int:
        return self.hub if frame.to_server else sender

    def _carry(self, side: int, actions: list[KeAction]) -> None:
        for action in actions:
            if isinstance(action, Send):
                self._transmit(side, action.partner, ke_frames.encode(action.frame))
            elif isinstance(action, SetTimer):
                engine = self._engine(side)
                self.clock.call_later(action.delay, lambda e=engine, a=action, s=side: self._carry(
                    s, e.on_timer(self.clock.now(), a.partner, a.kind)))
            else:
                self.outcomes.append(Outcome(self.clock.now(), side, action))

    def _transmit(self, sender: int, receiver: int, raw: bytes) -> None:
        if self.manipulate is not None:
            changed = self.manipulate(sender, raw)
            if changed is None:
                return
            raw = changed
        try:
            self.air.append(Air(self.clock.now(), sender, ke_frames.decode(raw), raw))
        except ke_frames.KeFrameError:
            self.malformed.append(raw)
        self.clock.call_later(self.delay, self._deliver, sender, receiver, raw)

    def _deliver(self, sender: int, receiver: int, raw: bytes) -> None:
        if receiver != self.hub and receiver not in self.clients:
            return  # an injected frame's sender has no engine here
        engine = self._engine(receiver)
        nwk = HUB_NWK if sender == self.hub else 0x1000 + (sender & 0xFFF)
        try:
            frame = ke_frames.decode(raw)
        except ke_frames.KeFrameError as exc:
            self._carry(receiver, engine.on_malformed(self.clock.now(), sender, nwk, raw, str(exc)))
            return
        self._carry(receiver, engine.on_frame(self.clock.now(), sender, nwk, frame))
