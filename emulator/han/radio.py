"""A radio model for the virtual HAN: what one frame costs in airtime and whether it arrives.

:class:`RadioChannel` is a *link model*: :class:`~emulator.han.virtual.VirtualHan` asks it, per
frame, when the receiver gets the frame and whether the sender hears the acknowledgement. It
models the IEEE 802.15.4 2.4 GHz PHY at 250 kbit/s with the real frame size (PHY, MAC, NWK and
APS headers with their security overhead, and the ZCL payload), unslotted CSMA-CA back-off,
MAC acknowledgement and turnaround, MAC retries, APS acknowledgements (a frame of their own, with
APS retries when one is missing), random loss with bursts (a Gilbert-Elliott channel in
continuous time) and sleepy end devices that only receive when they poll their parent.
One channel per premises: the devices of a premises share it, so their frames queue behind each
other. The formulas are in docs/radio-model.md.

Everything random comes from the channel's own ``random.Random(seed)``, so a premises gives the
same timeline whatever else runs in the same process.
"""

from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass
from typing import NamedTuple

from .aps_fragmentation import ApsFragment
from .packet import OTA_CLUSTER, ApsPacket, LinkResult

_LOGGER = logging.getLogger(__name__)

MAX_PHY_PACKET_SIZE = 127  # aMaxPHYPacketSize: the largest PSDU (MAC frame incl. FCS)

# ZCL OTA Upgrade command identifiers the channel looks at (ZCL 11.13): a client's Image Page
# Request, answered by Image Block Responses the server sends without APS acknowledgement.
_IMAGE_PAGE_REQUEST = 0x04
_IMAGE_BLOCK_RESPONSE = 0x05


@dataclass(frozen=True, slots=True)
class BurstLoss:
    """Gilbert-Elliott loss in continuous time: the channel alternates between a good and a bad
    state whose durations are exponential with the given means; a frame attempt is lost with
    ``loss_good`` or ``loss_bad`` depending on the state at the moment it is sent."""

    mean_good_s: float = 60.0
    mean_bad_s: float = 2.0
    loss_good: float = 0.0
    loss_bad: float = 0.8

    def __post_init__(self) -> None:
        if self.mean_good_s <= 0 or self.mean_bad_s <= 0:
            raise ValueError("burst loss: mean_good_s and mean_bad_s must be positive")
        for name in ("loss_good", "loss_bad"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"burst loss: {name} must be a probability in [0, 1], got {value}")

    @property
    def bad_fraction(self) -> float:
        """Long-run share of time in the bad state."""
        return self.mean_bad_s / (self.mean_good_s + self.mean_bad_s)


