"""A GB device's network security start-up: join by install code, then CBKE as initiator.

A real SMETS2 device joins with the TC link key of its install code, runs Key Establishment
(cluster 0x0800) with the Comms Hub, and only then talks OTA and Tunneling, APS-encrypted with
the link key CBKE gave. This host does that for an emulated device: it joins through its port
(the Trust Centre admits or refuses it), runs :class:`KeyEstablishmentClient` on the port and the
clock, installs the key in the port's :class:`ApsLinkSecurity` and tells the device to start its
OTA client. A refused join or a failed exchange is retried later, as devices do.
"""

from __future__ import annotations

import logging
from typing import Callable

from emulator.han.link_security import ApsLinkSecurity
from emulator.han.packet import ApsPacket
from emulator.han.security import ke_frames
from emulator.han.security.aes_mmo import link_key_from_install_code
from emulator.han.security.cbke import CbkeIdentity
from emulator.han.security.ke_engine import (
    EphemeralSource,
    Established,
    KeAction,
    KeyEstablishmentClient,
    Send,
    SetTimer,
    Terminated,
    TimerKind,
)
from emulator.han.security.ke_frames import KEY_ESTABLISHMENT_CLUSTER
from emulator.han.transport import HanTransport
from emulator.runtime.clock import Clock, Timer
from emulator.runtime.events import EventBus

_LOGGER = logging.getLogger(__name__)

JOIN_RETRY_S = 300.0
_SUITE2_ISSUER = slice(11, 19)  # Type(1) Serial(8) Curve(1) Hash(1) | Issuer(8) of a suite-2 certificate
"""A device the Trust Centre refused tries to join again after this long."""
CBKE_RETRY_S = 60.0
"""After a failed Key Establishment (not NO_RESOURCES, which has its own wait) the device
starts again after this long, up to :data:`MAX_CBKE_RUNS` times."""
MAX_CBKE_RUNS = 5


