"""The GBCS the hub sends and reads: the DCC's commands to devices (the emulated DCC side builds
them here, as DCC would before handing them to the Comms Hub), the hub's own CCS08 alerts, and
the reading of devices' alerts and responses.

Commands go out protected as GBCS requires (TEST ONLY keys, :mod:`emulator.gbcs.flow`): ECS52
and GCS38 from the requesting supplier, CS08 from the ACB on the supplier's behalf, all MAC'd by
the ACB; CS06 KRP-signed by the supplier and MAC'd by the ACB. Each command's counter is
remembered so that the device's response (which repeats it) finds its DUIS request.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import re
from typing import Any, Callable, Mapping

from emulator.gbcs import asn1_payloads as asn1
from emulator.gbcs import device_log, messages
from emulator.gbcs.device_log_alert import DeviceLogRecord
from emulator.gbcs.codes import GbcsAlertCode, TransferResult
from emulator.gbcs.message_codes import CraFlag
from emulator.gbcs.flow import DeviceReport, GbcsSetup, read_device_message, version_bytes
from emulator.gbcs.wire import GbcsDecodeError
from emulator.gbcs.precommand import sign_precommand
from emulator.keys.store import KeyUsage, private_key

_LOGGER = logging.getLogger(__name__)
_EUI_TEXT = re.compile(r"([0-9A-Fa-f]{2}(?:-[0-9A-Fa-f]{2}){7}):")
_NO_HASH = bytes(32)


DeviceLogApplier = Callable[[device_log.AddDeviceToLog | device_log.RemoveDeviceFromLog], bool]


@functools.lru_cache(maxsize=1)
def default_setup() -> GbcsSetup:
    """One setup for every hub and device built without one (seed 0, ZAZ1 supplier trusted)."""
    return GbcsSetup.default()


class HubGbcs:
    """GBCS for one hub; ``device_types`` (EUI-64 -> "ESME", "GSME", "PPMID", "HCALCS") chooses
    the read command and which devices pull their messages (a GSME)."""

    __slots__ = ("hub", "setup", "device_types", "_awaiting", "_known", "last_error")  # one per hub of a fleet

    def __init__(self, hub: int, setup: GbcsSetup | None, device_types: Mapping[int, str]) -> None:
        self.hub = hub
        self.setup = setup if setup is not None else default_setup()
        self.device_types = device_types
        self._awaiting: dict[tuple[int, int], tuple[str, str]] | None = None  # (device, counter) -> (request, SR)
        self._known: dict[tuple[int, int], dict[str, Any]] | None = None  # what a command said its response does not
        self.last_error = ""

    def is_sleepy(self, device: int) -> bool:
        return self.device_types.get(device) == "GSME"

    def supplier_of(self, request_id: str) -> int:
        """The requesting User: the RequestID's originator when it has keys here, else the default."""
        match = _EUI_TEXT.match(request_id)
        if match:
            eui = int(match.group(1).replace("-", ""), 16)
            if self.setup.protection.keys.entries(eui, KeyUsage.DIGITAL_SIGNATURE) and eui in self.setup.trusted_suppliers:
                return eui
        return self.setup.supplier

    # -- commands ------------------------------------------------------------------------------
    def read_version(self, device: int, *, request_id: str) -> bytes:
        """The 11.2 read command, awaited: the device's response finds ``request_id`` by counter."""
        command = self._read_command(device, request_id=request_id)
        message = command.encode()
        self._await(device, command.header.originator_counter, request_id, "11.2")
        return message

    def read_command(self, device: int, *, request_id: str) -> bytes:
        """ECS52 / GCS38 / CS08 for ``device``, MAC'd by the ACB, with fresh counters; not awaited
        (11.2 CV 2 returns it to the User for local delivery; ``expect`` it if it is sent)."""
        return self._read_command(device, request_id=request_id).encode()

    def _read_command(self, device: int, *, request_id: str) -> messages.Envelope:
        supplier = self.supplier_of(request_id)
        counters = self.setup.counters
        kind = self.device_types.get(device, "ESME")
        if kind == "GSME":
            command = messages.gcs38_command(counters.next(supplier), supplier, device)
        elif kind in ("PPMID", "HCALCS"):
            acb = self.setup.access_control_broker
            command = messages.cs08_command(counters.next(acb), device, supplier, counters.next(supplier))
        else:
            command = messages.ecs52_command(counters.next(supplier), supplier, device)
        return self.setup.protection.protect(command)

    def activate(self, device: int, image_hash: bytes, execution_time: float | None, *, request_id: str) -> bytes:
        """CS06; the shortcut of an in-process 11.3: the User signs the pre-command at once, with
        the supplier's key from the setup (TEST ONLY)."""
        return self._sign_now(device, self.precommand(device, image_hash, execution_time, request_id=request_id),
                              request_id)

    def cancel(self, device: int, *, request_id: str) -> bytes:
        return self._sign_now(device, self.cancel_precommand(device, request_id=request_id), request_id)

    def precommand(self, device: int, image_hash: bytes, execution_time: float | None, *, request_id: str) -> bytes:
        """The CS06 pre-command DCC hands the User (11.3 CV 4), with the supplier's next counter."""
        when = None if execution_time is None else self.setup.date_time(execution_time)
        known = {} if execution_time is None else {"execution_time": execution_time}
        return self._precommand(device, image_hash, when, request_id, known)

    def cancel_precommand(self, device: int, *, request_id: str) -> bytes:
        return self._precommand(device, _NO_HASH, messages.CANCEL_EXECUTION_DATE_TIME, request_id, {"cancelled": True})

    def _precommand(self, device: int, image_hash: bytes, when: dt.datetime | None, request_id: str,
                    known: dict[str, Any]) -> bytes:
        supplier = self.supplier_of(request_id)
        pre = messages.cs06_precommand(self.setup.counters.next(supplier), supplier, device, image_hash, when)
        if known:
            if self._known is None:
                self._known = {}
            self._known[(device, pre.header.originator_counter)] = known
        return pre.encode()

    def signed_command(self, device: int, signed_precommand: bytes, *, request_id: str) -> bytes:
        """The User's signed pre-command MAC'd by the ACB: the CS06 the hub sends (11.3 CV 5).
        Whether the KRP signature is a trusted supplier's is the device's to judge."""
        return self._send(device, self.mac_signed_precommand(signed_precommand), request_id, "11.3")

    def mac_signed_precommand(self, signed_precommand: bytes) -> bytes:
        """The ACB's MAC around the User's signed CS06 (``DD`` envelope); not awaited (11.3 CV 6
        returns it for local delivery)."""
        return self.setup.protection.mac(messages.decode_message(signed_precommand).signing).encode()

    def _sign_now(self, device: int, precommand: bytes, request_id: str) -> bytes:
        supplier = messages.decode_message(precommand).header.originator
        key = private_key(self.setup.protection.keys, supplier, KeyUsage.DIGITAL_SIGNATURE)
        return self.signed_command(device, sign_precommand(precommand, key), request_id=request_id)

    def expect(self, device: int, message: bytes, *, request_id: str, service_reference: str) -> None:
        self._await(device, messages.decode_message(message).header.originator_counter, request_id,
                    service_reference)

    def _await(self, device: int, counter: int, request_id: str, service_reference: str) -> None:
        """The device's response with ``counter`` answers ``request_id`` (a command built here
        needs no decode to know its counter)."""
        if self._awaiting is None:
            self._awaiting = {}
        self._awaiting[(device, counter)] = (request_id, service_reference)

    def _send(self, device: int, message: bytes, request_id: str, service: str) -> bytes:
        self.expect(device, message, request_id=request_id, service_reference=service)
        return message

    # -- 8.11: the DCC's CCS01/CCS02 and the CHF's answer -----------------------------------------
    def device_log_command(self, device: int, install_code: bytes | None, join_time_period: int | None,
                           *, request_id: str) -> bytes:
        """CCS01 (``install_code`` given: add) or CCS02 (remove) to this CHF, sent by the ACB for the
        requesting supplier and MAC'd by the ACB, as DCC sends it (RTDS 8.11)."""
        supplier = self.supplier_of(request_id)
        acb = self.setup.access_control_broker
        counters = self.setup.counters
        if install_code is None:
            command = messages.ccs02_command(counters.next(acb), self.hub, device, supplier, counters.next(supplier))
        else:
            if join_time_period is None:
                raise ValueError("CCS01 needs a JoinTimePeriod")
            command = messages.ccs01_command(counters.next(acb), self.hub, device, install_code, join_time_period,
                                             supplier, counters.next(supplier))
        return self.setup.protection.protect(command).encode()

    def answer_device_log(self, command: bytes, apply: "DeviceLogApplier") -> tuple[bytes, dict[str, Any]] | None:
        """The CHF's side of CCS01/CCS02: decode strictly, check the ACB's MAC, ``apply`` the
        change (True: done), and build the response MAC'd by the CHF. None (``last_error`` says
        why) when the command is not a valid CCS01/CCS02 for this CHF: no response, as a CHF drops it."""
        try:
            decoded = messages.decode_message(command)
        except GbcsDecodeError as exc:
            self.last_error = f"not a GBCS message: {exc}"
            return None
        header, payload = decoded.header, decoded.payload
        if (header.recipient != self.hub or header.cra_flag is not CraFlag.COMMAND
                or not isinstance(payload, (device_log.AddDeviceToLog, device_log.RemoveDeviceFromLog))):
            self.last_error = f"not a CCS01/CCS02 command for CHF {self.hub:016X}"
            return None
        verdict = self.setup.protection.verify(decoded.envelope)
        if not verdict.ok:
            self.last_error = f"CCS0{header.message_code} refused: {verdict.detail or verdict}"
            return None
        done = apply(payload)
        adding = isinstance(payload, device_log.AddDeviceToLog)
        results: tuple[int, ...]
        if adding:
            results = (0, 0, 0) if done else (device_log.DATA_ACCESS_HARDWARE_FAULT, device_log.DATA_ACCESS_OTHER_REASON,
                                               device_log.DATA_ACCESS_OTHER_REASON)
        else:
            results = (0,) if done else (device_log.DATA_ACCESS_HARDWARE_FAULT,)
        response = self.setup.protection.protect(messages.device_log_response(header, results)).encode()
        details: dict[str, Any] = {"device": payload.device_id, "added": adding, "success": done,
                                   "message_code": f"0x{header.message_code:04X}"}
        return response, details

    # -- alerts ----------------------------------------------------------------------------------
    def ccs08(self, device: int, code: GbcsAlertCode, result: int, firmware_version: int | None, now: float) -> bytes:
        """The hub's CCS08 Firmware Transfer Alert (0x8F8A / 0x8F89) to the ACB, signed by the hub."""
        alert = asn1.FirmwareTransferAlert(int(code), self.setup.date_time(now), device,
                                           version_bytes(firmware_version or 0), TransferResult(result))
        message = messages.ccs08_alert(self.setup.counters.next(self.hub), self.hub,
                                       self.setup.access_control_broker, alert)
        return self.setup.protection.protect(message).encode()

    def cs14(self, entries: tuple[DeviceLogRecord, ...], now: float, *, extended_pan_id: int) -> bytes:
        """CS14 (0x8F12): this CHF's Device Log as it is at ``now``, to the ACB, MAC'd by the CHF
        (RTDS NA_CS14)."""
        when = self.setup.date_time(now)
        message = messages.cs14_alert(self.setup.counters.next(self.hub), self.hub, self.setup.access_control_broker,
                                      when, when, extended_pan_id, entries)
        return self.setup.protection.protect(message).encode()

    # -- what devices send -----------------------------------------------------------------------
    def read(self, device: int, message: bytes) -> tuple[DeviceReport, tuple[str, str] | None] | None:
        """The report of a device message and, for a response, its (RequestID, SR); None when the
        bytes are not a GBCS message from ``device`` (``last_error`` says why)."""
        try:
            decoded = messages.decode_message(message)
        except GbcsDecodeError as exc:
            self.last_error = f"not a GBCS message: {exc}"
            return None
        header = decoded.header
        if header.originator != device:
            self.last_error = f"GBCS message from {header.originator:016X} in the tunnel of {device:016X}"
            return None
        report = read_device_message(decoded)
        if report.alert_code is not None:
            return report, None
        key = (device, header.originator_counter)
        awaited = self._awaiting.pop(key, None) if self._awaiting else None
        known = self._known.pop(key, None) if self._known else None
        if known and awaited is not None:
            if "cancelled" in known:
                report.details.pop("scheduled", None)
            report.details.update(known)
        return report, awaited