@dataclass(frozen=True, slots=True)
class RadioParams:
    """IEEE 802.15.4 / ZigBee PRO figures (defaults: 2.4 GHz O-QPSK PHY, GB HAN with APS and
    NWK security). Byte counts are per frame; times in seconds."""

    bitrate_bps: int = 250_000
    phy_header_bytes: int = 6  # preamble 4, SFD 1, PHR 1
    mac_header_bytes: int = 11  # frame control 2, sequence 1, PAN ID 2, dst 2, src 2, FCS 2
    nwk_header_bytes: int = 8  # frame control 2, dst 2, src 2, radius 1, sequence 1
    nwk_security_bytes: int = 18  # auxiliary header 14 (incl. source IEEE address) + MIC 4
    aps_header_bytes: int = 8  # frame control, dst ep, cluster 2, profile 2, src ep, counter
    aps_security_bytes: int = 9  # auxiliary header 5 + MIC 4
    ack_bytes: int = 5  # MAC acknowledgement PSDU: frame control 2, sequence 1, FCS 2
    turnaround_s: float = 192e-6  # aTurnaroundTime, 12 symbols
    backoff_unit_s: float = 320e-6  # aUnitBackoffPeriod, 20 symbols
    cca_s: float = 128e-6  # 8 symbols
    min_be: int = 3  # macMinBE
    ack_wait_s: float = 864e-6  # macAckWaitDuration, 54 symbols
    max_frame_retries: int = 3  # macMaxFrameRetries
    loss: float = 0.0  # independent loss per frame attempt (data or acknowledgement)
    burst: BurstLoss | None = None
    poll_interval_s: float = 7.5  # a sleepy end device's default poll of its parent
    fast_poll_interval_s: float = 0.25  # its poll while it expects an answer ...
    fast_poll_window_s: float = 10.0  # ... i.e. this long after it last transmitted
    data_request_bytes: int = 18  # MAC Data Request command PSDU (with long source address)
    # APS acknowledgements: requested on every unicast but the blocks that answer an Image Page
    # Request (Silicon Labs' OTA server clears the APS retry option there). An APS ack is a frame
    # of its own: MAC, NWK and APS headers with both securities, no payload.
    aps_ack: bool = True
    aps_ack_wait_s: float = 1.6  # EmberZNet: 50 ms x 30 hops (EMBER_MAX_HOPS) + 100 ms security
    aps_max_retries: int = 3  # apscMaxFrameRetries (ZigBee PRO)

    def __post_init__(self) -> None:
        if self.bitrate_bps <= 0:
            raise ValueError(f"radio: bitrate_bps must be positive, got {self.bitrate_bps}")
        if not 0.0 <= self.loss <= 1.0:
            raise ValueError(f"radio: loss must be a probability in [0, 1], got {self.loss}")
        if self.max_frame_retries < 0:
            raise ValueError(f"radio: max_frame_retries must not be negative, got {self.max_frame_retries}")
        if self.poll_interval_s <= 0:
            raise ValueError(f"radio: poll_interval_s must be positive, got {self.poll_interval_s}")
        if self.aps_max_retries < 0:
            raise ValueError(f"radio: aps_max_retries must not be negative, got {self.aps_max_retries}")
        if self.aps_ack_wait_s <= 0:
            raise ValueError(f"radio: aps_ack_wait_s must be positive, got {self.aps_ack_wait_s}")

    # -- sizes and times (docs/radio-model.md) -------------------------------------------------
    @property
    def header_bytes(self) -> int:
        """Bytes each frame carries besides the ZCL payload, PHY header included."""
        return (self.phy_header_bytes + self.mac_header_bytes + self.nwk_header_bytes + self.nwk_security_bytes
                + self.aps_header_bytes + self.aps_security_bytes)

    @property
    def max_aps_payload(self) -> int:
        """ZCL bytes that fit one frame without APS fragmentation."""
        return MAX_PHY_PACKET_SIZE - (self.header_bytes - self.phy_header_bytes)

    def byte_time(self) -> float:
        return 8.0 / self.bitrate_bps

    def fragments(self, payload_len: int) -> int:
        return max(1, math.ceil(payload_len / self.max_aps_payload))

    def airtime(self, payload_len: int) -> float:
        """On-air time of one (unfragmented) frame carrying ``payload_len`` ZCL bytes."""
        return (self.header_bytes + payload_len) * self.byte_time()

    def ack_airtime(self) -> float:
        return (self.phy_header_bytes + self.ack_bytes) * self.byte_time()

    def mean_backoff(self) -> float:
        """Mean initial CSMA-CA back-off: uniform over 0 .. 2**macMinBE - 1 unit periods."""
        return (2 ** self.min_be - 1) / 2 * self.backoff_unit_s

    def mac_exchange_time(self, payload_len: int) -> float:
        """Expected time of one MAC frame without loss: back-off, CCA, turnaround, frame,
        turnaround, MAC acknowledgement."""
        return (self.mean_backoff() + self.cca_s + self.turnaround_s + self.airtime(payload_len)
                + self.turnaround_s + self.ack_airtime())

    def exchange_time(self, payload_len: int, *, aps_ack: bool | None = None) -> float:
        """Expected time of one unicast without loss, per fragment: the data frame and, when an
        APS acknowledgement is requested (default: ``self.aps_ack``), the receiver's APS ack frame."""
        fragments = self.fragments(payload_len)
        one = self.mac_exchange_time(math.ceil(payload_len / fragments))
        if self.aps_ack if aps_ack is None else aps_ack:
            one += self.mac_exchange_time(0)
        return one * fragments