class DeviceKeyEstablishment:
    """Join and CBKE for one emulated device; ``on_established`` starts its OTA client."""

    def __init__(
        self,
        eui64: int,
        transport: HanTransport,
        clock: Clock,
        bus: EventBus,
        identity: CbkeIdentity,
        install_code: bytes,
        *,
        security: ApsLinkSecurity,
        trust_centre: int,
        trust_centre_nwk: int = 0x0000,
        ephemeral_source: EphemeralSource | None = None,
        next_aps: Callable[[], int] = lambda: 0,
        source: str = "device",
        clock_epoch: float | None = None,
    ) -> None:
        self.eui64 = eui64
        self.transport = transport
        self.clock = clock
        self.bus = bus
        self.security = security
        self.source = source
        self.next_aps = next_aps
        self.install_code_key = link_key_from_install_code(install_code)
        kwargs = {} if ephemeral_source is None else {"ephemeral_source": ephemeral_source}
        self.ke = KeyEstablishmentClient(identity, trust_centre=trust_centre, trust_centre_nwk=trust_centre_nwk,
                                         clock_epoch=clock_epoch, **kwargs)  # type: ignore[arg-type]
        self.joined = False
        self.runs = 0
        self.ignores_no_resources_wait = False  # a device defect (emulator.faults): retry after 1 s whatever the wait
        self.trusts_any_issuer = False  # a device defect: takes the partner's certificate whatever CA issued it
        self.send_delay_s = 0.0  # a device defect (emulator.faults): each CBKE message goes out this much later
        self.retry_s = CBKE_RETRY_S  # its back-off after a failed Key Establishment (a device's own choice)
        self._on_established: Callable[[], None] | None = None
        self._timer: Timer | None = None

    @property
    def link_key(self) -> bytes | None:
        return self.ke.link_key

    def start(self, on_established: Callable[[], None]) -> None:
        """Join, then run CBKE; ``on_established`` once the link key is in place."""
        self._on_established = on_established
        self.transport.detach()  # off the network until the Trust Centre admits it
        self._join()

    def restart(self, on_established: Callable[[], None]) -> None:
        """Leave and rejoin: the link key is forgotten, join and CBKE run again from the start."""
        self._cancel_timer()
        self.security.forget(self.ke.trust_centre)
        self.ke.link_key = None
        self.joined = False
        self.runs = 0
        self.start(on_established)

    def _join(self) -> None:
        self._timer = None
        join = getattr(self.transport, "join", None)  # a VirtualPort asks the HAN's Trust Centre
        admitted = True if join is None else bool(join(self.install_code_key))
        if not admitted:
            self.bus.emit(self.source, "join_refused", self.eui64, retry_s=JOIN_RETRY_S)
            self._timer = self.clock.call_later(JOIN_RETRY_S, self._join)
            return
        self.joined = True
        self.bus.emit(self.source, "joined", self.eui64)
        self._start_cbke()

    def _start_cbke(self) -> None:
        self._timer = None
        self.runs += 1
        self.ke.attempts = 0
        self.bus.emit(self.source, "cbke_started", self.eui64, run=self.runs)
        self._execute(self.ke.start(self.clock.now()))

    def receive(self, packet: ApsPacket) -> None:
        """A cluster 0x0800 frame for this device."""
        now = self.clock.now()
        try:
            frame = ke_frames.decode(packet.payload)
        except ke_frames.KeFrameError as exc:
            self._execute(self.ke.on_malformed(now, packet.src, packet.src_nwk, packet.payload, str(exc)))
            return
        command = frame.command
        if self.trusts_any_issuer and isinstance(command, ke_frames.InitiateKeyEstablishmentResponse):
            # The defect: no issuer check, the certificate is read as if its own CA had issued it.
            identity = bytearray(command.identity)
            identity[_SUITE2_ISSUER] = self.ke.identity.issuer
            frame = frame._replace(command=command._replace(identity=bytes(identity)))
        self._execute(self.ke.on_frame(now, packet.src, packet.src_nwk, frame))

    def _execute(self, actions: list[KeAction]) -> None:
        retry_set = False
        for action in actions:
            if isinstance(action, Send):
                packet = ApsPacket(self.eui64, action.partner, self.transport.nwk, action.nwk,
                                   ke_frames.encode(action.frame), cluster=KEY_ESTABLISHMENT_CLUSTER,
                                   aps_counter=self.next_aps())
                if self.send_delay_s > 0:
                    self.clock.call_later(self.send_delay_s, self.transport.send, packet)
                else:
                    self.transport.send(packet)
            elif isinstance(action, SetTimer):
                retry_set = retry_set or action.kind is TimerKind.RETRY
                delay = 1.0 if action.kind is TimerKind.RETRY and self.ignores_no_resources_wait else action.delay
                self._set_timer(delay, self._engine_timer, action.partner, action.kind)
            elif isinstance(action, Established):
                self._cancel_timer()
                assert action.link_key is not None  # the initiator derives its key itself
                self.security.set_key(action.partner, action.link_key)
                self.bus.emit(self.source, "cbke_established", self.eui64, suite=action.suite.number)
                if self._on_established is not None:
                    self._on_established()
            elif isinstance(action, Terminated):
                self.bus.emit(self.source, "cbke_terminated", self.eui64,
                              status=None if action.status is None else action.status.name,
                              by_partner=action.by_partner, reason=action.reason, wait_time=action.wait_time)
                if not retry_set and self.runs < MAX_CBKE_RUNS:
                    self._set_timer(self.retry_s, self._start_cbke)

    def _engine_timer(self, partner: int, kind: TimerKind) -> None:
        self._timer = None
        self._execute(self.ke.on_timer(self.clock.now(), partner, kind))

    def _set_timer(self, delay: float, callback: Callable[..., None], *args: object) -> None:
        self._cancel_timer()
        self._timer = self.clock.call_later(delay, callback, *args)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
