"""The whole emulated system on one clock: DSP and CSP, and per premises a Comms Hub with its HAN.

This is the composition root used by ``run``, ``demo``, ``submit``, ``serve``, ``hil run`` and the
fleet: :meth:`DccSystem.from_scenario` is the one place that turns a
:class:`~emulator.scenario.spec.Scenario` into premises (HAN, link model, faults, devices) and
wires them to the DCC side. It also turns the DSP's user messages into timeline events
(``dcc_alert`` with ``alert: "N49"``, ``device_alert`` with ``alert: "0x8F8B"``, ``sr_response``).
"""

from __future__ import annotations

import dataclasses
import logging
import sqlite3
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Protocol

from emulator.dcc.csp import CspPolicy
from emulator.dcc.messages import DspResponse, MessageKind, UserMessage
from emulator.dcc.premises import PremisesSpec
from emulator.dcc.service_requests import ActivateFirmware, ServiceRequest
from emulator.dcc.system import build_dcc
from emulator.dcc.timing import TimingDraws
from emulator.dcc.store import Store
from emulator.gbcs.codes import DeviceType
from emulator.eui64 import format_eui64
from emulator.han.radio import RadioChannel
from emulator.han.transport import HanTransport
from emulator.ota.client import ReferenceImages
from emulator.runtime.clock import Clock
from emulator.runtime.events import EventBus

from emulator.devices.device import DeviceFaults
from emulator.devices.flash import SqliteDownloadFlash
from emulator.ota.sessions import SqliteSessionStore
from emulator.gbcs.flow import GbcsSetup
from emulator.gbcs.messages import decode_message
from emulator.gbcs.precommand import sign_precommand
from emulator.keys.store import KeyUsage, private_key

from .injection import AirFaults, MidTransferFaults, PremisesFaults, premises_faults
from .premises import HAN_DEVICE_TYPES, HanMedium, Premises

from .spec import ScenarioError

if TYPE_CHECKING:
    from .spec import Scenario

_LOGGER = logging.getLogger(__name__)

UserMessageSink = Callable[[UserMessage], object]

# Clock time 0 of a scenario: a fixed date, so runs are reproducible to the byte.
SCENARIO_EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)


class RadioSiteLike(Protocol):
    """What a radio backend gives one premises: the hub's transport and, if the devices are
    emulated, the medium they attach to (``None``: the devices are real, on the air)."""

    transport: HanTransport
    han: Any | None
    real_devices: frozenset[int]


def han_seed(seed: int, index: int) -> int:
    """The seed of premises ``index``'s virtual HAN (random loss)."""
    return seed * 7919 + index


def radio_seed(seed: int, index: int) -> int:
    """The seed of premises ``index``'s radio channel (loss, bursts, back-off)."""
    return (seed * 1_000_003 + index) & 0xFFFFFFFF


