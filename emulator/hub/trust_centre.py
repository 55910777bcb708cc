"""The Comms Hub as ZigBee Trust Centre: the CHF Device Log, joining by install code, CBKE.

A GB device may join the hub's HAN only once CCS01 (SR 8.11 Update HAN Device Log) has put its
EUI-64 and install code in the Device Log, and only inside the JoinTimePeriod; the hub then
reports the log with CS14 (alert 0x8F12). A device joins with the TC link key its install code
gives (AES-MMO), then runs Key Establishment (cluster 0x0800, crypto suite 2) with the hub as
responder; the key it gets becomes the APS link key of every OTA and Tunneling frame between them
(:class:`~emulator.han.link_security.ApsLinkSecurity` on the hub's transport). A device the hub
has not admitted cannot run CBKE: its Initiate is dropped, as a full-security Trust Centre
drops frames from a node it holds no key for.

With ``ncp`` (a radio whose NCP has the CBKE library) the Trust Centre answers with the NCP's
certificate and has the NCP make its ephemeral key and SMACs and store the link key; the host
then never holds the key (docs/cbke.md "On the radio path").
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from typing import Callable, Protocol

from emulator.eui64 import format_eui64
from emulator.han.link_security import ApsLinkSecurity
from emulator.han.packet import ApsPacket
from emulator.han.security.aes_mmo import InstallCodeError, link_key_from_install_code
from emulator.han.security.cbke import CbkeIdentity
from emulator.han.security import ke_frames
from emulator.han.security.ke_engine import (
    ComputeSmacs,
    EphemeralSource,
    Established,
    KeAction,
    KeyEstablishmentServer,
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

CS14_DEVICE_LOG_CHANGED = 0x8F12
"""GBCS alert the CHF sends after CCS01/CCS02 changed its Device Log."""


class JoinRefusal(str, enum.Enum):
    NOT_IN_DEVICE_LOG = "not_in_device_log"
    JOIN_WINDOW_CLOSED = "join_window_closed"
    WRONG_LINK_KEY = "wrong_link_key"


@dataclass(slots=True)
class DeviceLogEntry:
    """One device of the CHF Device Log and what the Trust Centre holds for it."""

    eui64: int
    install_code_key: bytes
    join_until: float | None  # clock time the install-code join window closes (None: open)
    joined: bool = False
    link_key: bytes | None = None  # from CBKE (None when the NCP computed and keeps it)
    established: bool = False  # CBKE completed (by the host or the NCP)

    def describe(self) -> dict[str, object]:
        return {"device": format_eui64(self.eui64), "joined": self.joined, "cbke": self.established}


class NcpCbke(Protocol):
    """An NCP's CBKE library as the Trust Centre drives it (``emulator.han.ezsp.ncp_cbke``)."""

    calls: list[str]

    def compute_smacs(self, partner_certificate: bytes, partner_ephemeral: bytes,
                      done: Callable[[tuple[bytes, bytes, bytes] | None, str], None]) -> None: ...

    def store_link_key(self, done: Callable[[bool, str], None]) -> None: ...


AlertSink = Callable[[int, dict[str, object]], None]
KeyListener = Callable[[int, bytes], None]