class BusyPeriod(NamedTuple):
    """What the fast path drew (:meth:`RadioChannel.block_exchanges`): ``done`` complete block
    exchanges; ``sent`` when the request after them went out (``previous_sent``: the one
    before); ``last_request_at`` when the last complete exchange's request landed;
    ``request_lands`` when the request after them lands, or ``None`` if it failed or lands
    too late (then its draw is carried and the client sends it per frame)."""

    done: int
    sent: float
    previous_sent: float
    last_request_at: float
    request_lands: float | None


# For each macMinBE up to 8: a back-off draw's slot from the last byte of its first 32-bit word
# (its top macMinBE bits), as bytes.translate tables.
_SLOT_OF_BYTE = [bytes(b >> (8 - be) for b in range(256)) for be in range(9)]


@dataclass(slots=True)
class _SleepyNode:
    poll_interval_s: float
    phase_s: float


@dataclass(slots=True)
class ChannelStats:
    frames: int = 0
    attempts: int = 0
    attempts_lost: int = 0
    frames_failed: int = 0
    acks_lost: int = 0  # delivered, but the sender never heard so
    aps_acks: int = 0  # APS acknowledgement frames sent by receivers
    aps_retries: int = 0  # data frames sent again because no APS ack came within aps_ack_wait_s
    airtime_s: float = 0.0
    held_for_poll: int = 0