class DccSystem:
    """DSP + CSP + premises. Service Requests go in through :meth:`submit`.

    Build it with :meth:`from_scenario`; the constructor gives the DCC side alone."""

    def __init__(
        self,
        clock: Clock,
        bus: EventBus,
        premises: Iterable[PremisesSpec],
        *,
        store: Store | None = None,
        csp_policy: CspPolicy | None = None,
        epoch: datetime = SCENARIO_EPOCH,
    ) -> None:
        self.clock = clock
        self.bus = bus
        self.messages: list[UserMessage] = []
        self._sinks: list[UserMessageSink] = []
        self.epoch = epoch
        dcc = build_dcc(clock, self._on_user_message, store=store if store is not None else ":memory:",
                        policy=csp_policy, premises=list(premises), clock_epoch=epoch)
        self.store, self.csp, self.dsp = dcc.store, dcc.csp, dcc.dsp
        self.premises: dict[str, Premises] = {}
        self.gbcs = GbcsSetup.default(epoch=epoch)  # keys (TEST ONLY), counters, time base of the GBCS
        self.air_faults: list[AirFaults] = []
        self.mid_transfer_faults: list[MidTransferFaults] = []
        self._saved_firmware: dict[int, tuple[int, int | None, bytes | None]] = {}
        self.timing: TimingDraws | None = None  # the realistic preset's draws (None: instant)

    @classmethod
    def from_scenario(
        cls,
        scenario: "Scenario",
        clock: Clock,
        bus: EventBus,
        *,
        store: Store | None = None,
        epoch: datetime = SCENARIO_EPOCH,
        radio_sites: Mapping[str, RadioSiteLike] | None = None,
        first_index: int = 0,
        mid_transfer_faults: bool = True,
        reference_images: ReferenceImages | None = None,
        fast_path: bool = False,
        han_db: sqlite3.Connection | None = None,
    ) -> "DccSystem":
        """The system ``scenario`` describes: its premises in the SMI and, per premises, a Comms
        Hub and emulated devices on a HAN with the scenario's latency, loss, radio model and
        device faults.

        ``radio_sites`` (by premises ID, from a radio backend) put a hub on a radio and its
        emulated devices on the medium behind it; a site's ``real_devices`` stay in the SMI
        but are not emulated (a HIL bench). Premises number ``k`` of the scenario draws its
        random streams from index ``first_index + k`` (a fleet wave passes its first global
        index). ``mid_transfer_faults=False`` leaves the mid-transfer faults to the caller (the
        fleet plays them from its outcome tracker). ``fast_path``: premises without catalogue
        faults advance steady-state block exchanges in one go (emulator/ota/fastpath.py).
        ``han_db``: the HAN side's durable state lives in this database (each hub's OTA sessions,
        each emulated device's download in flash), so a new process on it resumes transfers at
        their offsets (docs/recovery.md); None keeps both in memory."""
        flash = SqliteDownloadFlash(han_db) if han_db is not None else None
        system = cls(clock, bus, scenario.premises, store=store, csp_policy=scenario.csp_policy, epoch=epoch)
        system.gbcs = GbcsSetup.default(scenario.seed, epoch=epoch)  # the devices' keys follow the seed
        system.dsp.cpl_gbcs_versions = scenario.cpl_gbcs_versions
        draws = TimingDraws(scenario.timing.profile, scenario.seed) if scenario.timing.realistic else None
        system.csp.set_timing(draws)
        system.timing = draws
        sites = radio_sites or {}
        for k, spec in enumerate(scenario.premises):
            index = first_index + k
            faults = premises_faults(spec, scenario.behaviours)
            radio_site = sites.get(spec.premises_id)
            han: HanMedium | None = radio_site.han if radio_site is not None else None
            channel: RadioChannel | None = None
            if scenario.radio is not None:
                if radio_site is not None:
                    raise ScenarioError(f"{scenario.source}: radio: the radio model is for the virtual HAN only "
                                        "(--han virtual)")
                params = scenario.radio
                if faults.burst is not None:
                    params = dataclasses.replace(params, burst=faults.burst)
                channel = RadioChannel(params, seed=radio_seed(scenario.seed, index))
            sleepy: dict[int, float | None] = {}
            for device in spec.devices:
                device_type = HAN_DEVICE_TYPES.get(device.device_type.value)
                if device_type is None:
                    continue
                behaviour = faults.behaviours.get(device.eui64)
                wanted = behaviour.sleepy if behaviour is not None and behaviour.sleepy is not None \
                    else device_type is DeviceType.GSME
                if wanted or device.eui64 in faults.sleepy:
                    sleepy[device.eui64] = behaviour.poll_interval_s if behaviour is not None else None
            latency = scenario.han_latency_s
            if draws is not None and channel is None and not scenario.han_latency_explicit:
                latency = draws.han_frame_latency(index)  # realistic: one draw per premises
            site = Premises(
                spec, clock, bus, han=han,
                hub_transport=radio_site.transport if radio_site is not None else None,
                latency=latency, loss=scenario.han_loss, seed=han_seed(scenario.seed, index),
                radio=channel, manipulator=faults.air, sleepy=sleepy if channel is not None else None,
                policy=scenario.ota_policy, device_policies=faults.device_policies,
                behaviours=faults.behaviours, trusted_key=scenario.trusted_keys,
                reference_images=reference_images,
                fast_path=fast_path and not _has_faults(faults),
                real_devices=radio_site.real_devices if radio_site is not None else frozenset(), gbcs=system.gbcs,
                security=scenario.han_security,
                sessions=SqliteSessionStore(han_db, hub=spec.comms_hub) if han_db is not None else None,
                flash=flash,
            )
            for device in spec.devices:  # the CHF and GPF: the hub answers for them itself
                if device.device_type.value in ("CHF", "GPF"):
                    site.hub.own_firmware[device.eui64] = device.firmware_version
            system.add_premises(site)
            if faults.air is not None:
                system.air_faults.append(faults.air)
            if mid_transfer_faults and faults.mid_transfer:
                system.mid_transfer_faults.append(
                    MidTransferFaults(clock, bus, site.hub, site.devices, faults.mid_transfer, faults.air))
        return system

    def add_premises(self, site: Premises) -> None:
        """``site``'s hub joins the CSP (its devices must be in the SMI already)."""
        self.premises[site.spec.premises_id] = site
        self.csp.add_hub(site.hub)

    def describe(self) -> dict[str, Any]:
        """What was built, as plain data (premises, HAN, link model, faults, devices), so two
        ways of building the same scenario can be compared."""
        return {pid: site.describe() for pid, site in self.premises.items()}

    def add_sink(self, sink: UserMessageSink) -> None:
        """Every user message (alerts, asynchronous responses) also goes to ``sink`` (the outbox)."""
        self._sinks.append(sink)

    def start(self) -> None:
        for site in self.premises.values():
            site.start()

    def restore_devices(self) -> int:
        """Give each emulated device the firmware (active and pending image) the database last
        saw it with, and save it with every DSP step from now on; returns how many were restored.
        Call before :meth:`start`. Does nothing on an in-memory database."""
        ledger = self.dsp.ledger
        if not ledger.durable:
            return 0
        saved = ledger.firmware()
        restored = 0
        for site in self.premises.values():
            for eui, device in site.devices.items():
                state = saved.get(eui)
                if state is None:
                    continue
                device.firmware.active_version = state.active_version
                device.firmware.pending_version = state.pending_version
                device.firmware.pending_hash = state.pending_hash
                device.client.current_file_version = state.active_version
                restored += 1
        self._saved_firmware = {eui: (s.active_version, s.pending_version, s.pending_hash) for eui, s in saved.items()}
        self.dsp.step_participants.append(self._save_device_firmware)
        return restored

    def _save_device_firmware(self) -> None:
        from emulator.dcc.ledger import StoredFirmware

        for site in self.premises.values():
            for eui, device in site.devices.items():
                firmware = device.firmware
                state = (firmware.active_version, firmware.pending_version, firmware.pending_hash)
                if self._saved_firmware.get(eui) != state:
                    self.dsp.ledger.put_firmware(eui, StoredFirmware(*state))
                    self._saved_firmware[eui] = state

    def recover(self) -> dict[str, int]:
        """Take up the work an earlier process left open in the database (after :meth:`start`
        and once every sink is attached): see :meth:`emulator.dcc.dsp.Dsp.recover`."""
        return self.dsp.recover()

    def submit(self, sr: ServiceRequest) -> DspResponse:
        for air in self.air_faults:  # the air rules act once a Service Request went in
            air.armed = True
        if isinstance(sr, ActivateFirmware) and not sr.transform and sr.signed_precommand is None:
            response = self._activate_as_dcc_does(sr)
        else:
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

    def _activate_as_dcc_does(self, sr: ActivateFirmware) -> DspResponse:
        """An in-process 11.3 runs DCC's round trip under its one RequestID: CV 4 (the DSP issues
        the CS06 pre-command), the User signs it with its DS key from the GBCS setup (the
        published ZAZ1 supplier key, TEST ONLY), CV 5 (the DSP checks it against what it issued
        and sends it). A CV 4 refused is the answer as it is."""
        transformed = self.dsp.submit(dataclasses.replace(sr, transform=True))
        if transformed.precommand is None:
            return transformed
        supplier = decode_message(transformed.precommand).header.originator
        key = private_key(self.gbcs.protection.keys, supplier, KeyUsage.DIGITAL_SIGNATURE)
        header = dataclasses.replace(sr.header, command_variant=5)
        return self.dsp.submit(ActivateFirmware(header, sr.device_id, b"", sr.execution_datetime,
                                                signed_precommand=sign_precommand(transformed.precommand, key)))

    def datetime_at(self, clock_time: float) -> datetime:
        """The calendar time the DSP gives clock time ``clock_time`` (for ExecutionDateTime)."""
        return self.epoch + timedelta(seconds=clock_time)

    def device(self, eui64: int) -> Any:
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
            if isinstance(value, bytes):
                value = value.hex().upper()  # the GBCS payload, as the journal writes it
            fields[key] = value
        self.bus.emit("dsp", event, message.device, **fields)
        for sink in self._sinks:
            sink(message)


def _has_faults(faults: PremisesFaults) -> bool:
    """Whether a premises has anything from the fault catalogue (the fast path steps aside)."""
    return bool(faults.air is not None or faults.mid_transfer or faults.device_policies or faults.sleepy
                or faults.burst is not None
                or any(b.catalogue or b.profile_changes or b.faults != DeviceFaults()
                       for b in faults.behaviours.values()))
