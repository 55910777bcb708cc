"""What the firmware flow's nodes share to speak real GBCS: keys, counters, the time base, and the
reading of a decoded message as the plain values the DCC side works with.

One :class:`GbcsSetup` serves a scenario: the hub builds the DCC's commands and its CCS08 alerts
with it, the emulated devices their responses and alerts, and the hub reads what devices send
with :func:`read_device_message`. Keys are TEST ONLY: the published ZAZ1/RTDS remote parties
(``emulator/keys/test_only/remote-parties``) and the emulated devices' keys derived from the seed.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..keys.devices import DEFAULT_SEED, derive_device_key
from ..keys.embedded import REMOTE_PARTIES_DIR, remote_party_keys
from ..keys.store import KeyEntry, KeyStore, KeyUsage
from . import asn1_payloads as asn1
from . import dlms, gbz
from .codes import ActivationResponseCode, GbcsAlertCode
from .message_codes import CraFlag, MessageCode
from .messages import GbcsMessage
from .payloads import DlmsAlert
from .protection import MessageProtection

ZAZ1_SUPPLIER = 0x90B3D51F30010000
"""The ZAZ1 import supplier (TEST ONLY, published keys): whom emulated meters trust by default."""
GBCS_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)
"""Clock second 0, as the DSP's default ``clock_epoch``."""


def remote_party_keys_dir() -> Path:
    """The bundled TEST ONLY keys of the ACB and the ZAZ1 suppliers (DS/KA, with private keys)."""
    return REMOTE_PARTIES_DIR


@functools.lru_cache(maxsize=4)  # a device uses its keys a few times in a row; a fleet has 10,000 devices
def _device_entry(seed: int, eui: int, usage: KeyUsage) -> KeyEntry:
    key = derive_device_key(seed, eui, usage)
    return KeyEntry(eui, usage, key.public_key(), key, _DEVICE_KEY_SOURCE, name=_DEVICE_KEY_NAME[usage])


_DEVICE_KEY_SOURCE = "emulated device (seed-derived, TEST ONLY)"
_DEVICE_KEY_NAME = {KeyUsage.DIGITAL_SIGNATURE: "emulated-ds", KeyUsage.KEY_AGREEMENT: "emulated-ka"}


@dataclass(frozen=True)
class ScenarioKeyStore:
    """The remote parties' keys (``remote``), and for every other EUI-64 an emulated device's
    keys derived from ``seed`` (TEST ONLY).

    Unlike :class:`~emulator.keys.devices.DeviceKeyStore` it needs no device list (a fleet makes
    devices as it goes); derivations are cached, as a device signs every alert with one key.
    """

    remote: KeyStore
    seed: int = DEFAULT_SEED

    def entries(self, eui: int, usage: KeyUsage) -> Sequence[KeyEntry]:
        found = self.remote.entries(eui, usage)
        if found:
            return found
        other = KeyUsage.KEY_AGREEMENT if usage is KeyUsage.DIGITAL_SIGNATURE else KeyUsage.DIGITAL_SIGNATURE
        if self.remote.entries(eui, other):
            return ()  # a remote party without a key of this usage is not a device
        return (_device_entry(self.seed, eui, usage),)


def scenario_key_store(seed: int = DEFAULT_SEED, remote: KeyStore | None = None) -> KeyStore:
    """The remote parties (the bundled ZAZ1/RTDS keys unless ``remote``), then the devices'."""
    return ScenarioKeyStore(remote if remote is not None else _bundled_remote_parties(), seed)


def _bundled_remote_parties() -> KeyStore:
    return remote_party_keys()


@dataclass
class OriginatorCounters:
    """GBCS originator counters: strictly increasing per originator (in memory, per scenario)."""

    last: dict[int, int] = field(default_factory=dict)

    def next(self, originator: int) -> int:
        value = self.last.get(originator, 0) + 1
        self.last[originator] = value
        return value


