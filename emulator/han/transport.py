"""The radio boundary: one node's access to the HAN.

Template-method style: the public :meth:`HanTransport.send` and the receive path live here, with
the trace hooks (capture, logs, fault injection); a backend implements only ``_send`` and,
if it owns resources, ``_start``/``_stop``. Everything is callback based (no ``await`` per frame),
so the same code drives a virtual fleet of thousands in virtual time and a real dongle on asyncio.
"""

from __future__ import annotations

import abc
import logging
from dataclasses import dataclass
from typing import Callable

from .packet import ApsPacket, DeliveryStatus

_LOGGER = logging.getLogger(__name__)

Receiver = Callable[[ApsPacket], None]
DeliveryCallback = Callable[[ApsPacket, DeliveryStatus], None]
TraceHook = Callable[[str, ApsPacket], None]
"""Called with ``"tx"`` or ``"rx"`` and the packet, before it is sent or handed up."""


class TransportError(Exception):
    """The transport could not be started or used (e.g. the dongle did not answer)."""


@dataclass(frozen=True, slots=True)
class RadioJoin:
    """A join the radio's own Trust Centre reported (EZSP ``trustCenterJoinHandler``)."""

    device: int
    nwk: int
    admitted: bool
    """The radio sent the device the network key (encrypted with the key the host gave it)."""
    decision: str
    """The radio's decision as it names it (``USE_PRECONFIGURED_KEY``, ``DENY_JOIN``)."""


JoinListener = Callable[[RadioJoin], None]


class HanTransport(abc.ABC):
    """A node (Comms Hub or emulated device) attached to a HAN."""

    def __init__(self, eui64: int, nwk: int) -> None:
        self.eui64 = eui64
        self.nwk = nwk
        self._receiver: Receiver | None = None
        self._hooks: list[TraceHook] | tuple[()] = ()  # a list from the first hook on (most nodes have none)

    # -- public API --------------------------------------------------------------------------
    def set_receiver(self, receiver: Receiver | None) -> None:
        """Frames addressed to this node go to ``receiver``."""
        self._receiver = receiver

    def add_trace_hook(self, hook: TraceHook) -> None:
        self._hooks = [*self._hooks, hook]

    def remove_trace_hook(self, hook: TraceHook) -> None:
        hooks = list(self._hooks)
        hooks.remove(hook)
        self._hooks = hooks

    def send(self, packet: ApsPacket, on_delivery: DeliveryCallback | None = None) -> None:
        """Send ``packet``; ``on_delivery`` later reports whether the peer acknowledged it."""
        for hook in self._hooks:
            hook("tx", packet)
        self._send(packet, on_delivery)

    def nwk_of(self, eui64: int) -> int | None:
        """The network address of a known node, or ``None``."""
        return None

    def detach(self) -> None:
        """Leave the network: a powered-off or rebooting node hears nothing. A backend whose
        medium can model that overrides this (a real radio cannot switch a device off)."""

    def reattach(self) -> None:
        """Join the network again after :meth:`detach`."""

    # -- joining (the hub as Trust Centre) -----------------------------------------------------
    def permit_join(self, device: int, link_key: bytes, period_s: float | None) -> None:
        """Let ``device`` join with ``link_key`` (its install-code key) for ``period_s`` seconds
        (None: until :meth:`end_join`). A radio whose own stack is the Trust Centre (an EZSP NCP)
        is told so; a medium that asks the hub's Trust Centre at each join (the virtual HAN) needs
        nothing here."""

    def end_join(self, device: int) -> None:
        """``device`` may no longer join (CCS02, or its JoinTimePeriod replaced)."""

    def set_join_listener(self, listener: JoinListener | None) -> None:
        """``listener(RadioJoin)`` for each join the radio's Trust Centre reports."""
        self._join_listener = listener

    _join_listener: JoinListener | None = None

    async def settle(self) -> None:
        """Return once the radio has carried out what it was told (join permissions); nothing
        to wait for on a medium without a radio stack."""

    async def start(self) -> None:
        await self._start()

    async def stop(self) -> None:
        await self._stop()

    # -- for backends ------------------------------------------------------------------------
    def _deliver(self, packet: ApsPacket) -> None:
        """A backend calls this with each frame received for this node."""
        for hook in self._hooks:
            hook("rx", packet)
        receiver = self._receiver
        if receiver is None:
            _LOGGER.debug("%016X: no receiver, frame dropped", self.eui64)
            return
        receiver(packet)

    @abc.abstractmethod
    def _send(self, packet: ApsPacket, on_delivery: DeliveryCallback | None) -> None: ...

    async def _start(self) -> None:
        return None

    async def _stop(self) -> None:
        return None
