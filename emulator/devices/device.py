"""One emulated device on a HAN: the OTA client engine run on a transport and a clock, plus the
firmware it runs and the GBCS behaviour around it (alerts, 11.2 and 11.3).

Device types differ in data, not code paths: a PPMID activates as soon as the hub says "now" and
reports CS09 (0x8F8B); a meter reports receipt (0x8F72 / 0x8F1C), keeps the image pending and
activates on 11.3 or on the OTA upgrade command. The client runs on the shared engine host
(:mod:`emulator.ota.host`); the device raises its alerts from the client's typed outcomes. The
device is one node: its OTA frames and its tunnel frames share one APS counter.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from emulator.han.packet import ApsPacket, OTA_CLUSTER
from emulator.han.transport import HanTransport
from emulator.gbcs import asn1_payloads as asn1
from emulator.gbcs import messages as gbcs_messages
from emulator.gbcs.flow import GbcsSetup, version_bytes
from emulator.gbcs.framing import GeneralSigning, GroupingHeader
from emulator.gbcs.message_codes import MessageCode
from emulator.gbcs.messages import GbcsMessage
from emulator.gbcs.tunnel import TUNNELING_CLUSTER
from emulator.gbcs.codes import ActivationResponseCode, DeviceType, GbcsAlertCode
from emulator.han.security.ke_frames import KEY_ESTABLISHMENT_CLUSTER
from emulator.ota.actions import (
    Action,
    Activate,
    AlertRaised,
    FirmwareActivated,
    FirmwareActivationFailed,
    ImageAlreadyHeld,
    ImageChecked,
    Outcome,
)
from emulator.ota.client import ClientProfile, ImageVerifier, OtaClient, accept_any
from emulator.ota.host import EngineHost
from emulator.ota.timeline import shown_details
from emulator.runtime.clock import Clock, Timer
from emulator.runtime.events import EventBus

from .flash import DownloadFlash, FlashWriter
from .gbcs_agent import DeviceGbcs
from .key_establishment import DeviceKeyEstablishment
from .verification import manufacturer_image_hash

_LOGGER = logging.getLogger(__name__)

CANCEL_EXECUTION_TIME = "cancel"


@dataclass(frozen=True, slots=True)
class DeviceFaults:
    """Device-level faults (OTA-level ones live in :class:`ClientProfile`)."""

    activation_fails: bool = False  # the new image does not start: old version stays
    ignore_gbcs_commands: bool = False
    fdra_hash_of_whole_file: bool = False  # the FDRA's hash covers the whole OTA file, not the Manufacturer Image
    accepts_plaintext_aps: bool = False  # takes unencrypted OTA/Tunneling frames after CBKE (set on its port's
    # APS security where that is made: emulator/certify/device/session.py)
    reads_back_boot_version: bool = False  # 11.2 reads return the version it was built with, not the one it runs
    cbke_send_delay_s: float = 0.0  # each of its CBKE messages goes out this much later (slower than it advertises)
    ignores_no_resources_wait: bool = False  # retries CBKE after 1 s whatever wait time Terminate NO_RESOURCES gave
    trusts_any_issuer: bool = False  # runs CBKE with a certificate from any CA (no issuer check)
    joins_with_well_known_key: bool = False  # joins with ZigBeeAlliance09, not its install-code key (set where
    # its key establishment is made: emulator/certify/device/session.py)


@dataclass(slots=True)
class FirmwareState:
    active_version: int
    pending_version: int | None = None
    pending_hash: bytes | None = None
    scheduled_activation: Timer | None = None
    scheduled_command: Any = None  # the GBCS header of the future-dated CS06 (its 0x00CA repeats its counter)


class EmulatedDevice:
    """An emulated device lives on a :class:`~emulator.han.virtual.VirtualHan` (power off detaches it).

    With ``key_establishment`` set, :meth:`start` joins by install code and runs CBKE first; the OTA
    client starts once the link key is in place (a GB device does no OTA before that).
    """

    key_establishment: DeviceKeyEstablishment | None = None
    flash: FlashWriter | None = None
    """Set (``flash=`` a store): the download survives the process (:mod:`.flash`)."""

    def __init__(
        self,
        eui64: int,
        device_type: DeviceType,
        profile: ClientProfile,
        transport: HanTransport,
        clock: Clock,
        bus: EventBus,
        *,
        hub_eui64: int,
        hub_nwk: int = 0x0000,
        verifier: ImageVerifier = accept_any,
        faults: DeviceFaults = DeviceFaults(),
        gbcs: GbcsSetup | None = None,
        flash: DownloadFlash | None = None,
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
        if gbcs is None:
            from emulator.hub.gbcs_commands import default_setup

            gbcs = default_setup()
        self.gbcs = DeviceGbcs(self, gbcs, sleepy=device_type is DeviceType.GSME)
        if flash is not None:
            self.flash = FlashWriter(eui64, flash, self.client)
            held = self.flash.restore()
            if held is not None:
                _LOGGER.info("device %016X: download of %08X restored from flash at offset %d of %d",
                             eui64, held.file_version, self.client.file_offset, held.image_size)
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
        self._ota_started = True
        self._execute(self.client.start(self.clock.now()))
        self.gbcs.start()

    _ota_started = False

    def rejoin(self) -> None:
        """Leave the network and join again (ZDO Mgmt_Leave_req with Rejoin set, as a Trust Centre
        sends it): a secured device drops its link key, joins with its install code and runs CBKE
        afresh; its OTA client is silent meanwhile and resumes as after a restart."""
        self.bus.emit(self.source, "left_network", self.eui64, rejoin=True)
        if self.key_establishment is None:
            return
        if not self._ota_started:
            self.key_establishment.restart(self._start_ota)
            return
        self.ota.up = False
        self.ota.stop()
        self.key_establishment.restart(self._resume_ota)

    def _resume_ota(self) -> None:
        self.ota.up = True
        self._execute(self.client.reboot(self.clock.now()))

    def power_off(self) -> None:
        self.ota.up = False
        self.ota.stop()
        self.transport.detach()
        self.bus.emit(self.source, "power_off", self.eui64, offset=self.client.file_offset)

    def power_on(self, *, reannounce_delay_s: float | None = None) -> None:
        self.ota.up = True
        self.transport.reattach()
        self._execute(self.client.reboot(self.clock.now(), reannounce_delay_s=reannounce_delay_s))
        if self.flash is not None:
            self.flash.sync()

    # -- receive -------------------------------------------------------------------------------
    def _on_packet(self, packet: ApsPacket) -> None:
        if packet.profile == ZDO_PROFILE:
            if packet.cluster == MGMT_LEAVE_REQ and _leave_with_rejoin(packet.payload, self.eui64):
                self.clock.call_later(0.0, self.rejoin)
            return
        if packet.cluster == KEY_ESTABLISHMENT_CLUSTER and self.key_establishment is not None:
            self.key_establishment.receive(packet)  # also while it rejoins (its OTA client is silent)
            return
        if not self.ota.up:
            return
        if packet.cluster == OTA_CLUSTER:
            self.ota.receive(packet)
            if self.flash is not None:
                self.flash.sync()
            if self.gbcs.sleepy and packet.payload[2:3] == _QUERY_NEXT_IMAGE_RESPONSE:
                self.gbcs.awake()  # awake for its image query: it also asks the hub for queued GBCS
        elif packet.cluster == TUNNELING_CLUSTER:
            self._on_tunnel(packet)

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
                if self.device_type.signed_images:
                    reported = hashlib.sha256(data).digest() if self.faults.fdra_hash_of_whole_file \
                        else self.firmware.pending_hash
                    self._alert(GbcsAlertCode.FIRMWARE_VERIFICATION_SUCCESSFUL, hash=reported)
            case ImageChecked(reason=reason) if self.device_type.signed_images:
                self._alert(GbcsAlertCode.FIRMWARE_VERIFICATION_FAILED, reason=reason)
            case ImageAlreadyHeld(file_version=version) if (
                    self.device_type.signed_images and self.firmware.pending_version == version
                    and self.firmware.pending_hash is not None):
                # Offered again the image it holds verified (a second 11.1 before the 11.3): the
                # meter confirms it (Upgrade End Request SUCCESS) and reports its receipt again, so
                # this distribution ends as the first did (CCS08 and 0x8F72), not at its deadline.
                data = self.client.pending_image or b""
                reported = hashlib.sha256(data).digest() if self.faults.fdra_hash_of_whole_file \
                    else self.firmware.pending_hash
                self._alert(GbcsAlertCode.FIRMWARE_VERIFICATION_SUCCESSFUL, hash=reported)

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
        if self.flash is not None:
            self.flash.sync()
        if self.device_type is DeviceType.PPMID:
            self._alert(GbcsAlertCode.PPMID_FIRMWARE_ACTIVATION, success=True, firmware_version=version)
        else:
            self._alert(GbcsAlertCode.EXECUTING_FIRMWARE_VERSION_CHANGED, firmware_version=version)
        return True

    # -- GBCS -------------------------------------------------------------------------------
    def _on_tunnel(self, packet: ApsPacket) -> None:
        self.gbcs.receive(packet)

    def _on_gbcs_command(self, message: GbcsMessage) -> None:
        """A command that passed the device's security checks (see :mod:`.gbcs_agent`)."""
        if self.faults.ignore_gbcs_commands:
            return
        code = message.header.message_code
        if code == MessageCode.CS06_ACTIVATE_FIRMWARE and isinstance(message.payload, asn1.ActivateFirmwareCommand):
            self._on_activate_command(message, message.payload)
        elif code in _READ_RESPONSES:
            version = self.profile.current_file_version if self.faults.reads_back_boot_version \
                else self.firmware.active_version
            self._respond(message, _READ_RESPONSES[code](message.header, version_bytes(version)),
                          "11.2", firmware_version=version)
        else:
            self.bus.emit(self.source, "command_refused", self.eui64, message_code=f"0x{code:04X}",
                          reason="not a command of the firmware flow")

    def _on_activate_command(self, message: GbcsMessage, command: asn1.ActivateFirmwareCommand) -> None:
        header = message.header
        setup = self.gbcs.setup
        execution = command.execution_date_time
        now_dt = setup.date_time(self.clock.now())
        if execution is not None and execution == gbcs_messages.CANCEL_EXECUTION_DATE_TIME:
            scheduled = self.firmware.scheduled_activation
            cancelled = scheduled is not None
            if scheduled is not None:
                scheduled.cancel()
                self.firmware.scheduled_activation = None
                self.firmware.scheduled_command = None
            self._respond(message, gbcs_messages.cs06_response(header, now_dt, None), "11.3", cancelled=cancelled,
                          firmware_version=self.firmware.active_version)
            return
        code = self._check_activation(command.manufacturer_image_hash)
        active = version_bytes(self.firmware.active_version)
        if code is not ActivationResponseCode.SUCCESS:
            self._respond(message, gbcs_messages.cs06_response(header, now_dt, code, active), "11.3",
                          response_code=int(code), firmware_version=self.firmware.active_version)
            return
        delay = None if execution is None else setup.clock_seconds(execution) - self.clock.now()
        if execution is not None and delay is not None and delay > 0:
            if self.firmware.scheduled_activation is not None:
                self.firmware.scheduled_activation.cancel()
            self.firmware.scheduled_activation = self.clock.call_later(delay, self._future_activation)
            self.firmware.scheduled_command = header
            self._respond(message, gbcs_messages.cs06_response(header, now_dt, None), "11.3",
                          response_code=int(ActivationResponseCode.SUCCESS), scheduled=True,
                          execution_time=setup.clock_seconds(execution), firmware_version=self.firmware.active_version)
            return
        ok = self._activate(self.firmware.pending_version or self.firmware.active_version, via="11.3")
        code = ActivationResponseCode.SUCCESS if ok else ActivationResponseCode.ACTIVATION_FAILURE
        self._respond(message, gbcs_messages.cs06_response(header, now_dt, code,
                                                           version_bytes(self.firmware.active_version)), "11.3",
                      response_code=int(code), firmware_version=self.firmware.active_version)

    def _check_activation(self, firmware_hash: bytes) -> ActivationResponseCode:
        if self.firmware.pending_version is None or self.firmware.pending_hash is None:
            return ActivationResponseCode.NO_IMAGE_HELD
        if firmware_hash != self.firmware.pending_hash:
            return ActivationResponseCode.HASH_MISMATCH
        return ActivationResponseCode.SUCCESS

    def _future_activation(self) -> None:
        self.firmware.scheduled_activation = None
        version = self.firmware.pending_version
        ok = version is not None and self._activate(version, via="11.3 future-dated")
        code = GbcsAlertCode.FUTURE_DATED_ACTIVATION_SUCCESS if ok else GbcsAlertCode.FUTURE_DATED_ACTIVATION_FAILURE
        self._alert(code, firmware_version=self.firmware.active_version)
        self.firmware.scheduled_command = None

    def _respond(self, command: GbcsMessage, response: GeneralSigning, service: str, **details: Any) -> None:
        self.bus.emit(self.source, "command_response", self.eui64, service=service, **shown_details(details))
        if self.ota.up:
            self.gbcs.send(response)

    def _alert(self, code: GbcsAlertCode, **details: Any) -> None:
        """Raise a GBCS alert: on the timeline with ``details``, to the hub as the GBCS message."""
        self._report(AlertRaised(self.eui64, int(code), details))
        if self.ota.up:
            self.gbcs.send(self._alert_message(code, details))

    def _alert_message(self, code: GbcsAlertCode, details: dict[str, Any]) -> GeneralSigning:
        setup = self.gbcs.setup
        counter = setup.counters.next(self.eui64)
        now = setup.date_time(self.clock.now())
        version = details.get("firmware_version", self.firmware.active_version)
        if code is GbcsAlertCode.PPMID_FIRMWARE_ACTIVATION:
            activated = 0 if details.get("success", True) else 1
            return gbcs_messages.cs09_alert(counter, self.eui64, setup.access_control_broker,
                                            asn1.PpmidFirmwareActivationAlert(now, version_bytes(version), activated))
        if code in (GbcsAlertCode.FIRMWARE_VERIFICATION_SUCCESSFUL, GbcsAlertCode.FIRMWARE_VERIFICATION_FAILED):
            digest = details.get("hash")
            calculated = digest if isinstance(digest, bytes) and len(digest) == 32 else bytes(32)
            build = (gbcs_messages.fdra_gsme_alert if self.device_type is DeviceType.GSME
                     else gbcs_messages.fdra_esme_alert)
            return build(counter, self.eui64, setup.supplier, now, calculated,
                         verified=code is GbcsAlertCode.FIRMWARE_VERIFICATION_SUCCESSFUL)
        if code in (GbcsAlertCode.FUTURE_DATED_ACTIVATION_SUCCESS, GbcsAlertCode.FUTURE_DATED_ACTIVATION_FAILURE):
            command = self.firmware.scheduled_command
            result = (ActivationResponseCode.SUCCESS if code is GbcsAlertCode.FUTURE_DATED_ACTIVATION_SUCCESS
                      else ActivationResponseCode.ACTIVATION_FAILURE)
            recipient = command.originator if command is not None else setup.supplier
            command_counter = command.originator_counter if command is not None else 0
            return gbcs_messages.future_dated_activation_alert(counter, self.eui64, recipient, command_counter, now,
                                                               result, version_bytes(version))
        return gbcs_messages.generic_alert(counter, self.eui64, setup.supplier, int(code), now,
                                           dlms_device=self.device_type is not DeviceType.GSME,
                                           critical=code in CRITICAL_ALERTS)


