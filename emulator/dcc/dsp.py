"""DSP: validates Service Requests against the SMI, answers at once, and turns hub news into alerts.

The DSP is the only part that speaks to DCC Users. :meth:`Dsp.submit` answers a Service Request
synchronously (the devices it rejected, grouped by reason) and forwards the rest to the CSP. The
CSP's verdicts and everything the Comms Hubs report come back through the :class:`CspListener`
methods and become :class:`UserMessage` records for the sink (the outbox). Each step updates the
SMI and the SAT in one transaction and only then hands its messages to the sink, so a failure never
leaves half an event behind.
"""

from __future__ import annotations

import dataclasses
import logging
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any, Callable, Iterator, Mapping

from emulator.dcc.alerts import DccAlertCode, dcc_alert, gbcs_code, make_message
from emulator.dcc.csp import Csp, CspOutcome, WanDistribution
from emulator.dcc.deadlines import DeadlineQueue
from emulator.eui64 import format_eui64, parse_eui64
from emulator.dcc.firmware_image import FirmwareImageError, ImageIdentity, read_image_identity
from emulator.dcc.messages import DspResponse, MessageKind, RejectionReason, ResponseCode, UserMessage
from emulator.dcc.anti_replay import OriginatorCounters, RequestSchemaVersions
from emulator.dcc.sat import SatEvent, ServiceAuditTrail
from emulator.dcc.service_requests import (
    ActivateFirmware,
    ReadFirmwareVersion,
    ServiceReferenceVariant,
    ServiceRequest,
    UpdateFirmware,
    UpdateHanDeviceLog,
    UpdatePPMIDFirmware,
)
from emulator.dcc.smi import (
    DEFAULT_GBCS_VERSION,
    DeviceStatus,
    DeviceType,
    FirmwareStatus,
    Smi,
    SmiDevice,
    UpdateInProgress,
)
from emulator.dcc.store import Store
from emulator.dcc.ledger import IssuedPreCommand, Ledger, PersistentMap, StoredCommand
from emulator.dcc.users import ELIGIBLE_ROLES, SUPPLIER_ROLES, ZAZ1_USERS, UserRole
from emulator.gbcs.codes import ActivationResponseCode, GbcsAlertCode, TransferResult
from emulator.gbcs.messages import decode_message
from emulator.gbcs.precommand import PreCommandError, check_signed_precommand, read_precommand
from emulator.hub.port import CommandResponse, DeviceAlert, HubMessage
from emulator.runtime.clock import Clock

_LOGGER = logging.getLogger(__name__)

# DUIS response codes (see ResponseCode and docs/duis.md "Response codes").
RESPONSE_ACCEPTED = ResponseCode.ACKNOWLEDGED  # I99: accepted, the outcome follows asynchronously
PARTIAL_ACCEPTANCE: Mapping[ServiceReferenceVariant, ResponseCode] = {
    ServiceReferenceVariant.UPDATE_FIRMWARE: ResponseCode.W110101,
    ServiceReferenceVariant.UPDATE_PPMID_FIRMWARE: ResponseCode.W110401,
}
ERROR_MALFORMED = ResponseCode.INVALID_REQUEST  # a field of the SR is wrong (the error text names it)
ERROR_DEVICE_UNKNOWN = ResponseCode.DEVICE_UNKNOWN  # E19: the target is not in the SMI
ERROR_DEVICE_REJECTED = ResponseCode.NOT_VALID_FOR_DEVICE  # E11: wrong device type for the SR
ERROR_NO_ROUTE = ResponseCode.NO_WAN_ROUTE  # E20: the CSP has no WAN route to the device's Comms Hub

GBCS_EPOCH = datetime(2000, 1, 1, tzinfo=timezone.utc)
CANCEL_EXECUTION_DATE = date(3000, 12, 31)  # an 11.3 ExecutionDateTime on this date cancels

TARGET_TYPES: Mapping[ServiceReferenceVariant, frozenset[DeviceType]] = {
    ServiceReferenceVariant.UPDATE_FIRMWARE: frozenset(
        {DeviceType.CHF, DeviceType.ESME, DeviceType.GSME, DeviceType.HCALCS}
    ),
    ServiceReferenceVariant.UPDATE_PPMID_FIRMWARE: frozenset({DeviceType.PPMID}),
    ServiceReferenceVariant.ACTIVATE_FIRMWARE: frozenset({DeviceType.ESME, DeviceType.GSME, DeviceType.HCALCS}),
    ServiceReferenceVariant.READ_FIRMWARE_VERSION: frozenset(DeviceType),
    ServiceReferenceVariant.UPDATE_HAN_DEVICE_LOG: frozenset({DeviceType.CHF}),
}
_DEVICE_LOG_HUB_STATUSES = frozenset({DeviceStatus.INSTALLED_NOT_COMMISSIONED, DeviceStatus.COMMISSIONED})
_DISTRIBUTING, _TRANSFERRED, _REPORTED = "distributing", "transferred", "reported"
_READABLE_STATUSES = frozenset({DeviceStatus.COMMISSIONED, DeviceStatus.SUSPENDED})
_MAX_VERSION = 0xFFFFFFFF
DEFAULT_PRECOMMAND_LIFETIME = 24 * 3600.0
"""Seconds an issued 11.3 pre-command may wait for its signed return (CV 5/6/7); project's choice."""


@dataclass(frozen=True, slots=True)
class PendingCommand:
    """An 11.2/11.3 forwarded to a hub and not yet answered (or a future-dated 11.3 not yet run)."""

    request_id: str
    variant: ServiceReferenceVariant
    device: int
    originator: int | None
    execution_time: float | None = None  # clock time of a future-dated 11.3
    cancel: bool = False
    firmware_hash: bytes = b""  # an 11.3's, kept so a restart can pass it on again


class _Rejected(Exception):
    """Internal: a whole SR is refused; carries the response to give."""

    def __init__(self, code: ResponseCode, error: str, rejected: Mapping[RejectionReason, tuple[int, ...]] | None = None):
        super().__init__(error)
        self.code = code
        self.error = error
        self.rejected = dict(rejected or {})


