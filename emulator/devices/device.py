"""One emulated device on a HAN: the OTA client engine run on a transport and a clock, plus the
firmware it runs and the GBCS behaviour around it (alerts, 11.2 and 11.3).

Device types differ in data, not code paths: a PPMID activates as soon as the hub says "now" and
reports CS09 (0x8F8B); a meter reports receipt (0x8F72 / 0x8F1C), keeps the image pending and
activates on 11.3 or on the OTA upgrade command. The client runs on the shared engine host
(:mod:`emulator.ota.host`); the device raises its alerts from the client's typed outcomes. The
device is one node: its OTA frames and its tunnel frames share one APS counter.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import logging
from dataclasses import dataclass
from typing import Any, Iterable

from emulator.han.packet import ApsPacket, OTA_CLUSTER
from emulator.han.security.ke_frames import KEY_ESTABLISHMENT_CLUSTER
from emulator.han.virtual import VirtualPort
from emulator.gbcs.tunnel import TUNNELING_CLUSTER, TunnelError, TunnelMessage
from emulator.gbcs.codes import ActivationResponseCode, GbcsAlertCode
from emulator.ota.actions import (
    Action,
    Activate,
    AlertRaised,
    FirmwareActivated,
    FirmwareActivationFailed,
    ImageChecked,
    Outcome,
)
from emulator.ota.client import ClientProfile, ImageVerifier, OtaClient, accept_any
from emulator.ota.host import EngineHost
from emulator.ota.timeline import shown_details, tunnel_details
from emulator.runtime.clock import Clock, Timer
from emulator.runtime.events import EventBus

from .key_establishment import DeviceKeyEstablishment
from .verification import manufacturer_image_hash

_LOGGER = logging.getLogger(__name__)

CANCEL_EXECUTION_TIME = "cancel"


class DeviceType(str, enum.Enum):
    ESME = "ESME"
    GSME = "GSME"
    PPMID = "PPMID"
    HCALCS = "HCALCS"

    @property
    def is_meter(self) -> bool:
        return self is not DeviceType.PPMID


@dataclass(frozen=True, slots=True)
class DeviceFaults:
    """Device-level faults (OTA-level ones live in :class:`ClientProfile`)."""

    activation_fails: bool = False  # the new image does not start: old version stays
    ignore_gbcs_commands: bool = False


@dataclass(slots=True)
class FirmwareState:
    active_version: int
    pending_version: int | None = None
    pending_hash: bytes | None = None
    scheduled_activation: Timer | None = None


class EmulatedDevice:
    """An emulated device lives on a :class:`~emulator.han.virtual.VirtualHan` (power off detaches it).

    With ``key_establishment`` set, :meth:`start` joins by install code and runs CBKE first; the OTA
    client starts once the link key is in place (a GB device does no OTA before that).
    """

    key_establishment: DeviceKeyEstablishment | None = None

    def __init__(
        self,
        eui64: int,
        device_type: DeviceType,
        profile: ClientProfile,
        transport: VirtualPort,
        clock: Clock,
        bus: EventBus,
        *,
        hub_eui64: int,
        hub_nwk: int = 0x0000,
        verifier: ImageVerifier = accept_any,
        faults: DeviceFaults = DeviceFaults(),
    ) -> None:
        self.eui64 = eui64
        self.device_type = device_type
        self.transport = transport
        self.clock = clock
        self.bus = bus
        self.faults = faults
        self.source = device_type.value.lower()
        self.client = OtaClient(eui64, profile, server_eui64=hub_eui64, server_nwk=hub_nwk, verifier=verifier)
        self.firmware = FirmwareState(profile.current_file_version)
        self.ota = EngineHost(self.client, transport, clock, bus, source=self.source, on_outcome=self._on_outcome,
                              on_activate=self._on_activate)
        transport.set_receiver(self._on_packet)

    @property
    def profile(self) -> ClientProfile:
        return self.client.profile

    @property
    def powered(self) -> bool:
        return self.ota.up

    # -- life cycle ----------------------------------------------------------------------------
    def start(self) -> None:
        self.bus.emit(self.source, "device_started", self.eui64,
                      firmware_version=f"{self.firmware.active_version:08X}")
        if self.key_establishment is not None:
            self.key_establishment.start(self._start_ota)
            return
        self._start_ota()

    def _start_ota(self) -> None:
        self._execute(self.client.start(self.clock.now()))

    def power_off(self) -> None:
        self.ota.up = False
        self.ota.stop()
        self.transport.detach()
        self.bus.emit(self.source, "power_off", self.eui64, offset=self.client.file_offset)

    def power_on(self, *, reannounce_delay_s: float | None = None) -> None:
        self.ota.up = True
        self.transport.reattach()
        self._execute(self.client.reboot(self.clock.now(), reannounce_delay_s=reannounce_delay_s))

    # -- receive -------------------------------------------------------------------------------
    def _on_packet(self, packet: ApsPacket) -> None:
        if not self.ota.up:
            return
        if packet.cluster == OTA_CLUSTER:
            self.ota.receive(packet)
        elif packet.cluster == TUNNELING_CLUSTER:
            self._on_tunnel(packet)
        elif packet.cluster == KEY_ESTABLISHMENT_CLUSTER and self.key_establishment is not None:
            self.key_establishment.receive(packet)

    # -- the client's actions and outcomes -----------------------------------------------------
    def _execute(self, actions: Iterable[Action]) -> None:
        self.ota.execute(actions)

    def _on_activate(self, action: Activate) -> None:
        self._activate(action.file_version, via="ota")

    def _on_outcome(self, outcome: Outcome) -> None:
        match outcome:
            case ImageChecked(reason=None):
                self.firmware.pending_version = self.client.downloaded_file_version
                data = self.client.pending_image or b""
                self.firmware.pending_hash = manufacturer_image_hash(data) or hashlib.sha256(data).digest()
                if self.device_type.is_meter:
                    self._alert(GbcsAlertCode.FIRMWARE_VERIFICATION_SUCCESSFUL, hash=self.firmware.pending_hash)
            case ImageChecked(reason=reason) if self.device_type.is_meter:
                self._alert(GbcsAlertCode.FIRMWARE_VERIFICATION_FAILED, reason=reason)

    def _report(self, outcome: Outcome) -> None:
        """A device-level outcome (activation, alert) on the timeline, as the engine's are."""
        self.ota.report(outcome)

    # -- firmware ------------------------------------------------------------------------------
    def _activate(self, version: int, *, via: str) -> bool:
        now = self.clock.now()
        if self.faults.activation_fails:
            self._report(FirmwareActivationFailed(self.eui64, self.firmware.active_version, via))
            if self.device_type is DeviceType.PPMID:
                self._alert(GbcsAlertCode.PPMID_FIRMWARE_ACTIVATION, success=False,
                            firmware_version=self.firmware.active_version)
            self._execute(self.client.activated(now, self.firmware.active_version))
            return False
        self.firmware.active_version = version
        self.firmware.pending_version = None
        self.firmware.pending_hash = None
        self._report(FirmwareActivated(self.eui64, version, via))
        self._execute(self.client.activated(now, version))
        if self.device_type is DeviceType.PPMID:
            self._alert(GbcsAlertCode.PPMID_FIRMWARE_ACTIVATION, success=True, firmware_version=version)
        else:
            self._alert(GbcsAlertCode.EXECUTING_FIRMWARE_VERSION_CHANGED, firmware_version=version)
        return True

    # -- GBCS tunnel ---------------------------------------------------------------------------
    def _on_tunnel(self, packet: ApsPacket) -> None:
        try:
            message = TunnelMessage.decode(packet.payload)
        except TunnelError as exc:
            self.bus.emit(self.source, "malformed_frame", self.eui64, reason=str(exc))
            return
        if message.kind != "command" or self.faults.ignore_gbcs_commands:
            return
        if message.service == "11.2":
            self._respond(message, firmware_version=self.firmware.active_version)
        elif message.service == "11.3":
            self._on_activate_command(message)

    def _on_activate_command(self, message: TunnelMessage) -> None:
        execution = message.details.get("x")
        if execution == CANCEL_EXECUTION_TIME:
            scheduled = self.firmware.scheduled_activation
            cancelled = scheduled is not None
            if scheduled is not None:
                scheduled.cancel()
                self.firmware.scheduled_activation = None
            self._respond(message, cancelled=cancelled, firmware_version=self.firmware.active_version)
            return
        code = self._check_activation(message.details.get("h", ""))
        if code is not ActivationResponseCode.SUCCESS:
            self._respond(message, response_code=int(code), firmware_version=self.firmware.active_version)
            return
        delay = None if execution is None else float(execution) - self.clock.now()
        if execution is not None and delay is not None and delay > 0:
            if self.firmware.scheduled_activation is not None:
                self.firmware.scheduled_activation.cancel()
            self.firmware.scheduled_activation = self.clock.call_later(delay, self._future_activation)
            self._respond(message, response_code=int(ActivationResponseCode.SUCCESS), scheduled=True,
                          execution_time=float(execution), firmware_version=self.firmware.active_version)
            return
        ok = self._activate(self.firmware.pending_version or self.firmware.active_version, via="11.3")
        code = ActivationResponseCode.SUCCESS if ok else ActivationResponseCode.ACTIVATION_FAILURE
        self._respond(message, response_code=int(code), firmware_version=self.firmware.active_version)

    def _check_activation(self, hash_b64: str) -> ActivationResponseCode:
        if self.firmware.pending_version is None or self.firmware.pending_hash is None:
            return ActivationResponseCode.NO_IMAGE_HELD
        try:
            firmware_hash = base64.b64decode(hash_b64, validate=True)
        except ValueError:
            firmware_hash = b""
        if firmware_hash != self.firmware.pending_hash:
            return ActivationResponseCode.HASH_MISMATCH
        return ActivationResponseCode.SUCCESS

    def _future_activation(self) -> None:
        self.firmware.scheduled_activation = None
        version = self.firmware.pending_version
        ok = version is not None and self._activate(version, via="11.3 future-dated")
        code = GbcsAlertCode.FUTURE_DATED_ACTIVATION_SUCCESS if ok else GbcsAlertCode.FUTURE_DATED_ACTIVATION_FAILURE
        self._alert(code, firmware_version=self.firmware.active_version)

    def _respond(self, command: TunnelMessage, **details: Any) -> None:
        self.bus.emit(self.source, "command_response", self.eui64, service=command.service, **shown_details(details))
        self._tunnel(TunnelMessage("response", command.service, command.transaction, details=details))

    def _alert(self, code: GbcsAlertCode, **details: Any) -> None:
        """Raise a GBCS alert; a ``hash`` (bytes) shows as hex and travels as base64."""
        self._report(AlertRaised(self.eui64, int(code), details))
        self._tunnel(TunnelMessage("alert", alert_code=int(code), details=tunnel_details(details)))

    def _tunnel(self, message: TunnelMessage) -> None:
        if not self.ota.up:
            return
        hub = self.client.server_eui64
        self.transport.send(ApsPacket(self.eui64, hub, self.transport.nwk, self.client.server_nwk,
                                      message.encode(), cluster=TUNNELING_CLUSTER, aps_counter=self.ota.next_aps()))

