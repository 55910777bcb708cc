"""An in-process HAN medium: one per premises, owned by whoever builds the premises.

It models what the OTA layers can notice: per-frame latency, random loss, delivery confirmation
(the sender's APS acknowledgement) and a manipulator hook that can drop, delay or corrupt a frame.
By itself it does not model MAC contention, routing or security; see docs/ota.md ("Virtual HAN").
Given a *link model* (:class:`~emulator.han.radio.RadioChannel`) it asks that model, per frame, for
airtime, contention, retries, loss and sleepy polling (docs/radio-model.md).
Time comes from the clock it is given, so a run is deterministic for a given ``seed``.
"""

from __future__ import annotations

import math
import logging
import random
from dataclasses import dataclass
from typing import Any, Callable, Final, Protocol

from emulator.runtime.clock import Clock
from emulator.runtime.records import reduce_by_init_fields

from .aps_fragmentation import ApsFragment, FragmentationError, Reassembler, split
from .fragmented_send import BlockSender, FragmentedDelivery, FragmentListener
from .link_security import ApsLinkSecurity, SecuredApsPacket
from .packet import ApsPacket, DeliveryStatus, LinkResult
from .radio import BusyPeriod, RadioParams
from .transport import DeliveryCallback, HanTransport, TraceHook

_LOGGER = logging.getLogger(__name__)

# Enum members as module constants: the compiled build (docs/fleet.md) reads a Final from a C static,
# a member through its class by a generic attribute look-up, several per frame.
_DELIVERED: Final = DeliveryStatus.DELIVERED
_FAILED: Final = DeliveryStatus.FAILED


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a manipulator decides for one frame: ``drop`` it, add ``delay`` seconds, or
    replace it with ``packet`` (corruption, rewriting)."""

    drop: bool = False
    delay: float = 0.0
    packet: ApsPacket | None = None
    confirm_lost: bool = False  # delivered, but the sender's delivery report says FAILED

    def __reduce__(self) -> tuple[Any, ...]:
        return reduce_by_init_fields(self)  # pickled and copied alike in the compiled build


Manipulator = Callable[[ApsPacket], Verdict | None]
"""Called for every frame put on the air; ``None`` lets it through unchanged."""

Admission = Callable[[int, bytes], bool]
"""The Trust Centre's answer to a node joining with a link key (EUI-64, key): admitted or not."""

DEFAULT_FRAME_PAYLOAD = RadioParams().max_aps_payload
"""APS payload octets one frame carries on a GB HAN (NWK and APS security): above it, a unicast
is sent in APS blocks. A HAN with a radio model takes the figure from the model's parameters."""

FastPath = Callable[[ApsPacket, DeliveryCallback | None], bool]
"""Offered each unicast before it goes on the air; ``True``: it took the frame (and the block
exchanges after it) over, see :mod:`emulator.ota.fastpath`."""




class LinkModel(Protocol):
    """Decides per frame when it arrives and whether the sender hears the acknowledgement."""

    def unicast(self, packet: ApsPacket, now: float) -> LinkResult: ...

    def broadcast(self, packet: ApsPacket, now: float) -> float: ...