class Dsp:
    """The Data Service Provider for one DCC (all hubs reached through ``csp``)."""

    def __init__(
        self,
        *,
        clock: Clock,
        store: Store,
        csp: Csp,
        sink: Callable[[UserMessage], None],
        clock_epoch: datetime = GBCS_EPOCH,
        read_image: Callable[..., ImageIdentity] = read_image_identity,
    ) -> None:
        self._clock = clock
        self._store = store
        self._csp = csp
        self._sink = sink
        self._epoch = clock_epoch if clock_epoch.tzinfo else clock_epoch.replace(tzinfo=timezone.utc)
        self._read_image = read_image
        self.smi = Smi(store)
        # The GBCS versions the CPL's firmware entries support: a device on another version goes in
        # InvalidGBCSVersionList of an 11.1/11.4 (docs/dcc.md).
        self.cpl_gbcs_versions: frozenset[str] = frozenset({DEFAULT_GBCS_VERSION})
        self.sat = ServiceAuditTrail(store)
        self.ledger = Ledger(store)  # open work, in the same transactions as the SMI and SAT
        # request ID -> 11.2/11.3 awaiting a response; device -> acknowledged future-dated 11.3
        self._pending: PersistentMap[str, PendingCommand] = PersistentMap(
            self.ledger, "pending", str, self._stored_command, self._command_from)
        self._scheduled: PersistentMap[int, PendingCommand] = PersistentMap(
            self.ledger, "scheduled", parse_eui64, self._stored_command, self._command_from)
        # request ID -> 11.3 pre-command issued on serviceT (CV 4), awaiting the signed one (CV 5/6/7)
        self._issued: dict[str, IssuedPreCommand] = self.ledger.precommands()
        self._precommand_lifetime: float | None = DEFAULT_PRECOMMAND_LIFETIME
        self._outgoing: list[UserMessage] = []  # messages of the step in progress
        self._schema_versions = RequestSchemaVersions(store)  # request ID -> its DUIS schemaVersion
        self._counters = OriginatorCounters(store)
        self._smi_users: set[int] = set()
        self._premises_users: dict[str, set[int]] = {}  # premises -> its suppliers, per 11.1/11.4
        self._in_step = False
        self._deadline: float | None = None  # seconds an 11.1/11.4 may stay open (None: no limit)
        self._command_deadline: float | None = None  # seconds an 11.2/11.3 may await its response
        self._command_deadlines = DeadlineQueue(clock, self.expire_command)
        # device -> (its finished mark, the version before) when an 11.2 read the new version
        # before the PPMID's 0x8F8B arrived: the alert, a moment later, still finds its request.
        self._read_before_alert: dict[int, tuple[UpdateInProgress, int | None]] = {}
        # Called inside every step's transaction before it commits (the system saves the emulated
        # devices' firmware there, so it and the SMI agree after a restart).
        self.step_participants: list[Callable[[], None]] = []
        csp.set_listener(self)

    # ==========================================================================================
    # Service Requests
    # ==========================================================================================
    def submit(self, sr: ServiceRequest) -> DspResponse:
        """Validate ``sr`` and answer at once; never raises for a malformed request."""
        variant = _variant_of(sr)
        request_id = sr.header.request_id
        with self._step():
            if sr.header.schema_version:
                self._schema_versions.record(request_id, sr.header.schema_version)
            self.sat.append(
                self._clock.now(), SatEvent.SERVICE_REQUEST, request_id=request_id, code=variant.value,
                details=_describe(sr),
            )
            try:
                self._authorise(sr, variant)
                if isinstance(sr, (UpdateFirmware, UpdatePPMIDFirmware)):
                    response = self._submit_distribution(sr, variant)
                elif isinstance(sr, ReadFirmwareVersion):
                    response = self._submit_read(sr)
                elif isinstance(sr, UpdateHanDeviceLog):
                    response = self._submit_device_log(sr)
                else:
                    response = self._submit_activate(sr)
            except _Rejected as refusal:
                _LOGGER.info("%s (%s) refused: %s", request_id, variant.value, refusal.error)
                response = DspResponse(
                    request_id, variant.value, refusal.code, rejected=_freeze(refusal.rejected), error=refusal.error
                )
                self.sat.append(
                    self._clock.now(), SatEvent.DSP_REJECTED, request_id=request_id, code=refusal.code,
                    details={"error": refusal.error},
                )
        return response

    # -- who may do what -----------------------------------------------------------------------
    def _roles_of(self, user: int) -> frozenset[UserRole]:
        if user not in self._smi_users:
            self._smi_users = self.smi.all_suppliers()  # the SMI may have grown since
        roles = set(ZAZ1_USERS.get(user, frozenset()))
        if user in self._smi_users:
            roles |= SUPPLIER_ROLES
        return frozenset(roles)

    def _responsible(self, user: int, device: SmiDevice, cache: dict[str, set[int]]) -> bool:
        """A supplier of the device, or of its premises (the default premises splits one dual-fuel
        household between two RTDS Users; docs/duis.md "Users and roles")."""
        if user in device.suppliers.values():
            return True
        if device.premises is None:
            return False
        if device.premises not in cache:
            cache[device.premises] = self.smi.premises_suppliers(device.premises)
        return user in cache[device.premises]

    def _authorise(self, sr: ServiceRequest, variant: ServiceReferenceVariant) -> None:
        """Known User (E1), increasing counter (E4), eligible role (E2), responsible for the
        device (E5). A request without an originator comes from in-process code, not a User."""
        user = sr.header.originator
        if user is None:
            return
        roles = self._roles_of(user)
        if not roles:
            raise _Rejected(ResponseCode.UNKNOWN_USER, f"User {format_eui64(user)} is not a DCC User known here")
        if sr.header.counter is not None and not self._returns_its_precommand(sr, user):
            last = self._counters.claim(user, sr.header.counter)
            if last is not None:
                raise _Rejected(ResponseCode.REPLAYED_COUNTER,
                                f"RequestID counter {sr.header.counter} is not greater than "
                                f"{last}, the last one from {format_eui64(user)}")
        if not roles & ELIGIBLE_ROLES[variant]:
            raise _Rejected(ResponseCode.ROLE_NOT_ELIGIBLE,
                            f"User {format_eui64(user)} ({', '.join(sorted(r.value for r in roles))}) "
                            f"may not send {variant.value}")
        if isinstance(sr, (ReadFirmwareVersion, ActivateFirmware)):
            device = self.smi.get(sr.device_id)
            if device is None:
                return  # E19 follows from the target check
            responsible = self._responsible(user, device, {})
            if not responsible and not (variant is ServiceReferenceVariant.READ_FIRMWARE_VERSION
                                        and roles - SUPPLIER_ROLES):
                raise _Rejected(ResponseCode.NOT_RESPONSIBLE,
                                f"User {format_eui64(user)} is not responsible for device {format_eui64(device.eui64)}")
        if isinstance(sr, UpdateHanDeviceLog):
            hub = self.smi.get(sr.comms_hub)
            if hub is not None and not self._responsible(user, hub, {}):
                raise _Rejected(ResponseCode.NOT_RESPONSIBLE,
                                f"User {format_eui64(user)} is not a supplier of the premises of Comms Hub "
                                f"{format_eui64(hub.eui64)}")

    def _returns_its_precommand(self, sr: ServiceRequest, user: int) -> bool:
        """A CV 5/6/7 under the RequestID of the CV 4 that issued its pre-command, as DCC Boxed's
        own tools send it: that counter was claimed by the CV 4 and is not a replay (once the
        pre-command is used, the same RequestID again is)."""
        if not isinstance(sr, ActivateFirmware) or sr.signed_precommand is None:
            return False
        issued = self._issued.get(sr.header.request_id)
        return issued is not None and issued.originator == user and issued.device == sr.device_id

    # -- 11.1 / 11.4 ---------------------------------------------------------------------------
    def _submit_distribution(
        self, sr: UpdateFirmware | UpdatePPMIDFirmware, variant: ServiceReferenceVariant
    ) -> DspResponse:
        request_id = sr.header.request_id
        if not sr.device_ids:
            raise _Rejected(ERROR_MALFORMED, "DeviceIDList is empty")
        if sr.firmware_version is not None and not 0 <= sr.firmware_version <= _MAX_VERSION:
            raise _Rejected(ERROR_MALFORMED, f"FirmwareVersion {sr.firmware_version:X} is not a 4-byte version (8 hex digits)")
        if not sr.firmware_image:
            raise _Rejected(ERROR_MALFORMED, "FirmwareImage is empty")
        try:
            identity = self._read_image(sr.firmware_image, source=f"{request_id} FirmwareImage")
        except FirmwareImageError as exc:
            raise _Rejected(ERROR_MALFORMED, str(exc)) from None
        if sr.firmware_version is not None and identity.file_version != sr.firmware_version:
            # DCC's own sample requests carry FirmwareVersion 00000000 with an image of version
            # ACDCACDC, so a mismatch is recorded, not refused; the image header's version is used.
            _LOGGER.warning("%s: FirmwareVersion %08X differs from the image header's file version %08X; "
                            "using the header's", request_id, sr.firmware_version, identity.file_version)
            self.sat.append(
                self._clock.now(), SatEvent.SERVICE_REQUEST, request_id=request_id, code="FirmwareVersionMismatch",
                details={"firmware_version": f"{sr.firmware_version:08X}",
                         "image_file_version": f"{identity.file_version:08X}"},
            )
        for eui in sr.device_ids:
            _check_eui(eui)
        now = self._clock.now()
        rejected: dict[RejectionReason, list[int]] = {}
        targets: list[tuple[int, int]] = []
        self._premises_users = {}
        for eui in dict.fromkeys(sr.device_ids):  # a device listed twice is one device
            device = self.smi.get(eui)
            reason = self._distribution_check(device, variant, identity, sr.header.originator)
            if reason is not None:
                rejected.setdefault(reason, []).append(eui)
                self.sat.append(now, SatEvent.DSP_REJECTED, request_id=request_id, device=eui, code=reason.value)
                continue
            assert device is not None and device.comms_hub is not None
            self.smi.start_update(
                UpdateInProgress(eui, request_id, variant.value, identity.file_version, sr.header.originator, now)
            )
            self.sat.append(now, SatEvent.DSP_ACCEPTED, request_id=request_id, device=eui)
            targets.append((eui, device.comms_hub))
        if targets:
            self.ledger.put_distribution(request_id, sr.firmware_image, tuple(targets),
                                         variant is ServiceReferenceVariant.UPDATE_PPMID_FIRMWARE, self.absolute(now))
            self._arm_deadline(request_id, self.absolute(now))
            self._csp.distribute(
                WanDistribution(
                    request_id, sr.firmware_image, tuple(targets),
                    activate_now=variant is ServiceReferenceVariant.UPDATE_PPMID_FIRMWARE,
                )
            )
        code = PARTIAL_ACCEPTANCE[variant] if rejected else RESPONSE_ACCEPTED
        return DspResponse(
            request_id, variant.value, code, accepted=tuple(d for d, _ in targets),
            rejected={reason: tuple(devs) for reason, devs in rejected.items()},
        )

    def _distribution_check(
        self, device: SmiDevice | None, variant: ServiceReferenceVariant, image: ImageIdentity,
        user: int | None = None,
    ) -> RejectionReason | None:
        """The seed's DSP checks, in its order; None when the device may have the image.
        A device the requesting User is not responsible for is an invalid device for it."""
        if device is None or device.device_type not in TARGET_TYPES[variant] or device.comms_hub is None:
            return RejectionReason.INVALID_DEVICE
        if user is not None and not self._responsible(user, device, self._premises_users):
            return RejectionReason.INVALID_DEVICE
        if device.status is not DeviceStatus.COMMISSIONED:
            return RejectionReason.NOT_COMMISSIONED
        model = device.model
        if (
            image.manufacturer_code != model.manufacturer_code
            or image.image_type != model.image_type
            or (image.min_hardware_version is not None and model.hardware_version < image.min_hardware_version)
            or (image.max_hardware_version is not None and model.hardware_version > image.max_hardware_version)
        ):
            return RejectionReason.FIRMWARE_NOT_APPLICABLE
        if device.gbcs_version not in self.cpl_gbcs_versions:
            return RejectionReason.INVALID_GBCS_VERSION
        if self.smi.update_in_progress(device.eui64) is not None:
            return RejectionReason.FIRMWARE_UPDATE_IN_PROGRESS
        return None

    # -- 11.2 ----------------------------------------------------------------------------------
    def _submit_read(self, sr: ReadFirmwareVersion) -> DspResponse:
        device = self._single_target(sr.device_id, ServiceReferenceVariant.READ_FIRMWARE_VERSION, _READABLE_STATUSES)
        self._claim_request_id(sr.header.request_id)
        assert device.comms_hub is not None
        delivery = sr.header.delivery
        local_command: bytes | None = None
        if delivery.returned:
            local_command = self._csp.command_for_local_delivery(
                device.comms_hub, device.eui64, request_id=sr.header.request_id, send=delivery.over_wan)
            if local_command is None:
                raise _Rejected(ERROR_NO_ROUTE, f"no route to Comms Hub {format_eui64(device.comms_hub)}")
            if not delivery.over_wan:  # CV 2: the User delivers it; the DSP awaits nothing
                return self._returned_for_local_delivery(
                    sr.header.request_id, ServiceReferenceVariant.READ_FIRMWARE_VERSION, device, local_command)
        elif not self._csp.read_firmware_version(device.comms_hub, device.eui64, request_id=sr.header.request_id):
            raise _Rejected(ERROR_NO_ROUTE, f"no WAN route to Comms Hub {format_eui64(device.comms_hub)}")
        self._pending[sr.header.request_id] = PendingCommand(
            sr.header.request_id, ServiceReferenceVariant.READ_FIRMWARE_VERSION, device.eui64, sr.header.originator
        )
        self._arm_command_deadline(sr.header.request_id, self.absolute(self._clock.now()))
        if local_command is not None:  # CV 3: sent, and a copy returned
            return self._returned_for_local_delivery(
                sr.header.request_id, ServiceReferenceVariant.READ_FIRMWARE_VERSION, device, local_command)
        return self._accepted_single(sr.header.request_id, ServiceReferenceVariant.READ_FIRMWARE_VERSION, device)

    # -- 8.11 ----------------------------------------------------------------------------------
    def _submit_device_log(self, sr: UpdateHanDeviceLog) -> DspResponse:
        """CCS01 (add) / CCS02 (remove) to the Comms Hub named by the RequestID's target; the
        device must be in the SMI (E19) and not the Comms Hub itself (E11)."""
        variant = ServiceReferenceVariant.UPDATE_HAN_DEVICE_LOG
        hub = self._single_target(sr.comms_hub, variant, _DEVICE_LOG_HUB_STATUSES)
        _check_eui(sr.device_id)
        device = self.smi.get(sr.device_id)
        if device is None:
            raise _Rejected(ERROR_DEVICE_UNKNOWN, f"DeviceID {format_eui64(sr.device_id)} is not in the SMI",
                            {RejectionReason.INVALID_DEVICE: (sr.device_id,)})
        if device.device_type in (DeviceType.CHF, DeviceType.GPF):
            raise _Rejected(ERROR_DEVICE_REJECTED, f"DeviceID {format_eui64(sr.device_id)} is a "
                            f"{device.device_type.value}: it is not a HAN device of the Device Log",
                            {RejectionReason.INVALID_DEVICE: (sr.device_id,)})
        if sr.add and (sr.install_code is None or sr.join_time_period is None):
            raise _Rejected(ERROR_MALFORMED, "an 8.11 Add carries InstallCode and JoinTimePeriod")
        self._claim_request_id(sr.header.request_id)
        install_code = sr.install_code if sr.add else None
        delivery = sr.header.delivery
        local_command: bytes | None = None
        if delivery.returned:  # CV 2/3, as 11.2's
            local_command = self._csp.device_log_command_for_local_delivery(
                hub.eui64, sr.device_id, install_code, sr.join_time_period, request_id=sr.header.request_id,
                send=delivery.over_wan)
            if local_command is None:
                raise _Rejected(ERROR_NO_ROUTE, f"no route to Comms Hub {format_eui64(hub.eui64)}")
            if not delivery.over_wan:  # CV 2: the User delivers it; the DSP awaits nothing
                return self._returned_for_local_delivery(sr.header.request_id, variant, hub, local_command)
        elif not self._csp.update_han_device_log(hub.eui64, sr.device_id, install_code, sr.join_time_period,
                                                 request_id=sr.header.request_id):
            raise _Rejected(ERROR_NO_ROUTE, f"no WAN route to Comms Hub {format_eui64(hub.eui64)}")
        self._pending[sr.header.request_id] = PendingCommand(sr.header.request_id, variant, hub.eui64,
                                                             sr.header.originator)
        self._arm_command_deadline(sr.header.request_id, self.absolute(self._clock.now()))
        if local_command is not None:  # CV 3: sent, and a copy returned
            return self._returned_for_local_delivery(sr.header.request_id, variant, hub, local_command)
        return self._accepted_single(sr.header.request_id, variant, hub)

    # -- 11.3 ----------------------------------------------------------------------------------
    def _submit_activate(self, sr: ActivateFirmware) -> DspResponse:
        if sr.signed_precommand is not None:
            return self._submit_signed_precommand(sr, sr.signed_precommand)
        if len(sr.firmware_hash) != 32:
            raise _Rejected(
                ERROR_MALFORMED, f"FirmwareHash is {len(sr.firmware_hash)} bytes; a SHA-256 hash is 32 bytes"
            )
        device = self._single_target(
            sr.device_id, ServiceReferenceVariant.ACTIVATE_FIRMWARE, frozenset({DeviceStatus.COMMISSIONED})
        )
        request_id = sr.header.request_id
        self._claim_request_id(request_id)
        execution_time, cancel = self._execution_time(sr.execution_datetime)
        assert device.comms_hub is not None
        if sr.transform:
            return self._transform_activate(sr, device, execution_time, cancel)
        if not self._csp.activate_firmware(
            device.comms_hub, device.eui64, sr.firmware_hash, execution_time, request_id=request_id, cancel=cancel
        ):
            raise _Rejected(ERROR_NO_ROUTE, f"no WAN route to Comms Hub {format_eui64(device.comms_hub)}")
        self._pending[request_id] = PendingCommand(
            request_id, ServiceReferenceVariant.ACTIVATE_FIRMWARE, device.eui64, sr.header.originator,
            execution_time, cancel, sr.firmware_hash,
        )
        self._arm_command_deadline(request_id, self.absolute(self._clock.now()))
        if cancel:
            self._cancel_scheduled(device, request_id)
        return self._accepted_single(request_id, ServiceReferenceVariant.ACTIVATE_FIRMWARE, device)

    def _transform_activate(
        self, sr: ActivateFirmware, device: SmiDevice, execution_time: float | None, cancel: bool
    ) -> DspResponse:
        """11.3 CV 4 on serviceT: answer I0 with the CS06 pre-command for the User to sign, and
        keep what was issued (in the ledger, so a restart still knows it) for the CV 5 to come."""
        request_id = sr.header.request_id
        assert device.comms_hub is not None
        precommand = self._csp.transform_activation(
            device.comms_hub, device.eui64, sr.firmware_hash, execution_time, request_id=request_id, cancel=cancel)
        if precommand is None:
            raise _Rejected(ERROR_NO_ROUTE, f"no WAN route to Comms Hub {format_eui64(device.comms_hub)}")
        now = self.absolute(self._clock.now())
        self._forget_expired_precommands(now)
        issued = IssuedPreCommand(request_id, device.eui64, sr.header.originator,
                                  None if execution_time is None else self.absolute(execution_time), cancel,
                                  precommand, now)
        self.ledger.put_precommand(issued)
        self._issued[request_id] = issued
        self.sat.append(self._clock.now(), SatEvent.DSP_ACCEPTED, request_id=request_id, device=device.eui64,
                        details={"precommand": precommand.hex()})
        return DspResponse(request_id, ServiceReferenceVariant.ACTIVATE_FIRMWARE.value, ResponseCode.SUCCESS,
                           accepted=(device.eui64,), precommand=precommand)

    def _submit_signed_precommand(self, sr: ActivateFirmware, signed: bytes) -> DspResponse:
        """11.3 CV 5: the signed pre-command must be one issued for this device (CV 4), byte for
        byte with a 64-octet signature after it, else E100; it then goes to the hub for the ACB's
        MAC. Whether the signature is the supplier's the meter decides (command_refused)."""
        device = self._single_target(
            sr.device_id, ServiceReferenceVariant.ACTIVATE_FIRMWARE, frozenset({DeviceStatus.COMMISSIONED})
        )
        request_id = sr.header.request_id
        self._claim_request_id(request_id)
        try:
            read_precommand(signed, signed=True)
        except PreCommandError as exc:
            raise _Rejected(ERROR_MALFORMED, f"SignedPreCommand/GBCSPayload: {exc}") from None
        candidates = [c for c in self._issued.values() if c.device == device.eui64]
        candidates.sort(key=lambda c: c.request_id != request_id)  # the same RequestID first
        issued: IssuedPreCommand | None = None
        why = f"no pre-command was issued for device {format_eui64(device.eui64)} (11.3 CV 4 on serviceT)"
        for candidate in candidates:
            try:
                command = check_signed_precommand(signed, candidate.precommand)
            except PreCommandError as exc:
                why = f"SignedPreCommand/GBCSPayload: {exc}"
                continue
            issued = candidate
            break
        if issued is None:
            raise _Rejected(ERROR_MALFORMED, why)
        expiry = self._precommand_expiry(issued)
        if expiry is not None and self.absolute(self._clock.now()) >= expiry:
            self._use_precommand(issued.request_id)
            when = datetime.fromtimestamp(expiry, timezone.utc).isoformat(timespec="seconds")
            raise _Rejected(ERROR_MALFORMED,
                            f"SignedPreCommand/GBCSPayload: the pre-command issued for {issued.request_id} expired "
                            f"at {when} ({self._precommand_lifetime:g} s after it was issued); ask for a new one "
                            "(11.3 CV 4 on serviceT)")
        execution_time = None if issued.execution_time is None else self._clock_time(issued.execution_time)
        assert device.comms_hub is not None
        delivery = sr.header.delivery
        local_command: bytes | None = None
        if delivery.returned:
            local_command = self._csp.command_for_local_delivery(
                device.comms_hub, device.eui64, request_id=request_id, send=delivery.over_wan, signed_precommand=signed)
            if local_command is None:
                raise _Rejected(ERROR_NO_ROUTE, f"no route to Comms Hub {format_eui64(device.comms_hub)}")
            if not delivery.over_wan:  # CV 6: the User delivers it; the DSP awaits nothing
                self._use_precommand(issued.request_id)
                return self._returned_for_local_delivery(
                    request_id, ServiceReferenceVariant.ACTIVATE_FIRMWARE, device, local_command)
        elif not self._csp.send_signed_precommand(device.comms_hub, device.eui64, signed, request_id=request_id):
            raise _Rejected(ERROR_NO_ROUTE, f"no WAN route to Comms Hub {format_eui64(device.comms_hub)}")
        self._use_precommand(issued.request_id)
        image_hash = getattr(decode_message(command.encode()).payload, "manufacturer_image_hash", b"")
        self._pending[request_id] = PendingCommand(
            request_id, ServiceReferenceVariant.ACTIVATE_FIRMWARE, device.eui64, sr.header.originator,
            execution_time, issued.cancel, image_hash,
        )
        self._arm_command_deadline(request_id, self.absolute(self._clock.now()))
        if issued.cancel:
            self._cancel_scheduled(device, request_id)
        if local_command is not None:  # CV 7: sent, and a copy returned
            return self._returned_for_local_delivery(
                request_id, ServiceReferenceVariant.ACTIVATE_FIRMWARE, device, local_command)
        return self._accepted_single(request_id, ServiceReferenceVariant.ACTIVATE_FIRMWARE, device)

    def _returned_for_local_delivery(
        self, request_id: str, variant: ServiceReferenceVariant, device: SmiDevice, command: bytes
    ) -> DspResponse:
        """I0 with ``LocalCommand{GBCSPayload}``: the command for the User to deliver locally."""
        self.sat.append(self._clock.now(), SatEvent.DSP_ACCEPTED, request_id=request_id, device=device.eui64,
                        details={"local_command": command.hex()})
        return DspResponse(request_id, variant.value, ResponseCode.SUCCESS, accepted=(device.eui64,),
                           local_command=command)

    def issued_precommand(self, request_id: str) -> IssuedPreCommand | None:
        """The 11.3 pre-command issued for ``request_id`` (CV 4), awaiting the User's CV 5/6/7."""
        return self._issued.get(request_id)

    def set_precommand_lifetime(self, seconds: float | None) -> None:
        """An issued pre-command signed and returned more than ``seconds`` after it was issued is
        refused with E100 (and forgotten); None: pre-commands never expire. Applies to those
        already issued too (the ledger keeps when each was issued)."""
        self._precommand_lifetime = seconds

    def _precommand_expiry(self, issued: IssuedPreCommand) -> float | None:
        return None if self._precommand_lifetime is None else issued.issued + self._precommand_lifetime

    def _use_precommand(self, request_id: str) -> None:
        self._issued.pop(request_id, None)
        self.ledger.delete_precommand(request_id)

    def _forget_expired_precommands(self, now: float) -> None:
        """Drop pre-commands expired for longer than a lifetime (until then a late CV 5 is told
        that its pre-command expired rather than that it was never issued)."""
        if self._precommand_lifetime is None:
            return
        for issued in list(self._issued.values()):
            if now >= issued.issued + 2 * self._precommand_lifetime:
                self._use_precommand(issued.request_id)

    def _execution_time(self, when: datetime | None) -> tuple[float | None, bool]:
        """Clock time of an ExecutionDateTime (None = now), and whether it means "cancel"."""
        if when is None:
            return None, False
        aware = when if when.tzinfo else when.replace(tzinfo=timezone.utc)
        seconds = (aware - self._epoch).total_seconds()
        if aware.date() == CANCEL_EXECUTION_DATE:
            return seconds, True
        if seconds <= self._clock.now():
            return None, False  # project's choice: a date already passed means "now"
        return seconds, False

    def _cancel_scheduled(self, device: SmiDevice, request_id: str) -> None:
        previous = self._scheduled.pop(device.eui64, None)
        if device.firmware_status is FirmwareStatus.ACTIVATION_SCHEDULED:
            self.smi.set_firmware_status(device.eui64, FirmwareStatus.IMAGE_HELD, device.pending_firmware_version)
        self.sat.append(
            self._clock.now(), SatEvent.SMI_UPDATED, request_id=request_id, device=device.eui64,
            code="FutureActivationCancelled",
            details={"cancelled_request_id": previous.request_id if previous else None},
        )

    # -- helpers for single-device SRs ---------------------------------------------------------
    def _single_target(
        self, eui: int, variant: ServiceReferenceVariant, statuses: frozenset[DeviceStatus]
    ) -> SmiDevice:
        _check_eui(eui)
        device = self.smi.get(eui)
        if device is None or device.device_type not in TARGET_TYPES[variant] or device.comms_hub is None:
            what = "is not in the SMI" if device is None else f"is a {device.device_type.value}"
            raise _Rejected(
                ERROR_DEVICE_UNKNOWN if device is None else ERROR_DEVICE_REJECTED,
                f"device {format_eui64(eui)} {what}: not a valid target of {variant.value}",
                {RejectionReason.INVALID_DEVICE: (eui,)},
            )
        if device.status not in statuses:
            raise _Rejected(
                ResponseCode.DEVICE_STATUS, f"device {format_eui64(eui)} is {device.status.value}",
                {RejectionReason.NOT_COMMISSIONED: (eui,)},
            )
        return device

    def _claim_request_id(self, request_id: str) -> None:
        if request_id in self._pending:
            raise _Rejected(ERROR_MALFORMED, f"RequestID {request_id} is already awaiting a response")

    def _accepted_single(self, request_id: str, variant: ServiceReferenceVariant, device: SmiDevice) -> DspResponse:
        self.sat.append(self._clock.now(), SatEvent.DSP_ACCEPTED, request_id=request_id, device=device.eui64)
        return DspResponse(request_id, variant.value, RESPONSE_ACCEPTED, accepted=(device.eui64,))

    # ==========================================================================================
    # CSP reports (CspListener)
    # ==========================================================================================
    def csp_rejected(self, request_id: str, device: int, outcome: CspOutcome) -> None:
        code = DccAlertCode(outcome.value)
        with self._step():
            mark = self._finish_update(device)
            now = self._clock.now()
            # The seed asks for an individual SAT entry per N19 device; every rejection gets one.
            self.sat.append(now, SatEvent.CSP_REJECTED, request_id=request_id, device=device, code=code.value)
            self._emit(dcc_alert(code, time=now, device=device, request_id=request_id,
                                 recipient=_recipient(mark.originator if mark else None)))

    def csp_approved(self, request_id: str, devices: tuple[int, ...]) -> None:
        """N59 to every responsible supplier of each device's premises except the requester."""
        with self._step():
            self.ledger.distribution_approved(request_id)
            now = self._clock.now()
            suppliers_at: dict[str, set[int]] = {}
            for eui in devices:
                device = self.smi.get(eui)
                mark = self.smi.update_in_progress(eui)
                if device is None or device.premises is None:
                    continue
                if device.premises not in suppliers_at:
                    suppliers_at[device.premises] = self.smi.premises_suppliers(device.premises)
                requester = mark.originator if mark else None
                details = {"premises": device.premises, "device_type": device.device_type.value,
                           "firmware_version": _hex(mark.firmware_version if mark else None)}
                for supplier in sorted(suppliers_at[device.premises] - {requester}):
                    self._emit(dcc_alert(
                        DccAlertCode.N59, time=now, device=eui, request_id=request_id,
                        recipient=format_eui64(supplier), details=details,
                    ))

    def hub_delivery(self, request_id: str, hub: int, devices: tuple[int, ...], delivered: bool) -> None:
        code = DccAlertCode.N61 if delivered else DccAlertCode.N60
        with self._step():
            if delivered:
                self.ledger.hub_delivered(request_id, hub)
            now = self._clock.now()
            for eui in devices:
                mark = self._finish_update(eui) if not delivered else self.smi.update_in_progress(eui)
                self._emit(dcc_alert(
                    code, time=now, device=eui, request_id=request_id,
                    recipient=_recipient(mark.originator if mark else None),
                    details={"comms_hub": format_eui64(hub),
                             "firmware_version": _hex(mark.firmware_version if mark else None)},
                ))

    def hub_message(self, message: HubMessage) -> None:
        """Everything a Comms Hub sends upstream arrives here (through the CSP)."""
        with self._step():
            device = self.smi.get(message.device)
            if device is None:
                _LOGGER.warning("hub %s reported on unknown device %s", format_eui64(message.hub),
                                format_eui64(message.device))
                self._record_unattributed(message, "device not in the SMI")
                return
            if isinstance(message, CommandResponse):
                self._on_command_response(message, device)
                return
            handler = self._ALERT_HANDLERS.get(message.alert_code, Dsp._on_other_device_alert)
            handler(self, message, device)

    # -- device alerts -------------------------------------------------------------------------
    def _on_transfer_result(self, alert: DeviceAlert, device: SmiDevice) -> None:
        """CCS08 0x8F8A/0x8F89 -> N62 carrying the result; a failure ends the update."""
        success = alert.alert_code == GbcsAlertCode.CCS08_TRANSFER_SUCCESS
        default = TransferResult.TRANSFERRED if success else TransferResult.TRANSFER_FAILED
        result = _enum_detail(alert, "result", TransferResult, default)
        mark = self.smi.update_in_progress(device.eui64)
        about = alert.details.get("request_id")
        request_id = about if isinstance(about, str) else (mark.request_id if mark else None)
        if mark is not None and request_id == mark.request_id:
            if not success:
                self._finish_update(device.eui64)
            elif device.device_type in (DeviceType.CHF, DeviceType.GPF):
                # The hub's own image: nothing further will report on it.
                self._finish_update(device.eui64)
                self.smi.set_firmware_status(device.eui64, FirmwareStatus.IMAGE_HELD, mark.firmware_version)
            else:
                self._progress(mark, _TRANSFERRED)
        else:
            mark = None  # about an earlier distribution (e.g. its image discarded): not the current one
        # The version CCS08 reports; the distribution's when the hub's alert carried none.
        ccs08_version = _int_detail(alert, "firmware_version")
        if ccs08_version is None and mark is not None:
            ccs08_version = mark.firmware_version
        details = {
            "alert_code": gbcs_code(alert.alert_code), "result": int(result), "result_name": result.name,
            "comms_hub": format_eui64(alert.hub), "firmware_version": _hex(ccs08_version),
        }
        for recipient in self._recipients(device, mark.originator if mark else None):
            self._emit(dcc_alert(DccAlertCode.N62, time=alert.time, device=device.eui64,
                                 request_id=request_id, recipient=recipient, details=details))

    def _on_ppmid_activation(self, alert: DeviceAlert, device: SmiDevice) -> None:
        """0x8F8B -> N39; on success the SMI takes the new version and N49 follows."""
        mark = self.smi.update_in_progress(device.eui64)
        if mark is not None:
            self._progress(mark, _REPORTED)
        success = bool(alert.details.get("success", True))
        version = _int_detail(alert, "firmware_version")
        read_first = self._read_before_alert.pop(device.eui64, None)
        previous_version: int | None = device.firmware_version
        if mark is None and read_first is not None and read_first[0].firmware_version == version:
            # An 11.2 read the new version (and ended the update) before this alert arrived.
            mark, previous_version = read_first
        request_id = mark.request_id if mark else None
        recipients = self._recipients(device, mark.originator if mark else None)
        details = {"alert_code": gbcs_code(alert.alert_code), "success": success, "firmware_version": _hex(version)}
        for recipient in recipients:
            self._emit(dcc_alert(DccAlertCode.N39, time=alert.time, device=device.eui64, request_id=request_id,
                                 recipient=recipient, details=details))
        if success and version is not None:
            self._record_new_version(device, version, request_id, restore=False)
            for recipient in recipients:
                self._emit(dcc_alert(
                    DccAlertCode.N49, time=alert.time, device=device.eui64, request_id=request_id,
                    recipient=recipient,
                    details={"previous_version": _hex(previous_version), "firmware_version": _hex(version),
                             "device_type": device.device_type.value},
                ))

    def _on_verification(self, alert: DeviceAlert, device: SmiDevice) -> None:
        """0x8F72/0x8F1C after an 11.1 transfer: forwarded; success means the image is held."""
        mark = self.smi.update_in_progress(device.eui64)
        if mark is not None:
            self._progress(mark, _REPORTED)
        if alert.alert_code == GbcsAlertCode.FIRMWARE_VERIFICATION_SUCCESSFUL and mark is not None:
            self.smi.set_firmware_status(device.eui64, FirmwareStatus.IMAGE_HELD, mark.firmware_version)
        self._forward_device_alert(alert, device, mark.request_id if mark else None,
                                   mark.originator if mark else None)

    def _on_future_activation_outcome(self, alert: DeviceAlert, device: SmiDevice) -> None:
        """0x8F66/0x8F67: the outcome of a future-dated 11.3."""
        scheduled = self._scheduled.pop(device.eui64, None)
        request_id = scheduled.request_id if scheduled else None
        if alert.alert_code == GbcsAlertCode.FUTURE_DATED_ACTIVATION_SUCCESS:
            version = _int_detail(alert, "firmware_version")
            if version is None:
                version = device.pending_firmware_version
            if version is not None:
                self._record_new_version(device, version, request_id, restore=True)
        elif device.firmware_status is FirmwareStatus.ACTIVATION_SCHEDULED:
            self.smi.set_firmware_status(device.eui64, FirmwareStatus.IMAGE_HELD, device.pending_firmware_version)
        self._forward_device_alert(alert, device, request_id, scheduled.originator if scheduled else None)

    def _on_other_device_alert(self, alert: DeviceAlert, device: SmiDevice) -> None:
        mark = self.smi.update_in_progress(device.eui64)
        self._forward_device_alert(alert, device, mark.request_id if mark else None,
                                   mark.originator if mark else None)

    _ALERT_HANDLERS: Mapping[int, Callable[["Dsp", DeviceAlert, SmiDevice], None]] = {
        GbcsAlertCode.CCS08_TRANSFER_SUCCESS: _on_transfer_result,
        GbcsAlertCode.CCS08_TRANSFER_FAILURE: _on_transfer_result,
        GbcsAlertCode.PPMID_FIRMWARE_ACTIVATION: _on_ppmid_activation,
        GbcsAlertCode.FIRMWARE_VERIFICATION_SUCCESSFUL: _on_verification,
        GbcsAlertCode.FIRMWARE_VERIFICATION_FAILED: _on_verification,
        GbcsAlertCode.FUTURE_DATED_ACTIVATION_SUCCESS: _on_future_activation_outcome,
        GbcsAlertCode.FUTURE_DATED_ACTIVATION_FAILURE: _on_future_activation_outcome,
    }

    def _forward_device_alert(
        self, alert: DeviceAlert, device: SmiDevice, request_id: str | None, originator: int | None
    ) -> None:
        details = {key: _plain(value) for key, value in alert.details.items()}
        details["comms_hub"] = format_eui64(alert.hub)
        if alert.gbcs is not None:
            details["gbcs_payload"] = alert.gbcs  # DUIS GBCSPayload: the device's alert as it sent it
        for recipient in self._recipients(device, originator):
            self._emit(make_message(
                MessageKind.DEVICE_ALERT, gbcs_code(alert.alert_code), time=alert.time, device=device.eui64,
                request_id=request_id, recipient=recipient, details=details,
            ))

    # -- command responses ---------------------------------------------------------------------
    def _on_command_response(self, response: CommandResponse, device: SmiDevice) -> None:
        pending = self._pending.pop(response.request_id, None)
        if pending is None or pending.device != device.eui64:
            if pending is not None:
                self._pending[response.request_id] = pending
            _LOGGER.warning("response %s from %s matches no forwarded request", response.request_id,
                            format_eui64(device.eui64))
            self._record_unattributed(response, "response to no forwarded request")
            return
        self._command_deadlines.discard(response.request_id)  # answered: its deadline is moot
        if pending.variant is ServiceReferenceVariant.READ_FIRMWARE_VERSION:
            self._on_read_response(response, device, pending)
        elif pending.variant is ServiceReferenceVariant.UPDATE_HAN_DEVICE_LOG:
            self._respond(response, device, pending, {
                key: _plain(value) for key, value in response.details.items() if key in ("device", "added", "success")})
        else:
            self._on_activate_response(response, device, pending)

    def _on_read_response(self, response: CommandResponse, device: SmiDevice, pending: PendingCommand) -> None:
        """11.2: pass the version on; a new version updates the SMI (and lifts a suspension)."""
        version = _int_detail(response, "firmware_version")
        if version is not None and version != device.firmware_version:
            self._record_new_version(device, version, pending.request_id, restore=True)
            mark = self.smi.update_in_progress(device.eui64)
            if mark is not None and mark.firmware_version == version:
                self._finish_update(device.eui64)  # e.g. a PPMID whose 0x8F8B never arrived
                self._read_before_alert[device.eui64] = (mark, device.firmware_version)
        self._respond(response, device, pending, {"firmware_version": _hex(version)})

    def _on_activate_response(self, response: CommandResponse, device: SmiDevice, pending: PendingCommand) -> None:
        raw_code = response.details.get("response_code")
        future = pending.execution_time is not None
        if future and (raw_code is None or raw_code == ActivationResponseCode.SUCCESS):
            # A future-dated command is acknowledged now; its outcome comes as 0x8F66/0x8F67.
            if not pending.cancel:
                self._scheduled[device.eui64] = pending
                self.smi.set_firmware_status(
                    device.eui64, FirmwareStatus.ACTIVATION_SCHEDULED, device.pending_firmware_version
                )
            self._respond(response, device, pending, {
                "acknowledged": True, "execution_time": pending.execution_time, "cancelled": pending.cancel,
            })
            return
        # A missing or unknown code must not update the SMI: it is taken as an activation failure.
        code = _enum_detail(response, "response_code", ActivationResponseCode, ActivationResponseCode.ACTIVATION_FAILURE)
        version = _int_detail(response, "firmware_version")
        if code is ActivationResponseCode.SUCCESS:
            new_version = version if version is not None else device.pending_firmware_version
            if new_version is not None:
                self._record_new_version(device, new_version, pending.request_id, restore=True)
        self._finish_update(device.eui64)
        self._respond(response, device, pending, {
            # not "response_code": that key is the DUIS ResponseCode for the renderer
            "activation_result": int(code), "activation_result_name": code.name, "firmware_version": _hex(version),
        })

    def _respond(
        self, response: CommandResponse, device: SmiDevice, pending: PendingCommand, details: dict[str, Any]
    ) -> None:
        if response.gbcs is not None:
            details = {**details, "gbcs_payload": response.gbcs}  # DUIS GBCSPayload: the device's response
        for recipient in self._recipients(device, pending.originator):
            self._emit(make_message(
                MessageKind.RESPONSE, pending.variant.value, time=response.time, device=device.eui64,
                request_id=pending.request_id, recipient=recipient, details=details,
            ))

    # ==========================================================================================
    # shared steps
    # ==========================================================================================
    def _record_new_version(self, device: SmiDevice, version: int, request_id: str | None, *, restore: bool) -> None:
        """SMI takes ``version``; with ``restore`` a Suspended device becomes Commissioned again."""
        self.smi.set_firmware(device.eui64, version)
        details: dict[str, Any] = {"previous_version": _hex(device.firmware_version), "firmware_version": _hex(version)}
        if restore and device.status is DeviceStatus.SUSPENDED:
            self.smi.set_status(device.eui64, DeviceStatus.COMMISSIONED)
            details["status"] = DeviceStatus.COMMISSIONED.value
        self.sat.append(self._clock.now(), SatEvent.SMI_UPDATED, request_id=request_id, device=device.eui64,
                        code="FirmwareVersion", details=details)

    def _progress(self, mark: UpdateInProgress, stage: str) -> None:
        """A HAN device's update ends once both the hub's CCS08 and the device's own alert arrived.

        They come in either order (a meter reports 0x8F72 before the hub's 0x8F8A), and until
        both have, a late message must still find the request it belongs to.
        """
        if mark.stage not in (stage, _DISTRIBUTING):
            self._finish_update(mark.device)
        else:
            self.smi.set_update_stage(mark.device, stage)

    def _recipients(self, device: SmiDevice, originator: int | None) -> list[str | None]:
        """The requester if known; else every responsible supplier of the device."""
        if originator is not None:
            return [format_eui64(originator)]
        suppliers = sorted(set(device.suppliers.values()))
        return [format_eui64(s) for s in suppliers] or [None]

    def _record_unattributed(self, message: HubMessage, why: str) -> None:
        code = gbcs_code(message.alert_code) if isinstance(message, DeviceAlert) else message.service_reference
        self.sat.append(
            self._clock.now(), SatEvent.HUB_MESSAGE, request_id=message.request_id if isinstance(message, CommandResponse) else None,
            device=message.device, code=code,
            details={"problem": why, "comms_hub": format_eui64(message.hub),
                     **{k: _plain(v) for k, v in message.details.items()}},
        )

    # ==========================================================================================
    # restart and deadlines (docs/recovery.md)
    # ==========================================================================================
    def absolute(self, clock_time: float) -> float:
        """Seconds since 1970 of clock time ``clock_time`` (what the ledger stores)."""
        return self._epoch.timestamp() + clock_time

    def _clock_time(self, absolute: float) -> float:
        return absolute - self._epoch.timestamp()

    def _stored_command(self, kind: str, command: PendingCommand) -> StoredCommand:
        return StoredCommand(
            kind, command.request_id, command.variant.value, command.device, command.originator,
            None if command.execution_time is None else self.absolute(command.execution_time), command.cancel,
            command.firmware_hash, self.absolute(self._clock.now()),
        )

    def _command_from(self, stored: StoredCommand) -> PendingCommand:
        return PendingCommand(
            stored.request_id, ServiceReferenceVariant(stored.variant), stored.device, stored.originator,
            None if stored.execution_time is None else self._clock_time(stored.execution_time), stored.cancel,
            stored.firmware_hash,
        )

    def _finish_update(self, device: int) -> UpdateInProgress | None:
        """Clear ``device``'s mark; its distribution leaves the ledger once no device is left."""
        mark = self.smi.finish_update(device)
        if mark is not None:
            self.ledger.close_if_done(mark.request_id)
        return mark

    def set_distribution_deadline(self, seconds: float | None) -> None:
        """Every 11.1/11.4 accepted from now on ends within ``seconds``: past it, a device whose
        image has not reached the hub gets N60, one still on its HAN transfer N62 with CCS08 result
        3 (transfer failed), and the device is free for the next request. None: no deadline."""
        self._deadline = seconds

    def set_command_deadline(self, seconds: float | None) -> None:
        """An 11.2/11.3 forwarded from now on and not answered by its device within ``seconds``
        gets an asynchronous response with DUIS code E20 (unable to communicate with the device)
        and is no longer awaited. None: no deadline."""
        self._command_deadline = seconds

    def _arm_command_deadline(self, request_id: str, accepted_absolute: float) -> None:
        if self._command_deadline is None:
            return
        delay = max(0.0, accepted_absolute + self._command_deadline - self.absolute(self._clock.now()))
        self._command_deadlines.add(request_id, self._clock.now() + delay)

    def expire_command(self, request_id: str) -> bool:
        """Answer ``request_id`` with E20 if its device still has not; True if it was answered."""
        with self._step():
            pending = self._pending.pop(request_id, None)
            if pending is None:
                return False
            device = self.smi.get(pending.device)
            now = self._clock.now()
            error = f"no response from device {format_eui64(pending.device)} within {self._command_deadline:g} s"
            self.sat.append(now, SatEvent.DSP_REJECTED, request_id=request_id, device=pending.device,
                            code=ResponseCode.NO_WAN_ROUTE.value, details={"error": error})
            recipients = self._recipients(device, pending.originator) if device is not None \
                else [_recipient(pending.originator)]
            for recipient in recipients:
                self._emit(make_message(
                    MessageKind.RESPONSE, pending.variant.value, time=now, device=pending.device,
                    request_id=request_id, recipient=recipient,
                    details={"response_code": ResponseCode.NO_WAN_ROUTE.value, "error": error},
                ))
        return True

    def _arm_deadline(self, request_id: str, accepted_absolute: float) -> None:
        deadline = self._deadline
        if deadline is None:
            return
        delay = max(0.0, accepted_absolute + deadline - self.absolute(self._clock.now()))
        self._clock.call_later(delay, self.expire_distribution, request_id)

    def expire_distribution(self, request_id: str) -> int:
        """End ``request_id``'s devices that are still in progress (its deadline passed); returns
        how many were ended."""
        stored = self.ledger.distribution(request_id)
        ended = 0
        with self._step():
            now = self._clock.now()
            for device, hub in stored.targets if stored else ():
                mark = self.smi.update_in_progress(device)
                if mark is None or mark.request_id != request_id:
                    continue
                self._finish_update(device)
                self._csp.abandon(hub, device)
                details: dict[str, Any] = {"comms_hub": format_eui64(hub), "firmware_version": _hex(mark.firmware_version),
                                           "reason": "deadline"}
                assert stored is not None
                if hub in stored.delivered_hubs:
                    result = TransferResult.TRANSFER_FAILED
                    details.update(alert_code=gbcs_code(GbcsAlertCode.CCS08_TRANSFER_FAILURE), result=int(result),
                                   result_name=result.name)
                    code = DccAlertCode.N62
                else:
                    code = DccAlertCode.N60
                self.sat.append(now, SatEvent.SMI_UPDATED, request_id=request_id, device=device,
                                code="DistributionDeadline", details=details)
                self._emit(dcc_alert(code, time=now, device=device, request_id=request_id,
                                     recipient=_recipient(mark.originator), details=details))
                ended += 1
            self.ledger.delete_distribution(request_id)
        return ended

    def recover(self) -> dict[str, int]:
        """Take up what an earlier process on this database left open; returns what was done.

        Messages committed but not yet in the outbox are handed to it again (it ignores an ID it
        holds). 11.2/11.3 awaiting a response go to their hub again; acknowledged future-dated
        11.3s are scheduled again on the device. Each open distribution continues from where the
        CSP was: checks not reported run again, hubs not yet reached get the image over the WAN,
        and hubs that had it restart the HAN transfer (the device resumes from the offset it
        holds). Distributions past their deadline end with their alert.
        """
        report = {"messages": 0, "commands": 0, "scheduled": 0, "distributions": 0, "expired": 0}
        self.ledger.prune_held("outbox")
        for message in self.ledger.kept_messages():
            self._sink(message)
            report["messages"] += 1
        with self._step():
            stored_commands = self.ledger.commands("pending")
            for request_id, command in self._pending.items():
                kept = stored_commands.get(f"pending:{request_id}")
                accepted = kept.accepted if kept else self.absolute(self._clock.now())
                if self._command_deadline is not None and self.absolute(self._clock.now()) >= accepted + self._command_deadline:
                    self._clock.call_later(0.0, self.expire_command, request_id)
                    report["expired"] += 1
                    continue
                if self._forward_again(command, command.execution_time):
                    self._arm_command_deadline(request_id, accepted)
                    report["commands"] += 1
            for _device, command in self._scheduled.items():
                if self._forward_again(command, command.execution_time):
                    report["scheduled"] += 1
            now = self.absolute(self._clock.now())
            for stored in self.ledger.distributions():
                open_targets = tuple(
                    (device, hub) for device, hub in stored.targets
                    if (mark := self.smi.update_in_progress(device)) is not None and mark.request_id == stored.request_id
                )
                if not open_targets:
                    self.ledger.delete_distribution(stored.request_id)
                    continue
                deadline = self._deadline
                if deadline is not None and now >= stored.accepted + deadline:
                    self._clock.call_later(0.0, self.expire_distribution, stored.request_id)
                    report["expired"] += 1
                    continue
                self._csp.resume(
                    WanDistribution(stored.request_id, stored.image, open_targets, stored.activate_now),
                    checked=stored.phase != "accepted", delivered_hubs=stored.delivered_hubs,
                )
                self._arm_deadline(stored.request_id, stored.accepted)
                report["distributions"] += 1
        _LOGGER.info("recovered: %s", report)
        return report

    def _forward_again(self, command: PendingCommand, execution_time: float | None) -> bool:
        device = self.smi.get(command.device)
        if device is None or device.comms_hub is None:
            return False
        if command.variant is ServiceReferenceVariant.READ_FIRMWARE_VERSION:
            return self._csp.read_firmware_version(device.comms_hub, device.eui64, request_id=command.request_id)
        if command.variant is ServiceReferenceVariant.UPDATE_HAN_DEVICE_LOG:
            return False  # the install code is not kept: its deadline (if any) answers it
        when = execution_time
        if when is not None and not command.cancel and when <= self._clock.now():
            when = None  # its time passed while the DSP was down: run it now
        return self._csp.activate_firmware(device.comms_hub, device.eui64, command.firmware_hash, when,
                                           request_id=command.request_id, cancel=command.cancel)

    def _emit(self, message: UserMessage) -> None:
        version = self._schema_versions.get(message.request_id)
        if version is not None and message.schema_version is None:
            message = dataclasses.replace(message, schema_version=version)
        self.ledger.put_message(message)  # committed with the step that made it (transactional outbox)
        self.sat.append(
            message.time, SatEvent.USER_MESSAGE, request_id=message.request_id, device=message.device,
            code=message.code,
            details={"message_id": message.message_id, "kind": message.kind.value, "recipient": message.recipient},
        )
        self._outgoing.append(message)

    @contextmanager
    def _step(self) -> Iterator[None]:
        """One transaction; its messages reach the sink only once it has committed."""
        outer = not self._in_step
        if outer:
            self._in_step = True
        try:
            with self._store.transaction():
                yield
                if outer:
                    for participant in self.step_participants:
                        participant()
        except BaseException:
            if outer:
                self._outgoing.clear()
            raise
        finally:
            if outer:
                self._in_step = False
        if outer:
            messages, self._outgoing = self._outgoing, []
            for message in messages:
                self._sink(message)


