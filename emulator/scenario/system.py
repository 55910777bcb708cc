"""The whole emulated system on one clock: DSP and CSP, and per premises a Comms Hub with its HAN.

This is the composition root used by ``run``, ``demo``, ``serve`` and the fleet: it wires the
layers together and turns the DSP's user messages into timeline events (``dcc_alert`` with
``alert: "N49"``, ``device_alert`` with ``alert: "0x8F8B"``, ``sr_response``).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Collection, Iterable, Mapping

from emulator.devices.verification import TrustedKeys

from emulator.dcc.csp import CspPolicy
from emulator.dcc.messages import DspResponse, MessageKind, UserMessage
from emulator.dcc.premises import PremisesSpec
from emulator.dcc.service_requests import ServiceRequest
from emulator.dcc.system import build_dcc
from emulator.dcc.store import Store
from emulator.han.packet import format_eui64
from emulator.han.transport import HanTransport
from emulator.ota.policy import ServerPolicy
from emulator.runtime.clock import Clock
from emulator.runtime.events import EventBus

from .premises import DeviceBehaviour, Premises

_LOGGER = logging.getLogger(__name__)

UserMessageSink = Callable[[UserMessage], None]

# Clock time 0 of a scenario: a fixed date, so runs are reproducible to the byte.
SCENARIO_EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)


class DccSystem:
    """DSP + CSP + premises. Service Requests go in through :meth:`submit`."""

    def __init__(
        self,
        clock: Clock,
        bus: EventBus,
        premises: Iterable[PremisesSpec],
        *,
        store: Store | None = None,
        csp_policy: CspPolicy | None = None,
        ota_policy: ServerPolicy | None = None,
        behaviours: Mapping[int, DeviceBehaviour] | None = None,
        trusted_key: TrustedKeys = None,
        han_latency: float = 0.005,
        han_loss: float = 0.0,
        seed: int = 0,
        epoch: datetime = SCENARIO_EPOCH,
        hub_transports: Mapping[str, HanTransport] | None = None,
        hans: Mapping[str, Any] | None = None,
        real_devices: Collection[int] = (),
    ) -> None:
        """``hub_transports`` / ``hans`` (by premises ID) put a hub on a radio and its emulated
        devices on the medium behind it (default: one fresh VirtualHan per premises).
        ``real_devices`` are in the SMI but not emulated: they are on the air (a HIL bench)."""
        from dataclasses import replace

        from emulator.han.virtual import VirtualHan

        self.clock = clock
        self.bus = bus
        premises = list(premises)
        self.messages: list[UserMessage] = []
        self._sinks: list[UserMessageSink] = []
        self.epoch = epoch
        dcc = build_dcc(clock, self._on_user_message, store=store if store is not None else ":memory:",
                        policy=csp_policy, premises=premises, clock_epoch=epoch)
        self.store, self.csp, self.dsp = dcc.store, dcc.csp, dcc.dsp
        self.premises: dict[str, Premises] = {}
        for index, spec in enumerate(premises):
            han = (hans or {}).get(spec.premises_id)
            if han is None:
                han = VirtualHan(clock, latency=han_latency, loss=han_loss, seed=seed * 7919 + index)
            emulated = spec
            if real_devices:
                emulated = replace(spec, devices=tuple(d for d in spec.devices if d.eui64 not in real_devices))
            site = Premises(emulated, clock, bus, han=han, hub_transport=(hub_transports or {}).get(spec.premises_id),
                            policy=ota_policy, behaviours=behaviours, trusted_key=trusted_key)
            self.premises[spec.premises_id] = site
            self.csp.add_hub(site.hub)

    def add_sink(self, sink: UserMessageSink) -> None:
        """Every user message (alerts, asynchronous responses) also goes to ``sink`` (the outbox)."""
        self._sinks.append(sink)

    def start(self) -> None:
        for site in self.premises.values():
            site.start()

    def submit(self, sr: ServiceRequest) -> DspResponse:
        response = self.dsp.submit(sr)
        fields: dict[str, object] = {
            "request_id": response.request_id,
            "service_reference_variant": response.service_reference_variant,
            "response_code": response.response_code,
            "accepted": [format_eui64(d) for d in response.accepted],
        }
        if response.rejected:
            fields["rejected"] = {reason.value: [format_eui64(d) for d in devices]
                                  for reason, devices in response.rejected.items()}
        if response.error:
            fields["error"] = response.error
        self.bus.emit("dsp", "sr_accepted" if response.response_code.startswith(("I", "W")) else "sr_rejected",
                      None, **fields)
        return response

    def datetime_at(self, clock_time: float) -> datetime:
        """The calendar time the DSP gives clock time ``clock_time`` (for ExecutionDateTime)."""
        return self.epoch + timedelta(seconds=clock_time)

    def device(self, eui64: int):
        for site in self.premises.values():
            if eui64 in site.devices:
                return site.devices[eui64]
        raise KeyError(f"no emulated device {format_eui64(eui64)}")

    def _on_user_message(self, message: UserMessage) -> None:
        self.messages.append(message)
        event = {
            MessageKind.DCC_ALERT: "dcc_alert",
            MessageKind.DEVICE_ALERT: "dcc_device_alert",
            MessageKind.RESPONSE: "sr_response",
        }[message.kind]
        fields: dict[str, object] = {"message_id": message.message_id}
        if message.kind is MessageKind.RESPONSE:
            fields["service_reference_variant"] = message.code
        else:
            fields["alert"] = message.code
        if message.request_id:
            fields["request_id"] = message.request_id
        if message.recipient:
            fields["recipient"] = message.recipient
        for key, value in message.details.items():
            if key in fields:
                continue
            if key.endswith("version") and isinstance(value, int) and not isinstance(value, bool):
                value = f"{value:08X}"
            fields[key] = value
        self.bus.emit("dsp", event, message.device, **fields)
        for sink in self._sinks:
            sink(message)