class TrustCentre:
    """The hub's Trust Centre on one HAN transport; the hub routes cluster 0x0800 here."""

    def __init__(
        self,
        eui64: int,
        transport: HanTransport,
        clock: Clock,
        bus: EventBus,
        identity: CbkeIdentity,
        *,
        security: ApsLinkSecurity,
        ephemeral_source: EphemeralSource | None = None,
        on_alert: AlertSink | None = None,
        on_link_key: KeyListener | None = None,
        next_aps: Callable[[], int] = lambda: 0,
        source: str = "comms_hub",
        ncp: NcpCbke | None = None,
        clock_epoch: float | None = None,
    ) -> None:
        """``next_aps`` is the hub node's APS counter (shared with its OTA and tunnel frames);
        ``ncp``: the NCP computes CBKE (``identity`` then holds only its certificate); ``clock_epoch``
        the UNIX time of clock second 0, to check certificates' validity dates."""
        self.eui64 = eui64
        self.transport = transport
        self.clock = clock
        self.bus = bus
        self.security = security
        self.source = source
        self.on_alert = on_alert
        self.on_link_key = on_link_key
        self.next_aps = next_aps
        self.ncp = ncp
        kwargs = {} if ephemeral_source is None or ncp is not None else {"ephemeral_source": ephemeral_source}
        self.ke = KeyEstablishmentServer(identity, external_smacs=ncp is not None, clock_epoch=clock_epoch,
                                         **kwargs)  # type: ignore[arg-type]
        self.device_log: dict[int, DeviceLogEntry] = {}
        self._timers: dict[int, Timer] = {}

    # -- CCS01 / CS14 ------------------------------------------------------------------------------
    def update_device_log(self, device: int, install_code: bytes, join_time_period_s: float | None = None,
                          *, report: bool = True) -> DeviceLogEntry:
        """CCS01: whitelist ``device`` with its install code (with CRC) for ``join_time_period_s``
        seconds from now (None: no limit). Raises ValueError for a bad install code."""
        try:
            key = link_key_from_install_code(install_code)
        except InstallCodeError as exc:
            raise ValueError(f"install code of {format_eui64(device)}: {exc}") from None
        if join_time_period_s is not None and join_time_period_s <= 0:
            raise ValueError(f"JoinTimePeriod of {format_eui64(device)} must be positive, got {join_time_period_s}")
        until = None if join_time_period_s is None else self.clock.now() + join_time_period_s
        entry = DeviceLogEntry(device, key, until)
        self.device_log[device] = entry
        self.bus.emit(self.source, "device_log_updated", device, join_time_period_s=join_time_period_s)
        if report:
            self.report_device_log()
        return entry

    def remove_from_device_log(self, device: int, *, report: bool = True) -> bool:
        """CCS02: ``device`` leaves the Device Log and loses its link key here; False if it was
        not in the log."""
        entry = self.device_log.pop(device, None)
        if entry is None:
            self.bus.emit(self.source, "device_log_refused", device, reason="not in the Device Log")
            return False
        self.security.forget(device)
        self.bus.emit(self.source, "device_log_removed", device)
        if report:
            self.report_device_log()
        return True

    def report_device_log(self) -> None:
        """CS14 (0x8F12): the Device Log as it is now, upstream and on the timeline."""
        log = [entry.describe() for entry in self.device_log.values()]
        self.bus.emit(self.source, "device_log_reported", self.eui64, alert="0x8F12", devices=len(log))
        if self.on_alert is not None:
            self.on_alert(CS14_DEVICE_LOG_CHANGED, {"device_log": [str(e["device"]) for e in log]})

    # -- joining -----------------------------------------------------------------------------------
    def admit(self, device: int, link_key: bytes) -> bool:
        """A device joins with ``link_key``: admitted only if the Device Log has it, the window is
        open and the key is its install-code key."""
        entry = self.device_log.get(device)
        refusal: JoinRefusal | None = None
        if entry is None:
            refusal = JoinRefusal.NOT_IN_DEVICE_LOG
        elif entry.join_until is not None and self.clock.now() > entry.join_until and not entry.joined:
            refusal = JoinRefusal.JOIN_WINDOW_CLOSED
        elif link_key != entry.install_code_key and link_key != entry.link_key:
            refusal = JoinRefusal.WRONG_LINK_KEY
        if refusal is not None or entry is None:
            self.bus.emit(self.source, "join_refused", device, reason=refusal.value if refusal else "")
            return False
        entry.joined = True
        self.bus.emit(self.source, "device_joined", device)
        return True

    def joined_through_ncp(self, device: int) -> None:
        """``device`` joined through the radio's own Trust Centre (a bench NCP admitted it with
        its install code: ``bellows permit-with-key``), which the host does not see."""
        entry = self.device_log.get(device)
        if entry is not None and not entry.joined:
            entry.joined = True
            self.bus.emit(self.source, "device_joined", device, through="ncp")

    # -- Key Establishment ------------------------------------------------------------------------
    def receive(self, packet: ApsPacket) -> None:
        """A cluster 0x0800 frame from the HAN."""
        entry = self.device_log.get(packet.src)
        if entry is None or not entry.joined:
            self.bus.emit(self.source, "cbke_refused", packet.src, reason="device has not joined this Trust Centre")
            return
        now = self.clock.now()
        try:
            frame = ke_frames.decode(packet.payload)
        except ke_frames.KeFrameError as exc:
            self._execute(self.ke.on_malformed(now, packet.src, packet.src_nwk, packet.payload, str(exc)))
            return
        self._execute(self.ke.on_frame(now, packet.src, packet.src_nwk, frame))

    def _execute(self, actions: list[KeAction]) -> None:
        if self.ncp is not None and any(isinstance(a, Established) for a in actions):
            # The NCP stores the key before the Confirm Key Data Response leaves, so the device's
            # first APS-encrypted frame finds it in the key table.
            def stored(ok: bool, why: str) -> None:
                self.clock.call_later(0.0, self._stored, actions, ok, why)

            self.ncp.store_link_key(stored)
            return
        for action in actions:
            if isinstance(action, Send):
                self.transport.send(ApsPacket(self.eui64, action.partner, self.transport.nwk, action.nwk,
                                              ke_frames.encode(action.frame), cluster=KEY_ESTABLISHMENT_CLUSTER,
                                              aps_counter=self.next_aps()))
            elif isinstance(action, SetTimer):
                previous = self._timers.pop(action.partner, None)
                if previous is not None:
                    previous.cancel()
                self._timers[action.partner] = self.clock.call_later(
                    action.delay, self._timer_fired, action.partner, action.kind)
            elif isinstance(action, Established):
                self._established(action)
            elif isinstance(action, ComputeSmacs):
                self._compute_on_ncp(action)
            elif isinstance(action, Terminated):
                self.bus.emit(self.source, "cbke_terminated", action.partner,
                              status=None if action.status is None else action.status.name,
                              by_partner=action.by_partner, reason=action.reason, wait_time=action.wait_time)

    def _compute_on_ncp(self, action: ComputeSmacs) -> None:
        assert self.ncp is not None
        partner = action.partner

        def done(result: tuple[bytes, bytes, bytes] | None, why: str) -> None:
            self.clock.call_later(0.0, self._smacs_computed, partner, result, why)

        self.ncp.compute_smacs(action.partner_certificate, action.partner_ephemeral, done)

    def _smacs_computed(self, partner: int, result: tuple[bytes, bytes, bytes] | None, why: str) -> None:
        now = self.clock.now()
        if result is None:
            self._execute(self.ke.on_smacs_failed(now, partner, why))
            return
        ephemeral, macu, macv = result
        self._execute(self.ke.on_smacs(now, partner, ephemeral, macu, macv))

    def _stored(self, actions: list[KeAction], ok: bool, why: str) -> None:
        if not ok:  # no Confirm Key Data Response: the device times out and tries again
            partner = next(a.partner for a in actions if isinstance(a, Established))
            self.bus.emit(self.source, "cbke_terminated", partner, status=None, by_partner=False,
                          reason=f"the NCP did not store the link key: {why}", wait_time=0)
            return
        sends = [a for a in actions if isinstance(a, Send)]
        others = [a for a in actions if not isinstance(a, Send)]
        ncp, self.ncp = self.ncp, None  # execute the rest as usual
        try:
            self._execute(sends + others)
        finally:
            self.ncp = ncp

    def _timer_fired(self, partner: int, kind: TimerKind) -> None:
        self._timers.pop(partner, None)
        self._execute(self.ke.on_timer(self.clock.now(), partner, kind))

    def _established(self, action: Established) -> None:
        timer = self._timers.pop(action.partner, None)
        if timer is not None:
            timer.cancel()
        entry = self.device_log.get(action.partner)
        if entry is not None:
            entry.link_key = action.link_key
            entry.established = True
        self.bus.emit(self.source, "cbke_established", action.partner, suite=action.suite.number,
                      computed_by="host" if action.link_key is not None else "ncp")
        if action.link_key is None:
            return  # the NCP holds the key (clearTemporaryDataMaybeStoreLinkKey283k1 stored it)
        self.security.set_key(action.partner, action.link_key)
        if self.on_link_key is not None:
            self.on_link_key(action.partner, action.link_key)