# ==============================================================================================
def _variant_of(sr: ServiceRequest) -> ServiceReferenceVariant:
    if isinstance(sr, UpdateFirmware):
        return ServiceReferenceVariant.UPDATE_FIRMWARE
    if isinstance(sr, UpdatePPMIDFirmware):
        return ServiceReferenceVariant.UPDATE_PPMID_FIRMWARE
    if isinstance(sr, ReadFirmwareVersion):
        return ServiceReferenceVariant.READ_FIRMWARE_VERSION
    if isinstance(sr, UpdateHanDeviceLog):
        return ServiceReferenceVariant.UPDATE_HAN_DEVICE_LOG
    return ServiceReferenceVariant.ACTIVATE_FIRMWARE


def _describe(sr: ServiceRequest) -> dict[str, Any]:
    """What the SAT keeps of an SR (never the image itself)."""
    details: dict[str, Any] = {"originator": _recipient(sr.header.originator)}
    if isinstance(sr, (UpdateFirmware, UpdatePPMIDFirmware)):
        details.update(devices=[_eui_text(d) for d in sr.device_ids],
                       firmware_version=_hex(sr.firmware_version), image_bytes=len(sr.firmware_image))
    elif isinstance(sr, ReadFirmwareVersion):
        details["devices"] = [_eui_text(sr.device_id)]
    elif isinstance(sr, UpdateHanDeviceLog):  # never the install code itself
        details.update(devices=[_eui_text(sr.device_id)], comms_hub=_eui_text(sr.comms_hub),
                       request_type="Add" if sr.add else "Remove", join_time_period=sr.join_time_period)
    else:
        details.update(devices=[_eui_text(sr.device_id)], firmware_hash=sr.firmware_hash.hex(),
                       execution_datetime=sr.execution_datetime.isoformat() if sr.execution_datetime else None)
    return details