class VirtualPort(HanTransport):
    """One node's attachment to a :class:`VirtualHan`.

    With ``security`` set (an :class:`ApsLinkSecurity`), the port APS-secures what the node sends
    and unsecures what it receives: the air carries secured frames, the node sees plain ones.
    """

    security: ApsLinkSecurity | None = None
    _reassembler: Reassembler | None = None  # made for the first block received

    def __init__(self, han: "VirtualHan", eui64: int, nwk: int) -> None:
        super().__init__(eui64, nwk)
        self._han = han
        self.attached = True

    def send(self, packet: ApsPacket, on_delivery: DeliveryCallback | None = None) -> None:
        han = self._han
        if self._hooks or self.security is not None or len(packet.payload) > han.max_frame_payload:
            super().send(packet, on_delivery)  # hooks, APS security or APS fragmentation (_send)
        else:
            han._transmit(packet, on_delivery)  # what send -> _send does for a short plain frame, one call less

    def _send(self, packet: ApsPacket, on_delivery: DeliveryCallback | None) -> None:
        han = self._han
        if (len(packet.payload) > han.max_frame_payload and not packet.is_broadcast
                and not isinstance(packet, (SecuredApsPacket, ApsFragment))):
            # APS fragmentation; a frame its node secured whole itself goes whole (send_secured splits first).
            han._fragmented(BlockSender(packet, split(packet.payload), self._send_block, on_delivery,
                                        han.clock.now, han._report_fragmented))
            return
        security = self.security
        if security is not None:
            secured = security.outgoing(packet)
            if secured is not packet:
                callback = on_delivery
                plain = packet
                on_delivery = None if callback is None else (lambda _p, status: callback(plain, status))
                packet = secured
        self._han._transmit(packet, on_delivery)

    def send_secured(self, packet: ApsPacket, secure: Callable[[ApsPacket], ApsPacket],
                     on_delivery: DeliveryCallback | None = None) -> None:
        """For a node that APS-secures frame by frame itself (the dongle emulator, asked for the
        ENCRYPTION option, with its key table): ``secure`` is applied to the frame or, for a
        message longer than one frame, to each of its APS blocks (the same fragmentation as
        :meth:`send`; the blocks' extended headers are authenticated with them)."""
        for hook in self._hooks:
            hook("tx", packet)
        han = self._han
        if len(packet.payload) > han.max_frame_payload and not packet.is_broadcast:
            def transmit(block: ApsPacket, done: DeliveryCallback) -> None:
                han._transmit(secure(block), done)

            han._fragmented(BlockSender(packet, split(packet.payload), transmit, on_delivery, han.clock.now,
                                        han._report_fragmented))
            return
        han._transmit(secure(packet), on_delivery)

    def _send_block(self, block: ApsPacket, on_delivery: DeliveryCallback) -> None:
        security = self.security
        if security is not None:
            block = security.outgoing(block)
        self._han._transmit(block, on_delivery)

    def _deliver(self, packet: ApsPacket) -> None:
        security = self.security
        if (security is None and not self._hooks and self._receiver is not None
                and not isinstance(packet, ApsFragment)):
            self._receiver(packet)  # what HanTransport._deliver does for a plain whole frame, one call less
            return
        if security is not None:
            plain = security.incoming(packet)
            if plain is None:
                return
            packet = plain
        if isinstance(packet, ApsFragment):
            if isinstance(packet, SecuredApsPacket):  # no APS layer here: the node unsecures (the dongle emulator)
                super()._deliver(packet)
                return
            whole = self.reassemble(packet)
            if whole is None:
                return
            packet = whole
        super()._deliver(packet)

    def reassemble(self, block: ApsFragment) -> ApsPacket | None:
        """The whole message once ``block`` (unsecured) completes it, else None."""
        reassembler = self._reassembler
        if reassembler is None:
            reassembler = self._reassembler = Reassembler()
        try:
            whole = reassembler.add_block(block, self._han.clock.now())
        except FragmentationError as exc:
            _LOGGER.info("%016X: APS block from %016X dropped: %s", self.eui64, block.src, exc)
            return None
        if whole is None:
            return None
        if not reassembler.pending():
            self._reassembler = None  # a fleet node receives a long message now and then: no table kept
        return ApsPacket._make((*block[:4], whole, *block[5:]))

    def join(self, link_key: bytes) -> bool:
        """Join with ``link_key`` (the install-code key): the HAN's Trust Centre decides; a node
        it refuses stays off the network (hears nothing)."""
        admission = self._han.admission
        admitted = admission is None or admission(self.eui64, link_key)
        self.attached = admitted
        return admitted

    def nwk_of(self, eui64: int) -> int | None:
        port = self._han._by_eui.get(eui64)
        return port.nwk if port is not None else None

    def detach(self) -> None:
        """Leave the network (a powered-off or rebooting device hears nothing)."""
        self.attached = False

    def reattach(self) -> None:
        self.attached = True