@dataclass
class GbcsSetup:
    """Keys, counters and time base of one scenario's GBCS messages."""

    protection: MessageProtection
    counters: OriginatorCounters = field(default_factory=OriginatorCounters)
    epoch: dt.datetime = GBCS_EPOCH
    trusted_suppliers: tuple[int, ...] = (ZAZ1_SUPPLIER,)
    """Whose KRP signature a meter accepts on CS06; the first is where device alerts go."""

    @classmethod
    def default(cls, seed: int = DEFAULT_SEED, **changes: Any) -> "GbcsSetup":
        return cls(MessageProtection(scenario_key_store(seed)), **changes)

    @property
    def supplier(self) -> int:
        return self.trusted_suppliers[0]

    @property
    def access_control_broker(self) -> int:
        return self.protection.access_control_broker

    def date_time(self, clock_seconds: float) -> dt.datetime:
        """Clock time as a GBCS date-time (whole seconds: what GBCS carries)."""
        return (self.epoch + dt.timedelta(seconds=clock_seconds)).replace(microsecond=0)

    def clock_seconds(self, when: dt.datetime) -> float:
        return (when - self.epoch).total_seconds()


def version_bytes(version: int) -> bytes:
    """A 32-bit OTA file version as the 4 octets GBCS firmware-version fields carry."""
    return (version & 0xFFFFFFFF).to_bytes(4, "big")


def version_int(octets: bytes | None) -> int | None:
    if not octets or len(octets) > 8:
        return None
    return int.from_bytes(octets, "big")


@dataclass(frozen=True)
class DeviceReport:
    """A device message read as plain values: an alert (``alert_code``) or a response (``command``
    is the message code it answers, with the command's ``counter``)."""

    alert_code: int | None
    message_code: int
    counter: int
    details: dict[str, Any]


def read_device_message(message: GbcsMessage) -> DeviceReport:
    """The values the hub reports upstream from a device's alert or response.

    Alerts: ``alert_code`` and ``hash`` (FDRA), ``success``/``firmware_version`` (CS09),
    ``firmware_version``/``response_code`` (0x00CA). Responses: ``firmware_version`` (11.2, None
    when the read failed) and for CS06 ``response_code`` or, for "command accepted", ``scheduled``.
    """
    header = message.header
    payload = message.payload
    code = header.message_code
    details: dict[str, Any] = {}
    alert_code: int | None = None
    if header.cra_flag is CraFlag.ALERT:
        if isinstance(payload, (DlmsAlert, gbz.GbzAlert)):
            alert_code = payload.alert_code
            if payload.manufacturer_image_hash is not None:
                details["hash"] = payload.manufacturer_image_hash.hex()
        elif isinstance(payload, asn1.PpmidFirmwareActivationAlert):
            alert_code = payload.alert_code
            details["success"] = payload.activate_image == 0
            details["firmware_version"] = version_int(payload.firmware_version)
        elif isinstance(payload, asn1.FutureDatedActivationAlert):
            alert_code = payload.alert_code
            details["firmware_version"] = version_int(payload.response.firmware_version)
            details["activation_result"] = int(payload.response.activate_image_result)
            details["command_counter"] = payload.originator_counter
        elif isinstance(payload, asn1.FirmwareTransferAlert):
            alert_code = payload.alert_code
            details["result"] = int(payload.response_code)
            details["firmware_version"] = version_int(payload.firmware_version)
        return DeviceReport(alert_code, code, header.originator_counter, details)
    if code == MessageCode.ECS52_READ_ESME_CHF_FIRMWARE_VERSION and isinstance(payload, dlms.AccessResponse):
        result = payload.results[0] if payload.results else None
        value = result.data.value if result is not None and result.result == 0 else None
        details["firmware_version"] = version_int(value) if isinstance(value, bytes) else None
    elif code == MessageCode.GCS38_READ_GSME_FIRMWARE_VERSION and isinstance(payload, gbz.GbzPayload):
        records = payload.components[0].zcl.records if payload.components else ()
        value = records[0].value if records and records[0].status == 0 else None
        details["firmware_version"] = version_int(value) if isinstance(value, bytes) else None
    elif isinstance(payload, asn1.ReadFirmwareVersionResponse):
        details["firmware_version"] = version_int(payload.firmware_version) if payload.read_result == 0 else None
    elif isinstance(payload, asn1.ActivateFirmwareResponse):
        details["response_code"] = int(payload.activate_image_result)
        details["firmware_version"] = version_int(payload.firmware_version)
    elif isinstance(payload, asn1.CommandAccepted):
        details["response_code"] = int(ActivationResponseCode.SUCCESS)
        details["scheduled"] = True
    return DeviceReport(None, code, header.originator_counter, details)


FUTURE_DATED_OUTCOME = {
    True: GbcsAlertCode.FUTURE_DATED_ACTIVATION_SUCCESS,
    False: GbcsAlertCode.FUTURE_DATED_ACTIVATION_FAILURE,
}