_QUERY_NEXT_IMAGE_RESPONSE = bytes([0x02])
"""ZCL command id (after frame control and sequence number) of the OTA Query Next Image Response."""

ZDO_PROFILE = 0x0000
MGMT_LEAVE_REQ = 0x0034
"""ZDO Mgmt_Leave_req: TSN, DeviceAddress (EUI-64, little-endian), flags (bit 7 Rejoin)."""


def _leave_with_rejoin(payload: bytes, eui64: int) -> bool:
    """Whether a Mgmt_Leave_req asks this device (its EUI-64, or 0: itself) to leave and rejoin."""
    if len(payload) < 10:
        return False
    address = int.from_bytes(payload[1:9], "little")
    return address in (0, eui64) and bool(payload[9] & 0x80)


CRITICAL_ALERTS = frozenset({GbcsAlertCode.FIRMWARE_VERIFICATION_FAILED_AT_POWER_ON})
"""Generic alerts sent as critical (0x1000, signed); the rest non-critical (0x1001, MAC'd).
The project's reading: GBCS's alert table is not modelled here."""

_READ_RESPONSES: dict[int, Callable[[GroupingHeader, bytes | None], GeneralSigning]] = {
    MessageCode.ECS52_READ_ESME_CHF_FIRMWARE_VERSION: gbcs_messages.ecs52_response,
    MessageCode.GCS38_READ_GSME_FIRMWARE_VERSION: gbcs_messages.gcs38_response,
    MessageCode.CS08_READ_PPMID_HCALCS_FIRMWARE_VERSION: gbcs_messages.cs08_response,
}