class VirtualHan:
    """A shared radio channel for the nodes of one premises."""

    __slots__ = ("clock", "latency", "loss", "ack_timeout", "_seed", "_rng_instance", "_by_eui", "_by_nwk", "_hooks",
                 "_manipulator", "link", "fast_path", "frames_sent", "frames_lost", "admission",
                 "max_frame_payload", "messages_fragmented", "fragmented_failed",
                 "_fragment_listeners")  # one per premises

    def __init__(
        self,
        clock: Clock,
        *,
        latency: float = 0.005,
        loss: float = 0.0,
        seed: int = 0,
        ack_timeout: float = 0.05,
        link: LinkModel | None = None,
        manipulator: Manipulator | None = None,
    ) -> None:
        if not 0.0 <= loss <= 1.0:
            raise ValueError(f"loss must be a probability in [0, 1], got {loss}")
        if latency < 0:
            raise ValueError(f"latency must not be negative, got {latency}")
        self.clock = clock
        self.latency = latency
        self.loss = loss
        self.ack_timeout = ack_timeout
        self._seed = seed
        self._rng_instance: random.Random | None = None  # made on first use: 2.5 KiB a premises
        self._by_eui: dict[int, VirtualPort] = {}
        self._by_nwk: dict[int, VirtualPort] = {}
        self._hooks: list[TraceHook] = []
        self._manipulator: Manipulator | None = manipulator
        self.link = link
        self.max_frame_payload = DEFAULT_FRAME_PAYLOAD if link is None else _frame_payload(link)
        self.messages_fragmented = 0  # unicasts sent as APS blocks
        self.fragmented_failed = 0  # ... of which a block ran out of retries
        self._fragment_listeners: list[FragmentListener] | None = None
        self.fast_path: FastPath | None = None  # installed by the composition root; never with hooks
        self.frames_sent = 0
        self.frames_lost = 0
        self.admission: Admission | None = None  # the Trust Centre's, when the HAN has one

    @property
    def _rng(self) -> random.Random:
        if self._rng_instance is None:
            self._rng_instance = random.Random(self._seed)
        return self._rng_instance

    def attach(self, eui64: int, nwk: int) -> VirtualPort:
        if eui64 in self._by_eui:
            raise ValueError(f"EUI-64 {eui64:016X} is already attached to this HAN")
        if nwk in self._by_nwk:
            raise ValueError(f"NWK address 0x{nwk:04X} is already in use on this HAN")
        port = VirtualPort(self, eui64, nwk)
        self._by_eui[eui64] = port
        self._by_nwk[nwk] = port
        return port

    def add_trace_hook(self, hook: TraceHook) -> None:
        """``hook("tx", packet)`` for every frame put on the air (capture, logs)."""
        self._hooks.append(hook)

    def set_manipulator(self, manipulator: Manipulator | None) -> None:
        self._manipulator = manipulator

    def set_admission(self, admission: Admission | None) -> None:
        """The Trust Centre that decides who may join (:meth:`VirtualPort.join`)."""
        self.admission = admission

    def set_link_model(self, link: LinkModel | None) -> None:
        """Use ``link`` (e.g. a :class:`~emulator.han.radio.RadioChannel`) for airtime and loss;
        ``None`` restores the fixed latency."""
        self.link = link
        self.max_frame_payload = _frame_payload(link)

    def add_fragment_listener(self, listener: FragmentListener) -> None:
        """``listener(FragmentedDelivery)`` when a fragmented unicast ends, delivered or not."""
        if self._fragment_listeners is None:
            self._fragment_listeners = []
        self._fragment_listeners.append(listener)

    def _fragmented(self, sender: BlockSender) -> None:
        self.messages_fragmented += 1
        sender.start()

    def _report_fragmented(self, outcome: FragmentedDelivery) -> None:
        if not outcome.delivered:
            self.fragmented_failed += 1
        for listener in self._fragment_listeners or ():
            listener(outcome)

    # -- the air -----------------------------------------------------------------------------
    def _transmit(self, packet: ApsPacket, on_delivery: DeliveryCallback | None) -> None:
        fast = self.fast_path
        if fast is not None and not self._hooks and self._manipulator is None and fast(packet, on_delivery):
            return
        self.frames_sent += 1
        for hook in self._hooks:
            hook("tx", packet)
        delay = self.latency
        confirm_lost = False
        manipulator = self._manipulator
        if manipulator is not None:
            verdict = manipulator(packet)
            if verdict is not None:
                if verdict.drop:
                    self._lose(packet, on_delivery)
                    return
                delay += verdict.delay
                confirm_lost = verdict.confirm_lost
                if verdict.packet is not None:
                    packet = verdict.packet
        call_later = self.clock.call_later
        link = self.link
        if packet.dst_nwk >= 0xFFF8:  # packet.is_broadcast
            if link is not None:
                delay += link.broadcast(packet, self.clock.now())
            for port in list(self._by_eui.values()):
                if port.eui64 != packet.src and port.attached:
                    call_later(delay, port._deliver, packet)
            if on_delivery is not None:
                call_later(delay, on_delivery, packet, _DELIVERED)
            return
        if self.loss and self._rng.random() < self.loss:
            self._lose(packet, on_delivery)
            return
        target = self._by_eui.get(packet.dst) or self._by_nwk.get(packet.dst_nwk)
        if target is None or not target.attached:
            self._lose(packet, on_delivery)
            return
        if link is None:
            status = _FAILED if confirm_lost else _DELIVERED
            call_later(delay, _arrive, target, packet, on_delivery, status)
            return
        result = link.unicast(packet, self.clock.now())
        if not result.delivered:
            self.frames_lost += 1
            if on_delivery is not None:
                call_later(delay + result.confirm_delay, on_delivery, packet, _FAILED)
            return
        ok = result.confirmed and not confirm_lost
        status = _DELIVERED if ok else _FAILED
        # The sender hears the outcome when the frame lands, not an acknowledgement airtime later:
        # half a millisecond early, for one scheduler entry a frame instead of two.
        call_later(delay + result.delay, _arrive, target, packet, on_delivery, status)

    def fast_exchanges(self, client: int, server: int, request_len: int, response_len: int, now: float,
                       count: int, horizon: float, within: float = math.inf) -> BusyPeriod:
        """For the fast path: the busy period of up to ``count`` block exchanges from a
        request sent at ``now``, delivered as :meth:`_transmit` would deliver each frame (the
        same draws, the same float arithmetic); see :meth:`RadioChannel.block_exchanges` (and
        ``within`` there)."""
        link = self.link
        if link is not None:
            period = link.block_exchanges(client, server, request_len, response_len,  # type: ignore[attr-defined]
                                          now, count, horizon, self.latency, within)
        else:
            latency = self.latency
            sent = previous_sent = last_request_at = now
            done = 0
            request_lands: float | None = None
            while True:
                landed = sent + latency
                if landed >= horizon:
                    break
                if done >= count:
                    request_lands = landed
                    break
                answered = landed + latency
                if answered >= horizon or answered >= sent + within:
                    request_lands = landed
                    break
                done += 1
                last_request_at = landed
                previous_sent, sent = sent, answered
            period = BusyPeriod(done, sent, previous_sent, last_request_at, request_lands)
        self.frames_sent += 2 * period.done + (period.request_lands is not None)
        return period

    def _lose(self, packet: ApsPacket, on_delivery: DeliveryCallback | None) -> None:
        self.frames_lost += 1
        if on_delivery is not None:
            self.clock.call_later(self.ack_timeout, on_delivery, packet, _FAILED)


def _frame_payload(link: LinkModel | None) -> int:
    params = getattr(link, "params", None)
    return params.max_aps_payload if isinstance(params, RadioParams) else DEFAULT_FRAME_PAYLOAD


def _arrive(port: VirtualPort, packet: ApsPacket, on_delivery: DeliveryCallback | None,
            status: DeliveryStatus) -> None:
    """A unicast reaches its destination and the sender hears the acknowledgement.

    One timer for both: the MAC acknowledgement follows the frame within a millisecond, and a
    fleet spends much of its time in the scheduler.
    """
    port._deliver(packet)
    if on_delivery is not None:
        on_delivery(packet, status)