def _check_eui(eui: int) -> None:
    if isinstance(eui, bool) or not isinstance(eui, int) or not 0 <= eui < 1 << 64:
        raise _Rejected(ERROR_MALFORMED, f"device ID {eui!r} is not an EUI-64")


def _freeze(rejected: Mapping[RejectionReason, tuple[int, ...]]) -> dict[RejectionReason, tuple[int, ...]]:
    return {reason: tuple(devices) for reason, devices in rejected.items()}


def _eui_text(eui: Any) -> str:
    try:
        return format_eui64(eui)
    except (TypeError, ValueError):
        return repr(eui)


def _recipient(originator: int | None) -> str | None:
    return None if originator is None else format_eui64(originator)


def _hex(version: int | None) -> str | None:
    return None if version is None else f"{version:08X}"


def _plain(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    if isinstance(value, bool) or value is None or isinstance(value, (str, float)):
        return value
    if isinstance(value, int):
        return int(value)
    return str(value)


def _int_detail(message: HubMessage, key: str) -> int | None:
    value = message.details.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        _LOGGER.warning("hub %s: %s of device %s is %r, not an integer; ignored", format_eui64(message.hub), key,
                        format_eui64(message.device), value)
        return None
    return int(value)


def _enum_detail(message: HubMessage, key: str, enum_type: Any, default: Any) -> Any:
    value = message.details.get(key)
    if value is None:
        return default
    try:
        return enum_type(value)
    except ValueError:
        _LOGGER.warning("hub %s: %s=%r of device %s is not a known %s; taken as %s", format_eui64(message.hub),
                        key, value, format_eui64(message.device), enum_type.__name__, default.name)
        return default
