"""APS fragmentation on the virtual HAN: one long unicast sent block by block, window 1.

A :class:`~emulator.han.virtual.VirtualPort` hands a unicast whose APS payload does not fit one
frame to a :class:`BlockSender`: the message is split by :mod:`emulator.han.aps_fragmentation`
(61-octet blocks, the extended header, one APS counter) and each block goes on the air as a
frame of its own (its airtime, loss draw, APS acknowledgement and APS retries are the radio
model's, as for any unicast). The next block goes when the sender hears the previous one's APS
acknowledgement; a block whose retries are exhausted ends the message: the sender's delivery
report says FAILED, as EmberZNet's messageSent does, and the HAN reports a
:class:`FragmentedDelivery` saying which block failed. The receiving port reassembles
(:class:`~emulator.han.aps_fragmentation.Reassembler`) and hands up the whole message.
"""

from __future__ import annotations

import logging
from typing import Callable, NamedTuple

from .aps_fragmentation import Fragment, block_packet
from .packet import ApsPacket, DeliveryStatus
from .transport import DeliveryCallback

_LOGGER = logging.getLogger(__name__)


class FragmentedDelivery(NamedTuple):
    """What happened to one fragmented unicast, as its sender saw it: ``acknowledged`` of its
    ``blocks`` blocks were APS-acknowledged, from ``started`` to ``ended`` (virtual seconds)."""

    src: int
    dst: int
    cluster: int
    aps_counter: int
    length: int  # APS payload octets of the whole message
    blocks: int
    acknowledged: int
    started: float
    ended: float

    @property
    def delivered(self) -> bool:
        return self.acknowledged == self.blocks

    @property
    def failed_block(self) -> int | None:
        """The 0-based number of the block whose retries ran out, or None when delivered."""
        return None if self.delivered else self.acknowledged


FragmentListener = Callable[[FragmentedDelivery], None]
BlockTransmit = Callable[[ApsPacket, DeliveryCallback], None]


class BlockSender:
    """Sends the blocks of one message, one at a time (window 1)."""

    __slots__ = ("message", "fragments", "acknowledged", "started", "_transmit", "_on_delivery", "_now", "_report")

    def __init__(self, message: ApsPacket, fragments: list[Fragment], transmit: BlockTransmit,
                 on_delivery: DeliveryCallback | None, now: Callable[[], float],
                 report: FragmentListener) -> None:
        self.message = message
        self.fragments = fragments
        self.acknowledged = 0
        self._transmit = transmit
        self._on_delivery = on_delivery
        self._now = now
        self._report = report
        self.started = now()

    def start(self) -> None:
        self._send_next()

    def _send_next(self) -> None:
        self._transmit(block_packet(self.message, self.fragments[self.acknowledged]), self._block_sent)

    def _block_sent(self, _block: ApsPacket, status: DeliveryStatus) -> None:
        if status is DeliveryStatus.DELIVERED:
            self.acknowledged += 1
            if self.acknowledged < len(self.fragments):
                self._send_next()
                return
        else:
            _LOGGER.debug("%016X -> %016X: APS block %d/%d of counter %d not acknowledged, message failed",
                          self.message.src, self.message.dst, self.acknowledged + 1, len(self.fragments),
                          self.message.aps_counter)
        message = self.message
        self._report(FragmentedDelivery(message.src, message.dst, message.cluster, message.aps_counter,
                                        len(message.payload), len(self.fragments), self.acknowledged,
                                        self.started, self._now()))
        if self._on_delivery is not None:
            self._on_delivery(message, status)
