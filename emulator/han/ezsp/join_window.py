"""The hub's Device Log carried out on an EZSP NCP: who may join, with which key, until when.

When the Comms Hub's radio is a Silicon Labs NCP, the NCP's own stack is the ZigBee Trust
Centre: it decides each join, so the host must tell it beforehand what CCS01 (SR 8.11) put in
the Device Log. For every device whose JoinTimePeriod is open the host

1. puts the device's install-code key (AES-MMO of the code) in the transient key table with
   bellows' ``add_transient_link_key`` (EZSP 8-12 ``addTransientLinkKey`` 0x00AF, EZSP 13+
   ``importTransientKey`` 0x0111), after ``clearTransientLinkKeys`` (0x006B), so a device whose
   window closed loses its key;
2. sets ``setPolicy(TRUST_CENTER_POLICY, ALLOW_JOINS | JOINS_USE_INSTALL_CODE_KEY)``, so a device
   without a transient key is denied and no one joins with the well-known key;
3. opens the join window with ``permitJoining`` for the longest JoinTimePeriod still running,
   at most 254 s at a time (the ZigBee R21 limit), and opens it again before it closes (which
   also renews the keys before the NCP's 300 s transient-key timeout). No window left: 
   ``permitJoining(0)``.

The NCP then reports each join with ``trustCenterJoinHandler``; the transport hands it to the
hub's Trust Centre as a :class:`~emulator.han.transport.RadioJoin`.
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any, Callable

import bellows.types as bt
import zigpy.types as zt

_LOGGER = logging.getLogger(__name__)

PERMIT_JOIN_MAX_S = 254
"""The longest join window one permitJoining may open (ZigBee R21; 255 would mean "forever")."""
REOPEN_MARGIN_S = 4.0
"""Open the window again this long before it would close."""
INSTALL_CODE_ONLY = bt.EzspDecisionBitmask.ALLOW_JOINS | bt.EzspDecisionBitmask.JOINS_USE_INSTALL_CODE_KEY


class EzspJoinWindow:
    """The NCP's join permissions, kept in step with the hub's Device Log (one per transport)."""

    def __init__(self, ezsp: Callable[[], Any]) -> None:
        """``ezsp`` returns bellows' current EZSP object (None while disconnected)."""
        self._ezsp = ezsp
        self.allowed: dict[int, tuple[bytes, float | None]] = {}
        """EUI-64 -> (install-code key, loop time its JoinTimePeriod ends; None: no end)."""
        self.calls: list[str] = []
        """The EZSP commands sent, in order (what a bench log shows)."""
        self._lock: asyncio.Lock | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def permit(self, device: int, link_key: bytes, period_s: float | None) -> None:
        loop = asyncio.get_running_loop()
        self.allowed[device] = (bytes(link_key), None if period_s is None else loop.time() + period_s)
        self.apply()

    def end(self, device: int) -> None:
        if self.allowed.pop(device, None) is not None:
            self.apply()

    def apply(self) -> None:
        """Tell the NCP (again): after a change, a window's end, or a reconnection."""
        task = asyncio.get_running_loop().create_task(self._apply())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def settle(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for task in list(self._tasks):
            task.cancel()

    async def _apply(self) -> None:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            loop = asyncio.get_running_loop()
            now = loop.time()
            for device in [d for d, (_, end) in self.allowed.items() if end is not None and end <= now]:
                del self.allowed[device]
                _LOGGER.info("JoinTimePeriod of %016X ended: no longer admitted by the NCP", device)
            ezsp = self._ezsp()
            if ezsp is None:
                return  # disconnected: applied again on reconnection
            try:
                duration = await self._send(ezsp, now)
            except Exception as exc:  # noqa: BLE001 - the radio went away; reapplied on reconnection
                _LOGGER.warning("join permissions not set on the NCP: %r", exc)
                return
            self._schedule(loop, now, duration)

    async def _send(self, ezsp: Any, now: float) -> int:
        self.calls.append("clearTransientLinkKeys")
        await ezsp.clearTransientLinkKeys()
        for device, (key, _) in self.allowed.items():
            self.calls.append("importTransientKey" if ezsp.ezsp_version >= 13 else "addTransientLinkKey")
            status = await ezsp.add_transient_link_key(zt.EUI64(device.to_bytes(8, "little")), zt.KeyData(key))
            if bt.sl_Status.from_ember_status(status) != bt.sl_Status.OK:
                _LOGGER.warning("the NCP refused the transient key of %016X: %r", device, status)
        if not self.allowed:
            self.calls.append("permitJoining")
            await ezsp.permitJoining(0)
            return 0
        self.calls.append("setPolicy")
        await ezsp.setPolicy(policyId=bt.EzspPolicyId.TRUST_CENTER_POLICY, decisionId=INSTALL_CODE_ONLY)
        ends = [end for _, end in self.allowed.values()]
        longest = math.inf if None in ends else max(e for e in ends if e is not None) - now
        duration = PERMIT_JOIN_MAX_S if longest >= PERMIT_JOIN_MAX_S else max(1, math.ceil(longest))
        self.calls.append("permitJoining")
        await ezsp.permitJoining(duration)
        _LOGGER.info("NCP join window open for %d s: %s", duration,
                     ", ".join(f"{d:016X}" for d in self.allowed))
        return duration

    def _schedule(self, loop: asyncio.AbstractEventLoop, now: float, duration: int) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self.allowed:
            return
        wake = now + max(1.0, duration - REOPEN_MARGIN_S) if duration >= PERMIT_JOIN_MAX_S else now + duration
        ends = [end for _, end in self.allowed.values() if end is not None]
        if ends:
            wake = min(wake, min(ends))
        self._timer = loop.call_at(wake, self.apply)
