"""CSP: per-device checks, then WAN delivery of the image to each Comms Hub involved.

The CSP never talks to a DCC User; it reports to the DSP through :class:`CspListener` and the DSP
turns those reports into alerts. What fails (a device's check, a hub's WAN link) and how long the
WAN takes is scenario data in :class:`CspPolicy`. Everything happens on the clock, so a fleet of
thousands of hubs runs in virtual time.
"""

from __future__ import annotations

import enum
import logging
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol

from emulator.eui64 import format_eui64, parse_eui64
from emulator.hub.port import HubMessage, HubPort
from emulator.runtime.clock import Clock

from .timing import DelayKind, TimingDraws

_LOGGER = logging.getLogger(__name__)


class CspOutcome(str, enum.Enum):
    """A device's CSP check result; the rejections are the DCC alert codes the DSP raises."""

    PASS = "pass"
    N18 = "N18"
    N19 = "N19"
    N20 = "N20"
    N22 = "N22"


@dataclass(frozen=True, slots=True)
class HubDelivery:
    """How the WAN behaves for one hub: ``fail`` gives N60, otherwise N61 after ``delay`` seconds."""

    fail: bool = False
    delay: float | None = None  # None: the policy's default_wan_delay


@dataclass(slots=True)
class CspPolicy:
    """Scenario switches for the CSP: per-device check outcomes, per-hub WAN behaviour, timings."""

    device_outcomes: dict[int, CspOutcome] = field(default_factory=dict)
    hub_delivery: dict[int, HubDelivery] = field(default_factory=dict)
    check_delay: float = 0.0  # seconds between the DSP forwarding devices and the CSP's verdicts
    default_wan_delay: float = 1.0  # seconds for the WAN transfer to a hub
    command_delay: float = 0.0  # seconds to pass an 11.2/11.3 command to a hub

    def outcome_for(self, device: int) -> CspOutcome:
        return self.device_outcomes.get(device, CspOutcome.PASS)

    def delivery_for(self, hub: int) -> tuple[bool, float]:
        rule = self.hub_delivery.get(hub, HubDelivery())
        return rule.fail, self.default_wan_delay if rule.delay is None else rule.delay

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str = "csp policy") -> "CspPolicy":
        """Build from scenario data; unknown keys and bad values are errors naming the key.

        Shape: ``{"devices": {"00-DB-..": "N19"}, "hubs": {"00-DB-..": {"fail": true, "delay": 5}},
        "check_delay": 0, "default_wan_delay": 1, "command_delay": 0}``.
        """
        known = {"devices", "hubs", "check_delay", "default_wan_delay", "command_delay"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"{source}: unknown key(s) {sorted(unknown)}; expected some of {sorted(known)}")
        policy = cls()
        for key in ("check_delay", "default_wan_delay", "command_delay"):
            if key in data:
                setattr(policy, key, _non_negative(data[key], f"{source}: {key}"))
        for eui, outcome in dict(data.get("devices", {})).items():
            try:
                policy.device_outcomes[parse_eui64(eui)] = CspOutcome(outcome)
            except ValueError as exc:
                choices = ", ".join(o.value for o in CspOutcome)
                raise ValueError(f"{source}: devices.{eui}: {exc} (outcomes: {choices})") from None
        for eui, rule in dict(data.get("hubs", {})).items():
            where = f"{source}: hubs.{eui}"
            if not isinstance(rule, Mapping) or set(rule) - {"fail", "delay"}:
                raise ValueError(f"{where}: expected a mapping with keys 'fail' and/or 'delay'")
            try:
                hub = parse_eui64(eui)
            except ValueError as exc:
                raise ValueError(f"{where}: {exc}") from None
            fail = rule.get("fail", False)
            if not isinstance(fail, bool):
                raise ValueError(f"{where}.fail: expected true or false, got {fail!r}")
            delay = rule.get("delay")
            policy.hub_delivery[hub] = HubDelivery(fail, None if delay is None else _non_negative(delay, f"{where}.delay"))
        return policy