class RadioChannel:
    """The shared 2.4 GHz channel of one premises, used by :class:`VirtualHan` as its link model."""

    def __init__(self, params: RadioParams | None = None, *, seed: int = 0) -> None:
        self.params = params if params is not None else RadioParams()
        self._rng = random.Random(seed)
        self._busy_until = 0.0
        self._sleepy: dict[int, _SleepyNode] = {}
        self._last_tx: dict[int, float] = {}  # sleepy nodes: when each last transmitted
        self._polled: dict[int, float] = {}  # sleepy nodes: when each last polled for a frame
        self._page_tsn: dict[int, int] = {}  # OTA client -> TSN of its running Image Page Request
        self._carried: tuple[tuple[float, int, int, int], LinkResult] | None = None  # see carry()
        self._bad = False  # Gilbert-Elliott state
        self._state_at = 0.0
        self.stats = ChannelStats()
        p = self.params
        self._byte_s = p.byte_time()
        self._ack_s = p.ack_airtime()
        self._header = p.header_bytes
        self._max_payload = p.max_aps_payload
        self._backoff_slots = 2 ** p.min_be
        self._fixed_s = p.cca_s + p.turnaround_s  # before the frame
        self._after_s = p.turnaround_s + self._ack_s  # after a frame that is acknowledged
        # A poll: the sleepy device's MAC Data Request, acknowledged by the parent (mean back-off).
        self._poll_s = (p.mean_backoff() + self._fixed_s + (p.phy_header_bytes + p.data_request_bytes) * self._byte_s
                        + self._after_s)

    def set_sleepy(self, eui64: int, poll_interval_s: float | None = None) -> None:
        """``eui64`` is a sleepy end device: frames for it wait at its parent until it polls.

        Its polls fall every ``poll_interval_s`` at a phase derived from its address, so two
        sleepy devices do not poll in lock-step."""
        interval = poll_interval_s if poll_interval_s is not None else self.params.poll_interval_s
        if interval <= 0:
            raise ValueError(f"poll interval of {eui64:016X} must be positive, got {interval}")
        phase = (eui64 * 0x9E3779B97F4A7C15 % 2**64) / 2**64 * interval
        self._sleepy[eui64] = _SleepyNode(interval, phase)

    def is_sleepy(self, eui64: int) -> bool:
        return eui64 in self._sleepy

    # -- loss ----------------------------------------------------------------------------------
    def _lost(self, at: float) -> bool:
        p = self.params
        burst = p.burst
        loss = p.loss
        rng = self._rng
        if burst is not None:
            dt = at - self._state_at
            if dt > 0:
                # Two-state Markov chain in continuous time: probability of being bad after dt.
                rate_gb = 1.0 / burst.mean_good_s
                rate_bg = 1.0 / burst.mean_bad_s
                pi_bad = rate_gb / (rate_gb + rate_bg)
                decay = math.exp(-(rate_gb + rate_bg) * dt)
                p_bad = pi_bad + (1.0 - pi_bad) * decay if self._bad else pi_bad * (1.0 - decay)
                self._bad = rng.random() < p_bad
                self._state_at = at
            loss = 1.0 - (1.0 - loss) * (1.0 - (burst.loss_bad if self._bad else burst.loss_good))
        if loss <= 0.0:
            return False
        return rng.random() < loss

    # -- the link model --------------------------------------------------------------------------
    def unicast(self, packet: ApsPacket, now: float) -> LinkResult:
        """Send one unicast at ``now``; see docs/radio-model.md for the timeline it follows."""
        carried = self._carried
        if carried is not None:
            self._carried = None
            if carried[0] == (now, packet.src, packet.dst, len(packet.payload)):
                return carried[1]  # drawn by the fast path, which stopped at this frame
            raise RuntimeError(f"radio: the fast path left a draw for {carried[0]}, but the next unicast is "
                               f"{(now, packet.src, packet.dst, len(packet.payload))}")
        if isinstance(packet, ApsFragment):  # an APS block (the port fragmented): one frame, APS-acknowledged
            return self._unicast(packet.src, packet.dst, len(packet.payload), now, self.params.aps_ack, block=True)
        aps_ack = self.params.aps_ack and self._requests_aps_ack(packet)
        return self._unicast(packet.src, packet.dst, len(packet.payload), now, aps_ack)

    # -- the fast path (docs/fleet.md) ---------------------------------------------------------
    def batch_unicast(self, src: int, dst: int, payload_len: int, now: float, *, ota_client: int) -> LinkResult:
        """One frame of a busy period of OTA block exchanges, drawn for the fast path: the very
        draws :meth:`unicast` makes for an Image Block Request from ``ota_client`` (or an Image
        Block Response to it, outside an Image Page Request) of ``payload_len`` ZCL bytes at
        ``now``. Neither end may be sleepy (the fast path does not run then)."""
        carried = self._carried
        if carried is not None:
            self._carried = None
            if carried[0] == (now, src, dst, payload_len):
                return carried[1]
            raise RuntimeError(f"radio: the fast path left a draw for {carried[0]}, but the next unicast is "
                               f"{(now, src, dst, payload_len)}")
        if src == ota_client:
            self._page_tsn.pop(src, None)  # a command other than a page request ends the page
        return self._unicast(src, dst, payload_len, now, self.params.aps_ack)

    def block_exchanges(self, client: int, server: int, request_len: int, response_len: int, now: float,
                        count: int, horizon: float, latency: float, within: float = math.inf) -> "BusyPeriod":
        """Draw a busy period of up to ``count`` OTA block exchanges for the fast path: the
        client's Image Block Request at ``now``, the server's response when it lands, the next
        request when that lands, and so on, each frame exactly as :meth:`unicast` draws it
        (``latency``: the virtual HAN's own, added to every delivery). The period ends at the
        first frame that fails or lands at or after ``horizon`` (its draw is carried for the
        per-frame send), or after ``count`` exchanges and the request after them. A response
        that lands ``within`` seconds or later after its request was sent ends it too (the
        client's response timer, which the fast path leaves out of the horizon)."""
        self._page_tsn.pop(client, None)
        p = self.params
        if (p.loss > 0.0 or p.burst is not None or not p.aps_ack or self._carried is not None
                or max(request_len, response_len) > self._max_payload or client in self._sleepy
                or server in self._sleepy or p.min_be > 8):
            return self._block_exchanges(client, server, request_len, response_len, now, count, horizon, latency,
                                         within)
        # No loss: every frame gets through at the first attempt. The same arithmetic as
        # _unicast -> _send_with_aps_ack -> _send_frame, unrolled (the draws: two back-offs a
        # frame), the statistics summed in the same order.
        stats = self.stats
        after = self._after_s
        header, byte_s = self._header, self._byte_s
        request_s, response_s, ack_s = (header + request_len) * byte_s, (header + response_len) * byte_s, \
            (header + 0) * byte_s
        # The back-offs, drawn ahead: int(random() * 2**macMinBE) is the top macMinBE bits of the
        # first of the two 32-bit words random() takes, i.e. of that word's last byte (little
        # endian), and getrandbits(64 k) takes the words of k random() calls. The generator is
        # then put back and moved on by exactly the draws used, so its stream is the per-frame
        # path's. Draw 4e is exchange e's request back-off, 4e+1 its acknowledgement's, 4e+2
        # and 4e+3 the response's; each is looked up with its frame time already added (the
        # same float sum _send_frame makes).
        rng = self._rng
        unit, fixed = p.backoff_unit_s, self._fixed_s
        table = [k * unit + fixed for k in range(self._backoff_slots)]  # as int(random() * slots) * unit + fixed
        busy = self._busy_until
        # When even the slowest draws (every back-off at its longest) cannot reach the horizon
        # or the client's response timer, the period runs all ``count`` exchanges and the request
        # after them: exactly 4 count + 2 draws, taken as they are (no state saved and put back).
        gap = max(latency, after + table[-1] + ack_s + after)  # from a frame's end to the next start
        slowest = table[-1] + request_s + table[-1] + response_s + 2 * gap  # one exchange
        first = busy if busy > now else now
        in_time = (first - now) + gap + slowest + 1e-9 < within  # no response reaches the client's timer
        certain = in_time and (first + (count + 1) * slowest) * (1 + 1e-9) + 1e-9 < horizon
        # The HAN's latency shorter than a frame's turnaround and acknowledgement: each frame but
        # the first lands while the channel is still busy with the one before (_certain_period).
        quick = latency < after
        if certain:
            state = None
            most = 4 * count + 2
            slots = rng.getrandbits(64 * most).to_bytes(8 * most, "little")[3::8].translate(_SLOT_OF_BYTE[p.min_be])
            if quick:
                period = self._certain_period(slots, count, now, first, latency, request_s, response_s, ack_s,
                                              table, math.inf)
                if period is None or period.request_lands is None or period.request_lands >= horizon:
                    raise RuntimeError(f"radio: a busy period bound to run {count} exchanges reached its horizon")
                return period
            slots += b"\0\0"  # the response after the last request is never drawn
        else:
            state = rng.getstate()
            most = 4 * (count + 1)  # two frames an exchange, the request after them; two draws a frame
            slots = rng.getrandbits(64 * most).to_bytes(8 * most, "little")[3::8].translate(_SLOT_OF_BYTE[p.min_be])
            if in_time and quick:
                # Only the horizon is in doubt: the whole period drawn, and kept if its last frame,
                # the latest to land, lands before the horizon (else frame by frame below).
                period = self._certain_period(slots, count, now, first, latency, request_s, response_s, ack_s,
                                              table, horizon)
                if period is not None:
                    rng.setstate(state)
                    rng.getrandbits(64 * 2 * (2 * count + 1))  # the back-off draws made, two a frame
                    return period
        request = list(map([b + request_s for b in table].__getitem__, slots[0::4]))
        response = list(map([b + response_s for b in table].__getitem__, slots[2::4]))
        acked = [b + ack_s for b in table].__getitem__
        request_ack = list(map(acked, slots[1::4]))
        response_ack = list(map(acked, slots[3::4]))
        air = stats.airtime_s
        sent = previous_sent = last_request_at = now
        done = 0
        request_lands: float | None = None
        for rq, rqa, rs, rsa in zip(request, request_ack, response, response_ack):
            start = sent if sent > busy else busy
            got = start + rq
            busy = got + after + rqa + after
            air += busy - start
            landed = sent + (latency + (got - sent))
            if landed >= horizon:
                self.carry(sent, client, server, request_len, LinkResult(True, got - sent, True, busy - sent))
                frames = 2 * done + 1
                break
            if done >= count:
                request_lands = landed
                frames = 2 * done + 1
                break
            start = landed if landed > busy else busy
            got = start + rs
            busy = got + after + rsa + after
            air += busy - start
            answered = landed + (latency + (got - landed))
            if answered >= horizon or answered >= sent + within:
                self.carry(landed, server, client, response_len, LinkResult(True, got - landed, True, busy - landed))
                request_lands = landed
                frames = 2 * done + 2
                break
            done += 1
            last_request_at = landed
            previous_sent, sent = sent, answered
        if state is not None:
            rng.setstate(state)
            rng.getrandbits(64 * 2 * frames)  # the back-off draws made, two a frame
        elif frames != 2 * count + 1:
            raise RuntimeError(f"radio: a busy period bound to run {count} exchanges stopped after {done}")
        self._close_period(busy, air, frames)
        return BusyPeriod(done, sent, previous_sent, last_request_at, request_lands)

    def _certain_period(self, slots: bytes, count: int, now: float, first: float, latency: float, request_s: float,
                        response_s: float, ack_s: float, table: list[float], horizon: float) -> BusyPeriod | None:
        """A loss-free busy period of all ``count`` exchanges and the request after them
        (``slots``: its back-off draws, at least 4 count + 2; ``first``: when its first frame may
        start), with the arithmetic of :meth:`block_exchanges`' loop less what cannot happen
        here: no response reaches the client's response timer (the caller's bound), and, the
        HAN's ``latency`` being shorter than a frame's turnaround and acknowledgement, every frame
        but the first lands while the channel is still busy with the frame before it, so it
        starts when the channel frees. Frames land in order, and no frame lands after the channel
        frees: ``None`` (and the channel untouched) once the channel is busy up to ``horizon``
        (whether or not a frame lands after it) or the last frame lands at or after it."""
        after = self._after_s
        stats = self.stats
        requests = [b + request_s for b in table]
        acked = [b + ack_s for b in table].__getitem__
        n = 4 * count
        air = stats.airtime_s
        busy = first
        sent = previous_sent = last_request_at = now
        for rq, rqa, rs, rsa in zip(map(requests.__getitem__, slots[0:n:4]), map(acked, slots[1:n:4]),
                                    map([b + response_s for b in table].__getitem__, slots[2:n:4]),
                                    map(acked, slots[3:n:4])):
            got = busy + rq
            last_request_at = sent + (latency + (got - sent))
            start = got + after + rqa + after  # the response starts when the request's acks end
            air += start - busy
            got = start + rs
            busy = got + after + rsa + after
            if busy >= horizon:
                return None  # (perhaps) past the horizon: the caller goes frame by frame, from the start
            air += busy - start
            previous_sent = sent
            sent = last_request_at + (latency + (got - last_request_at))
        start = busy
        got = start + requests[slots[n]]
        request_lands = sent + (latency + (got - sent))
        if request_lands >= horizon:
            return None
        busy = got + after + acked(slots[n + 1]) + after
        air += busy - start
        self._close_period(busy, air, 2 * count + 1)
        return BusyPeriod(count, sent, previous_sent, last_request_at, request_lands)

    def _close_period(self, busy: float, airtime_s: float, frames: int) -> None:
        """A busy period drawn whole: the channel is busy to ``busy``; its ``frames`` (each sent
        once, APS-acknowledged, two back-off draws) go into the stats."""
        self._busy_until = busy
        stats = self.stats
        stats.airtime_s = airtime_s
        stats.frames += frames
        stats.attempts += 2 * frames
        stats.aps_acks += frames

    def _block_exchanges(self, client: int, server: int, request_len: int, response_len: int, now: float,
                         count: int, horizon: float, latency: float, within: float) -> "BusyPeriod":
        """:meth:`block_exchanges` frame by frame through :meth:`batch_unicast` (loss, bursts)."""
        sent = previous_sent = last_request_at = now
        done = 0
        while True:
            request = self._fast_frame(client, server, request_len, sent, horizon, latency, client)
            if request is None:
                return BusyPeriod(done, sent, previous_sent, last_request_at, None)
            if done >= count:
                return BusyPeriod(done, sent, previous_sent, last_request_at, request)
            deadline = sent + within
            answer = self._fast_frame(server, client, response_len, request, horizon if horizon < deadline else deadline,
                                      latency, client)
            if answer is None:
                return BusyPeriod(done, sent, previous_sent, last_request_at, request)
            done += 1
            last_request_at = request
            previous_sent, sent = sent, answer

    def _fast_frame(self, src: int, dst: int, payload_len: int, now: float, horizon: float, latency: float,
                    client: int) -> float | None:
        result = self.batch_unicast(src, dst, payload_len, now, ota_client=client)
        if result.delivered and result.confirmed:
            landed = now + (latency + result.delay)
            if landed < horizon:
                return landed
        self.carry(now, src, dst, payload_len, result)
        return None

    def carry(self, now: float, src: int, dst: int, payload_len: int, result: LinkResult) -> None:
        """Keep a frame the fast path drew but does not send (it failed, or lands beyond the
        premises' horizon): the per-frame send of that frame at ``now`` gets this result."""
        self._carried = ((now, src, dst, payload_len), result)

    def _unicast(self, src: int, dst: int, payload_len: int, now: float, aps_ack: bool,
                 block: bool = False) -> LinkResult:
        stats = self.stats
        stats.frames += 1
        start = now if now > self._busy_until else self._busy_until
        if src in self._sleepy:
            self._last_tx[src] = now
        start = self._held(dst, start, now)
        fragments = 1 if block or payload_len <= self._max_payload else math.ceil(payload_len / self._max_payload)
        per_fragment = payload_len if fragments == 1 else math.ceil(payload_len / fragments)
        t = start
        delivered_at = -1.0
        acknowledged = False
        for _ in range(fragments):
            if aps_ack:
                acknowledged, received, t = self._send_with_aps_ack(t, per_fragment, src)
            else:
                acknowledged, received, t = self._send_frame(t, per_fragment)
            if received < 0 or (not acknowledged and fragments > 1):
                delivered_at = -1.0  # the sender gives up; the receiver never has every fragment
                break
            delivered_at = received
        self._busy_until = t
        stats.airtime_s += t - start
        if delivered_at < 0:
            stats.frames_failed += 1
            return LinkResult(False, 0.0, False, t - now)
        if not acknowledged:
            stats.acks_lost += 1
        return LinkResult(True, delivered_at - now, acknowledged, t - now)

    def _held(self, dst: int, start: float, ready: float) -> float:
        """When a frame for ``dst``, handed to the parent at ``ready``, can go from ``start``: at
        once, or for a sleepy device after a poll.

        The parent holds the frame until the device polls; the poll is a MAC Data Request the
        parent acknowledges with frame pending, then the frame itself. Shortly after it
        transmitted, the device polls fast (it expects an answer). A frame that was already
        waiting when the device last polled was announced by frame pending in that poll's
        acknowledgement: the device polls again at once, off the grid."""
        sleepy = self._sleepy.get(dst)
        if sleepy is None:
            return start
        self.stats.held_for_poll += 1
        polled = self._polled.get(dst)
        if polled is not None and ready <= polled <= start:
            self._polled[dst] = start
            return start + self._poll_s
        interval = sleepy.poll_interval_s
        if start - self._last_tx.get(dst, -1e18) <= self.params.fast_poll_window_s:
            interval = self.params.fast_poll_interval_s
        phase = sleepy.phase_s % interval
        poll = phase + (math.floor((start - phase) / interval) + 1) * interval
        self._polled[dst] = poll
        return poll + self._poll_s

    def _requests_aps_ack(self, packet: ApsPacket) -> bool:
        """Whether the sender asks for an APS acknowledgement: yes, except for the Image Block
        Responses that answer an Image Page Request (they carry the page request's TSN)."""
        if packet.cluster != OTA_CLUSTER:
            return True
        payload = packet.payload
        if len(payload) < 3:
            return True
        head = 5 if payload[0] & 0x04 else 3  # manufacturer-specific frames carry 2 more bytes
        if len(payload) < head or payload[0] & 0x03 != 0x01:  # only cluster-specific commands count
            return True
        tsn, command = payload[head - 2], payload[head - 1]
        if payload[0] & 0x08:  # server to client
            return not (command == _IMAGE_BLOCK_RESPONSE and self._page_tsn.get(packet.dst) == tsn)
        if command == _IMAGE_PAGE_REQUEST:
            self._page_tsn[packet.src] = tsn
        else:
            self._page_tsn.pop(packet.src, None)
        return True

    def _send_with_aps_ack(self, t: float, payload_len: int, src: int) -> tuple[bool, float, float]:
        """One frame that asks for an APS acknowledgement, with APS retries: (acknowledged, time
        received or -1, end time).

        The receiver answers each copy it gets (its duplicate rejection drops repeats, but it
        acknowledges them again) with an APS ack frame, sent after the data frame's MAC ack and
        itself MAC-acknowledged; it goes to a sleepy sender at that sender's next (fast) poll.
        Without it the sender sends again ``aps_ack_wait_s`` after the previous copy went out."""
        p = self.params
        stats = self.stats
        received = -1.0
        for attempt in range(p.aps_max_retries + 1):
            sent_at = t
            _, got, t = self._send_frame(t, payload_len)
            if got >= 0:
                if received < 0:
                    received = got
                stats.aps_acks += 1
                _, ack_got, t = self._send_frame(self._held(src, t, t), 0)
                if ack_got >= 0:
                    return True, received, t
            if attempt < p.aps_max_retries:
                stats.aps_retries += 1
                wait_until = sent_at + p.aps_ack_wait_s
                t = wait_until if wait_until > t else t
        return False, received, t

    def broadcast(self, packet: ApsPacket, now: float) -> float:
        """A broadcast: one transmission, no acknowledgement; returns its delay."""
        if self._carried is not None:
            raise RuntimeError(f"radio: the fast path left a draw for {self._carried[0]}, but a broadcast came first")
        self.stats.frames += 1
        start = now if now > self._busy_until else self._busy_until
        end = (start + int(self._rng.random() * self._backoff_slots) * self.params.backoff_unit_s + self._fixed_s
               + (self._header + len(packet.payload)) * self._byte_s)
        self._busy_until = end
        self.stats.airtime_s += end - start
        return end - now

    def _send_frame(self, t: float, payload_len: int) -> tuple[bool, float, float]:
        """One frame with MAC retries from ``t``: (acknowledged, time received or -1, end time)."""
        p = self.params
        stats = self.stats
        rng = self._rng
        frame_s = (self._header + payload_len) * self._byte_s
        if p.loss <= 0.0 and p.burst is None:
            # No loss configured: the first attempt gets through and is acknowledged.
            stats.attempts += 1
            t += int(rng.random() * self._backoff_slots) * p.backoff_unit_s + self._fixed_s + frame_s
            return True, t, t + self._after_s
        received = -1.0
        for _ in range(p.max_frame_retries + 1):
            stats.attempts += 1
            t += int(rng.random() * self._backoff_slots) * p.backoff_unit_s + self._fixed_s + frame_s
            if self._lost(t):
                stats.attempts_lost += 1
                t += p.ack_wait_s
                continue
            if received < 0:
                received = t  # later copies are duplicates the receiver's MAC discards
            if self._lost(t):
                stats.attempts_lost += 1
                t += p.ack_wait_s
                continue
            return True, received, t + self._after_s
        return False, received, t