def _non_negative(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"{where}: expected a number of seconds >= 0, got {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True)
class WanDistribution:
    """An image the DSP forwarded: which devices (each with its Comms Hub), and whether to activate."""

    request_id: str
    image: bytes
    targets: tuple[tuple[int, int], ...]  # (device, comms hub)
    activate_now: bool


class CspListener(Protocol):
    """What the CSP reports to the DSP."""

    def csp_rejected(self, request_id: str, device: int, outcome: CspOutcome) -> None: ...

    def csp_approved(self, request_id: str, devices: tuple[int, ...]) -> None: ...

    def hub_delivery(self, request_id: str, hub: int, devices: tuple[int, ...], delivered: bool) -> None: ...

    def hub_message(self, message: HubMessage) -> None: ...


class Csp:
    """The Communications Service Provider for every hub registered with :meth:`add_hub`."""

    def __init__(self, clock: Clock, policy: CspPolicy | None = None, timing: TimingDraws | None = None) -> None:
        self._clock = clock
        self.policy = policy or CspPolicy()
        self._hubs: dict[int, HubPort] = {}
        self._listener: CspListener | None = None
        self.timing = timing
        self._upstream: dict[int, deque[tuple[float, HubMessage]]] = {}  # hub -> messages on the WAN

    def set_timing(self, timing: TimingDraws | None) -> None:
        """Draw the delays from ``timing`` (the ``realistic`` preset); None: the policy's fixed ones.
        A hub's own ``delay`` and ``fail`` in the policy still win over the draws."""
        self.timing = timing

    def set_listener(self, listener: CspListener) -> None:
        self._listener = listener

    def add_hub(self, hub: HubPort) -> None:
        """Reach ``hub`` over the WAN; its upstream messages go to the listener (the DSP)."""
        self._hubs[hub.eui64] = hub
        eui = hub.eui64
        hub.set_upstream(lambda message: self._relay(eui, message))

    def hub(self, eui64: int) -> HubPort | None:
        return self._hubs.get(eui64)

    # -- 11.1 / 11.4 ---------------------------------------------------------------------------
    def distribute(self, distribution: WanDistribution) -> None:
        """Run the CSP checks after ``policy.check_delay``, then deliver to each hub."""
        self._clock.call_later(self._delay(DelayKind.CSP_CHECK, self.policy.check_delay), self._check, distribution)

    def _check(self, distribution: WanDistribution) -> None:
        listener = self._require_listener()
        passed: list[tuple[int, int]] = []
        for device, hub in distribution.targets:
            outcome = self.policy.outcome_for(device)
            if outcome is CspOutcome.PASS:
                passed.append((device, hub))
            else:
                _LOGGER.info("%s: CSP rejects %s with %s", distribution.request_id, format_eui64(device), outcome.value)
                listener.csp_rejected(distribution.request_id, device, outcome)
        if not passed:
            return
        listener.csp_approved(distribution.request_id, tuple(d for d, _ in passed))
        by_hub: dict[int, list[int]] = defaultdict(list)
        for device, hub in passed:
            by_hub[hub].append(device)
        for hub, devices in by_hub.items():
            fail, delay = self._wan_delivery(hub, distribution.request_id)
            self._clock.call_later(delay, self._deliver, distribution, hub, tuple(devices), fail)

    def _delay(self, kind: DelayKind, fixed: float) -> float:
        return fixed if self.timing is None else self.timing.draw(kind)

    def _wan_delivery(self, hub: int, request_id: str) -> tuple[bool, float]:
        """Whether the WAN transfer to ``hub`` fails, and when it ends: the policy's, or with the
        realistic preset a drawn transfer with the CSP's retries (a hub's own rule still wins)."""
        fail, delay = self.policy.delivery_for(hub)
        rule = self.policy.hub_delivery.get(hub)
        if self.timing is None or (rule is not None and (rule.fail or rule.delay is not None)):
            return fail, delay
        outcome = self.timing.wan_delivery()
        if outcome.attempts > 1:
            _LOGGER.info("%s: WAN delivery to %s took %d attempts (%s)", request_id, format_eui64(hub),
                         outcome.attempts, "delivered" if outcome.delivered else "gave up")
        return not outcome.delivered, outcome.delay

    def _deliver(self, distribution: WanDistribution, hub_id: int, devices: tuple[int, ...], fail: bool) -> None:
        listener = self._require_listener()
        hub = self._hubs.get(hub_id)
        if hub is None:
            _LOGGER.warning("%s: no WAN route to Comms Hub %s", distribution.request_id, format_eui64(hub_id))
            fail = True
        if fail:
            listener.hub_delivery(distribution.request_id, hub_id, devices, False)
            return
        listener.hub_delivery(distribution.request_id, hub_id, devices, True)
        assert hub is not None
        hub.distribute_image(
            distribution.image, devices, activate_now=distribution.activate_now, request_id=distribution.request_id
        )

    def resume(self, distribution: WanDistribution, *, checked: bool, delivered_hubs: frozenset[int]) -> None:
        """Take up ``distribution`` after a restart: the checks again if they were never reported,
        else WAN delivery to the hubs not yet reached and the image again to those that had it
        (their HAN transfer starts over; the device asks from the offset it holds)."""
        if not checked:
            self.distribute(distribution)
            return
        by_hub: dict[int, list[int]] = defaultdict(list)
        for device, hub in distribution.targets:
            by_hub[hub].append(device)
        for hub_id, devices in by_hub.items():
            if hub_id in delivered_hubs and (port := self._hubs.get(hub_id)) is not None:
                self._clock.call_later(0.0, lambda p=port, d=tuple(devices): p.distribute_image(
                    distribution.image, d, activate_now=distribution.activate_now,
                    request_id=distribution.request_id))
            else:
                fail, delay = self._wan_delivery(hub_id, distribution.request_id)
                self._clock.call_later(delay, self._deliver, distribution, hub_id, tuple(devices), fail)

    def abandon(self, hub: int, device: int) -> None:
        """The DSP gave up on ``device``'s distribution (deadline): the hub drops its transfer."""
        port = self._hubs.get(hub)
        drop = getattr(port, "abandon_distribution", None)
        if drop is not None:
            drop(device)

    # -- 11.2 / 11.3 ---------------------------------------------------------------------------
    def activate_firmware(
        self,
        hub: int,
        device: int,
        firmware_hash: bytes,
        execution_time: float | None,
        *,
        request_id: str,
        cancel: bool = False,
    ) -> bool:
        """Pass 11.3 to ``hub``; False if the CSP has no route to it.

        ``cancel`` (ExecutionDateTime 3000-12-31) goes to the hub's ``cancel_activation``.
        """
        port = self._hubs.get(hub)
        if port is None:
            return False
        if cancel:
            self._clock.call_later(self._command_delay(), lambda: port.cancel_activation(device, request_id=request_id))
        else:
            self._clock.call_later(
                self._command_delay(),
                lambda: port.activate_firmware(device, firmware_hash, execution_time, request_id=request_id),
            )
        return True

    def transform_activation(
        self, hub: int, device: int, firmware_hash: bytes, execution_time: float | None, *, request_id: str,
        cancel: bool = False,
    ) -> bytes | None:
        """11.3 CV 4: the hub's CS06 pre-command for ``device`` at once (the DSP answers with it);
        None if the CSP has no route to ``hub``."""
        port = self._hubs.get(hub)
        if port is None:
            return None
        return port.transform_activation(device, firmware_hash, execution_time, request_id=request_id, cancel=cancel)

    def send_signed_precommand(self, hub: int, device: int, signed_precommand: bytes, *, request_id: str) -> bool:
        """11.3 CV 5: pass the User's signed pre-command to ``hub``; False if there is no route."""
        port = self._hubs.get(hub)
        if port is None:
            return False
        self._clock.call_later(
            self._command_delay(),
            lambda: port.send_signed_precommand(device, signed_precommand, request_id=request_id),
        )
        return True

    def command_for_local_delivery(
        self, hub: int, device: int, *, request_id: str, send: bool, signed_precommand: bytes | None = None,
    ) -> bytes | None:
        """11.2 CV 2/3 (``signed_precommand`` None) or 11.3 CV 6/7: the GBCS command ``hub``
        would send ``device``, at once, for the DSP to return to the User; with ``send`` (CV 3/7)
        the same bytes also go over the WAN. None if the CSP has no route to ``hub``."""
        port = self._hubs.get(hub)
        if port is None:
            return None
        if signed_precommand is None:
            command, service = port.read_command(device, request_id=request_id), "11.2"
        else:
            command, service = port.signed_command(device, signed_precommand, request_id=request_id), "11.3"
        if send:
            self._clock.call_later(
                self.policy.command_delay,
                lambda: port.send_gbcs(device, command, request_id=request_id, service_reference=service),
            )
        return command

    def read_firmware_version(self, hub: int, device: int, *, request_id: str) -> bool:
        """Pass 11.2 to ``hub``; False if the CSP has no route to it."""
        port = self._hubs.get(hub)
        if port is None:
            return False
        self._clock.call_later(
            self._command_delay(), lambda: port.read_firmware_version(device, request_id=request_id)
        )
        return True

    def _command_delay(self) -> float:
        return self._delay(DelayKind.WAN_COMMAND, self.policy.command_delay)

    def update_han_device_log(self, hub: int, device: int, install_code: bytes | None,
                              join_time_period: int | None, *, request_id: str) -> bool:
        """Pass 8.11 to ``hub`` (``install_code`` None: remove ``device``); False if there is no
        route, or the hub cannot take it."""
        port = self._hubs.get(hub)
        update = getattr(port, "update_han_device_log", None)
        if port is None or update is None:
            return False
        self._clock.call_later(self._command_delay(),
                               lambda: update(device, install_code, join_time_period, request_id=request_id))
        return True

    def device_log_command_for_local_delivery(
        self, hub: int, device: int, install_code: bytes | None, join_time_period: int | None,
        *, request_id: str, send: bool,
    ) -> bytes | None:
        """8.11 CV 2/3: the CCS01/CCS02 for ``hub``, at once, for the DSP to return to the User;
        with ``send`` (CV 3) the same bytes also go over the WAN. None if there is no route, or
        the hub cannot take it."""
        port = self._hubs.get(hub)
        build = getattr(port, "device_log_command", None)
        update = getattr(port, "update_han_device_log", None)
        if port is None or build is None or update is None:
            return None
        command: bytes = build(device, install_code, join_time_period, request_id=request_id)
        if send:
            self._clock.call_later(self._command_delay(), lambda: update(
                device, install_code, join_time_period, request_id=request_id, command=command))
        return command

    # -- upstream ------------------------------------------------------------------------------
    def _relay(self, hub: int, message: HubMessage) -> None:
        """A hub's message to the DSP: at once, or with the realistic preset after a drawn WAN
        delay, in the order the hub sent them (a later message never overtakes an earlier one)."""
        if self.timing is None:
            self._require_listener().hub_message(message)
            return
        queue = self._upstream.setdefault(hub, deque())
        queue.append((self._clock.now() + self.timing.draw(DelayKind.WAN_UPSTREAM), message))
        if len(queue) == 1:
            self._clock.call_later(queue[0][0] - self._clock.now(), self._arrive, hub)

    def _arrive(self, hub: int) -> None:
        queue = self._upstream[hub]
        _, message = queue.popleft()
        if queue:
            self._clock.call_later(max(0.0, queue[0][0] - self._clock.now()), self._arrive, hub)
        self._require_listener().hub_message(message)

    def _require_listener(self) -> CspListener:
        if self._listener is None:
            raise RuntimeError("CSP has no listener: construct the Dsp with this Csp before running")
        return self._listener
