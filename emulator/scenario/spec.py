"""Scenario files (TOML): premises, devices, CSP outcomes, WAN failures, faults and the SRs to send.

Loading fails loudly: an unknown key, a bad EUI-64 or a value of the wrong type is a
:class:`ScenarioError` naming the file and the key path (``requests[2].device``). The format is
documented in docs/scenarios.md.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from emulator.config import StrictTable, read_toml
from emulator.dcc.csp import CspOutcome, CspPolicy, HubDelivery
from emulator.dcc.premises import (
    GAS_SUPPLIER_ID,
    GAS_SUPPLIER_ROLE,
    IMPORT_SUPPLIER_ID,
    IMPORT_SUPPLIER_ROLE,
    DeviceSpec,
    PremisesSpec,
    default_premises,
)
from emulator.dcc.smi import DEFAULT_GBCS_VERSION, DeviceStatus
from emulator.dcc.timing import TimingConfig, read_timing
from emulator.gbcs.codes import DeviceType
from emulator.devices.device import DeviceFaults
from emulator.eui64 import parse_eui64
from emulator.faults import FAULTS
from emulator.han.radio import BurstLoss, RadioParams
from emulator.han.security.aes_mmo import InstallCodeError, check_install_code
from emulator.ota.client import ClientProfile
from emulator.ota.policy import ServerPolicy

from .han_security import HanSecurity, HanSecurityMode
from .injection import faults_of
from .premises import DeviceBehaviour

SR_VARIANTS = ("11.1", "11.2", "11.3", "11.4")


class ScenarioError(ValueError):
    """A scenario file that cannot be run; the message names the file and the key."""


@dataclass(frozen=True, slots=True)
class Trigger:
    """Send a request after a timeline event whose fields match ``match`` (plus ``delay_s``)."""

    match: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class RequestSpec:
    index: int
    sr: str
    at_s: float | None = None
    after: Trigger | None = None
    delay_s: float = 0.0
    devices: tuple[int, ...] = ()
    device: int | None = None
    image: bytes | None = None
    image_name: str | None = None
    firmware_version: int | None = None
    firmware_hash: bytes | None = None
    execute_in_s: float | None = None
    execution: str | None = None  # ISO date-time, e.g. the 3000-12-31 cancellation
    request_id: str | None = None
    originator: int = IMPORT_SUPPLIER_ID


@dataclass(frozen=True, slots=True)
class Expectation:
    match: Mapping[str, Any]
    absent: bool = False

    def describe(self) -> str:
        what = ", ".join(f"{k}={v}" for k, v in self.match.items())
        return ("no " if self.absent else "") + what


@dataclass(slots=True)
class Scenario:
    name: str
    source: str
    premises: list[PremisesSpec]
    behaviours: dict[int, DeviceBehaviour] = field(default_factory=dict)
    requests: list[RequestSpec] = field(default_factory=list)
    expectations: list[Expectation] = field(default_factory=list)
    csp_policy: CspPolicy = field(default_factory=CspPolicy)
    ota_policy: ServerPolicy = field(default_factory=ServerPolicy)
    seed: int = 1
    duration_s: float = 24 * 3600.0
    settle_s: float = 900.0
    han_latency_s: float = 0.005
    han_loss: float = 0.0
    radio: RadioParams | None = None  # None: the fixed-latency HAN; else the 802.15.4 model
    han_security: HanSecurity = field(default_factory=HanSecurity)  # [han] security: join, CBKE, APS
    han_latency_explicit: bool = False  # [han] latency_s given: the realistic preset leaves it alone
    timing: TimingConfig = field(default_factory=TimingConfig)  # [timing]: preset and realistic ranges
    # [cpl] gbcs_versions: the GBCS versions the CPL's firmware entries support (11.1/11.4 check)
    cpl_gbcs_versions: frozenset[str] = frozenset({DEFAULT_GBCS_VERSION})
    description: str = ""
    # Keys the emulated meters trust for GBCS signatures (default: the TEST ONLY sample key);
    # None: signatures are not checked.
    trusted_keys: tuple[Any, ...] | None = field(default_factory=lambda: _default_keys())


# -- helpers -------------------------------------------------------------------------------------
class _Reader(StrictTable):
    error = ScenarioError


def _version(reader: _Reader, key: str) -> int | None:
    value = reader.get(key, (int, str))
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = int(value, 16)
        except ValueError:
            raise reader.fail(key, f"{value!r} is not 8 hex digits") from None
    if not 0 <= value <= 0xFFFFFFFF:
        raise reader.fail(key, f"{value} does not fit 4 bytes")
    return value


RADIO_MODELS = ("802.15.4", "fixed")


def read_radio(reader: StrictTable) -> RadioParams | None:
    """A ``[radio]`` table: ``model`` (``802.15.4``, or ``fixed`` for the fixed-latency HAN) and
    any :class:`RadioParams` field; ``burst`` is a table of :class:`BurstLoss` fields."""
    model = reader.get("model", str, "802.15.4")
    if model not in RADIO_MODELS:
        raise reader.fail("model", f"unknown radio model {model!r} (known: {', '.join(RADIO_MODELS)})")
    changes = reader.overrides(RadioParams, skip=("model", "burst"))
    if "burst" in reader.data:
        burst = reader.table("burst")
        try:
            changes["burst"] = BurstLoss(**burst.overrides(BurstLoss))
        except ValueError as exc:
            raise reader.fail("burst", str(exc)) from None
        burst.done()
    try:
        params = RadioParams(**changes)
    except ValueError as exc:
        raise reader.error(f"{reader.source}: {exc}") from None
    reader.done()
    return None if model == "fixed" else params


def _csp(reader: _Reader) -> CspPolicy:
    policy = CspPolicy()
    for key in ("check_delay", "default_wan_delay", "command_delay"):
        value = reader.get(key, float, None)
        if value is not None:
            if value < 0:
                raise reader.fail(key, f"expected a number of seconds >= 0, got {value!r}")
            setattr(policy, key, value)
    devices = reader.table("devices")
    outcomes = ", ".join(o.value for o in CspOutcome)
    for key, eui in devices.eui_keys():
        text = devices.get(key, str)
        try:
            policy.device_outcomes[eui] = CspOutcome(text)
        except ValueError:
            raise devices.fail(key, f"unknown CSP outcome {text!r} (outcomes: {outcomes})") from None
    devices.done()
    hubs = reader.table("hubs")
    for key, eui in hubs.eui_keys():
        rule = hubs.table(key)
        delay = rule.get("delay", float, None)
        if delay is not None and delay < 0:
            raise rule.fail("delay", f"expected a number of seconds >= 0, got {delay!r}")
        policy.hub_delivery[eui] = HubDelivery(rule.get("fail", bool, False), delay)
        rule.done()
    hubs.done()
    reader.done()
    return policy


# -- loading -------------------------------------------------------------------------------------
def load_scenario(path: str | Path) -> Scenario:
    path = Path(path)
    return parse_scenario(read_toml(path, ScenarioError), source=str(path), base=path.parent)


def parse_scenario(data: Mapping[str, Any], *, source: str = "<scenario>", base: Path | None = None) -> Scenario:
    top = _Reader(data, "", source)
    scenario = Scenario(
        name=top.get("name", str, Path(source).stem),
        source=source,
        premises=[],
        description=top.get("description", str, ""),
        seed=top.get("seed", int, 1),
        duration_s=top.get("duration_s", float, 24 * 3600.0),
        settle_s=top.get("settle_s", float, 900.0),
    )
    if "radio" in data:
        scenario.radio = read_radio(top.table("radio"))
    han = top.table("han")
    # With the radio model the airtime is computed per frame; latency_s then adds to it.
    scenario.han_latency_s = han.get("latency_s", float, 0.005 if scenario.radio is None else 0.0)
    scenario.han_latency_explicit = "latency_s" in han.data
    if scenario.han_latency_s < 0:
        raise han.fail("latency_s", "must not be negative")
    scenario.han_loss = han.get("loss", float, 0.0)
    if not 0 <= scenario.han_loss <= 1:
        raise han.fail("loss", "must be a probability between 0 and 1")
    security_name = han.get("security", str, HanSecurityMode.NONE.value)
    try:
        security_mode = HanSecurityMode(security_name)
    except ValueError:
        raise han.fail("security", f"unknown HAN security {security_name!r} "
                                   f"(known: {', '.join(m.value for m in HanSecurityMode)})") from None
    join_time_period = han.get("join_time_period_s", float, None)
    if join_time_period is not None and join_time_period <= 0:
        raise han.fail("join_time_period_s", "must be positive")
    han.done()
    install_codes: dict[int, bytes] = {}
    not_whitelisted: set[int] = set()

    ota = top.table("ota")
    try:
        scenario.ota_policy = ServerPolicy(**ota.overrides(ServerPolicy))
    except ValueError as exc:
        raise ScenarioError(f"{source}: ota: {exc}") from None

    signatures = top.table("signatures")
    check = signatures.get("check", bool, True)
    key_files = signatures.get("trusted_keys", list, None)
    if key_files is not None:
        scenario.trusted_keys = tuple(_public_key(signatures, f, base) for f in key_files)
    if not check:
        scenario.trusted_keys = None
    signatures.done()

    scenario.csp_policy = _csp(top.table("csp"))
    try:
        scenario.timing = read_timing(top.table("timing"))
    except ValueError as exc:  # a range the profile refuses, outside the reader's own checks
        raise ScenarioError(f"{source}: timing: {exc}") from None
    cpl = top.table("cpl")
    versions = cpl.get("gbcs_versions", list, None)
    if versions is not None:
        if not versions or not all(isinstance(v, str) and v.strip() for v in versions):
            raise cpl.fail("gbcs_versions", f"expected a list of GBCS versions such as [\"4.2\"], got {versions!r}")
        scenario.cpl_gbcs_versions = frozenset(v.strip() for v in versions)
    cpl.done()

    premises_tables = top.tables("premises")
    if not premises_tables:
        premises_tables = [_Reader({"template": "default"}, "premises[0]", source)]
    for reader in premises_tables:
        spec, behaviours = _premises(reader, base, install_codes, not_whitelisted)
        scenario.premises.append(spec)
        scenario.behaviours.update(behaviours)
    ids = [d.eui64 for p in scenario.premises for d in p.devices]
    duplicates = {f"{e:016X}" for e in ids if ids.count(e) > 1}
    if duplicates:
        raise ScenarioError(f"{source}: premises: device(s) on more than one premises: {sorted(duplicates)}")
    scenario.han_security = HanSecurity(security_mode, scenario.seed, install_codes, frozenset(not_whitelisted),
                                        join_time_period)

    for i, reader in enumerate(top.tables("requests")):
        scenario.requests.append(_request(reader, i, base))
    for reader in top.tables("expect"):
        absent = reader.get("absent", bool, False)
        match = {k: v for k, v in reader.data.items() if k != "absent"}
        reader.used.update(match)
        if not match:
            raise reader.fail("event", "an expectation needs at least one field to match")
        scenario.expectations.append(Expectation(_normalise_match(match), absent))
    top.done()
    return scenario


def _default_keys() -> tuple[Any, ...]:
    """The project's TEST ONLY sample-image key and the published ZAZ1 supplier DS key (TEST ONLY),
    which signed DCC's own 11.1 sample image."""
    return _bundled_keys()


@functools.lru_cache(maxsize=1)  # bundled files: read once a process, not once a fleet wave
def _bundled_keys() -> tuple[Any, ...]:
    from emulator.gbcs.flow import ZAZ1_SUPPLIER, remote_party_keys_dir
    from emulator.keys.store import DirectoryKeyStore, KeyUsage

    from .samples import trusted_key

    key = trusted_key()
    zaz1 = [e.public_key for e in DirectoryKeyStore(remote_party_keys_dir()).entries(
        ZAZ1_SUPPLIER, KeyUsage.DIGITAL_SIGNATURE)]
    return ((key,) if key is not None else ()) + tuple(zaz1)


def _public_key(reader: _Reader, name: Any, base: Path | None) -> Any:
    from emulator.ota.image import load_public_key

    if not isinstance(name, str):
        raise reader.fail("trusted_keys", f"expected file names, got {name!r}")
    path = Path(name)
    if not path.is_absolute() and base is not None:
        path = base / path
    try:
        return load_public_key(str(path))
    except OSError as exc:
        raise reader.fail("trusted_keys", f"cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise reader.fail("trusted_keys", f"{path} is not a PEM public key: {exc}") from None


def _normalise_match(match: Mapping[str, Any]) -> dict[str, Any]:
    """Device IDs in matches are compared in the timeline's form (00-DB-…)."""
    out = dict(match)
    if isinstance(out.get("device"), str):
        try:
            out["device"] = "-".join(f"{b:02X}" for b in parse_eui64(out["device"]).to_bytes(8, "big"))
        except ValueError:
            pass
    return out


def _premises(reader: _Reader, base: Path | None, install_codes: dict[int, bytes] | None = None,
              not_whitelisted: set[int] | None = None) -> tuple[PremisesSpec, dict[int, DeviceBehaviour]]:
    template = reader.get("template", str, None)
    premises_id = reader.get("id", str, None)
    if template not in (None, "default"):
        raise reader.fail("template", f"unknown template {template!r} (known: default)")
    if template == "default":
        spec = default_premises(premises_id or "PREMISES-0001")
    else:
        hub = reader.eui("comms_hub", required=True)
        assert hub is not None
        spec = PremisesSpec(premises_id or f"PREMISES-{hub:016X}", hub, ())
    hub = reader.eui("comms_hub")
    suppliers_table = reader.table("suppliers")
    suppliers = dict(spec.suppliers) or {IMPORT_SUPPLIER_ROLE: IMPORT_SUPPLIER_ID, GAS_SUPPLIER_ROLE: GAS_SUPPLIER_ID}
    for role in list(suppliers_table.data):
        value = suppliers_table.eui(role, required=True)
        assert value is not None
        suppliers[role] = value
    suppliers_table.done()
    devices = {d.eui64: d for d in spec.devices}
    behaviours: dict[int, DeviceBehaviour] = {}
    for dev in reader.tables("devices"):
        eui = dev.eui("eui64", required=True)
        assert eui is not None
        current = devices.get(eui)
        type_name = dev.get("type", str, current.device_type.value if current else None, required=current is None)
        try:
            device_type = DeviceType(type_name)
        except ValueError:
            raise dev.fail("type", f"unknown device type {type_name!r} (known: {', '.join(t.value for t in DeviceType)})") from None
        status_name = dev.get("status", str, current.status.value if current else DeviceStatus.COMMISSIONED.value)
        try:
            status = DeviceStatus(status_name)
        except ValueError:
            raise dev.fail("status", f"unknown status {status_name!r} (known: {', '.join(s.value for s in DeviceStatus)})") from None
        roles = tuple(dev.get("suppliers", list, list(current.supplier_roles) if current else [IMPORT_SUPPLIER_ROLE]))
        for role in roles:
            if role not in suppliers:
                raise dev.fail("suppliers", f"no supplier with role {role!r} at this premises (known: {', '.join(suppliers)})")
        firmware = _version(dev, "firmware_version")
        gbcs_version = dev.get("gbcs_version", str, current.gbcs_version if current else DEFAULT_GBCS_VERSION)
        if not gbcs_version.strip():
            raise dev.fail("gbcs_version", "expected a GBCS version such as \"4.2\", got an empty string")
        devices[eui] = DeviceSpec(
            eui64=eui,
            device_type=device_type,
            manufacturer_code=dev.get("manufacturer_code", int, current.manufacturer_code if current else 0x121D),
            image_type=dev.get("image_type", int, current.image_type if current else _default_image_type(device_type)),
            hardware_version=dev.get("hardware_version", int, current.hardware_version if current else 0x1200),
            firmware_version=firmware if firmware is not None else (current.firmware_version if current else 0xACDC0001),
            status=status,
            supplier_roles=roles,
            gbcs_version=gbcs_version.strip(),
        )
        profile_changes = dev.table("ota").overrides(ClientProfile)
        try:
            ClientProfile(0, 0, 0).with_(**profile_changes)
        except ValueError as exc:
            raise dev.fail("ota", str(exc)) from None
        catalogue: tuple[str, ...] = ()
        fault_changes: dict[str, Any] = {}
        if isinstance(dev.data.get("faults"), list):
            catalogue = _fault_names(dev)
        else:
            fault_changes = dev.table("faults").overrides(DeviceFaults)
        sleepy = dev.get("sleepy", bool, None)
        poll = dev.get("poll_interval_s", float, None)
        if poll is not None and poll <= 0:
            raise dev.fail("poll_interval_s", "must be positive")
        _han_security_fields(dev, eui, install_codes, not_whitelisted)
        if profile_changes or fault_changes or catalogue or sleepy is not None or poll is not None:
            behaviours[eui] = DeviceBehaviour(profile_changes, DeviceFaults(**fault_changes), catalogue,
                                              sleepy, poll)
        dev.done()
    reader.done()
    spec = PremisesSpec(spec.premises_id, hub if hub is not None else spec.comms_hub, tuple(devices.values()), suppliers)
    return spec, behaviours


def _han_security_fields(dev: _Reader, eui: int, install_codes: dict[int, bytes] | None,
                         not_whitelisted: set[int] | None) -> None:
    """``install_code`` (hex, with its CRC) and ``whitelisted`` of a device (``[han] security``)."""
    text = dev.get("install_code", str, None)
    if text is not None:
        try:
            code = bytes.fromhex(text.replace("-", "").replace(" ", "").replace(":", ""))
        except ValueError:
            raise dev.fail("install_code", f"{text!r} is not hex") from None
        try:
            check_install_code(code)
        except InstallCodeError as exc:
            raise dev.fail("install_code", str(exc)) from None
        if install_codes is not None:
            install_codes[eui] = code
    if not dev.get("whitelisted", bool, True) and not_whitelisted is not None:
        not_whitelisted.add(eui)


def _fault_names(dev: _Reader) -> tuple[str, ...]:
    names = dev.get("faults", list)
    for i, name in enumerate(names):
        if not isinstance(name, str) or name not in FAULTS:
            raise dev.fail(f"faults[{i}]", f"unknown fault {name!r} (known: {', '.join(sorted(FAULTS))})")
    try:
        faults_of(tuple(names), dev.where("faults"))
    except ValueError as exc:
        raise ScenarioError(f"{dev.source}: {exc}") from None
    return tuple(names)


def _default_image_type(device_type: DeviceType) -> int:
    return {DeviceType.PPMID: 0x0084, DeviceType.ESME: 0x0000, DeviceType.GSME: 0x0001}.get(device_type, 0x0010)


def _request(reader: _Reader, index: int, base: Path | None) -> RequestSpec:
    sr = reader.get("sr", str, required=True)
    if sr not in SR_VARIANTS:
        raise reader.fail("sr", f"unknown service request {sr!r} (known: {', '.join(SR_VARIANTS)})")
    at_s = reader.get("at_s", float, None)
    after_table = reader.get("after", dict, None)
    if (at_s is None) == (after_table is None):
        raise reader.fail("at_s", "give exactly one of at_s (seconds) or after (an event to wait for)")
    image_name = reader.get("image", str, None)
    image = _image(reader, image_name, base) if image_name else None
    devices = tuple(_eui_list(reader, "devices"))
    device = reader.eui("device")
    hash_text = reader.get("hash", str, None)
    firmware_hash: bytes | None = None
    if sr in ("11.1", "11.4"):
        if not devices:
            raise reader.fail("devices", f"{sr} needs a list of devices")
        if image is None:
            raise reader.fail("image", f"{sr} needs an image (ppmid, esme, gsme or a file path)")
    else:
        if device is None:
            raise reader.fail("device", f"{sr} needs one device")
    if sr == "11.3":
        if hash_text in (None, "auto"):
            if image is None:
                raise reader.fail("hash", "11.3 needs hash = \"<64 hex>\" or an image to take the hash from")
            from emulator.ota.image import ImageError, parse_image

            try:
                firmware_hash = parse_image(image, source=image_name or "image").manufacturer_image_sha256
            except ImageError as exc:
                raise reader.fail("image", str(exc)) from None
            if firmware_hash is None:
                raise reader.fail("image", "not a GBCS image: it has no Manufacturer Image hash")
        else:
            try:
                firmware_hash = bytes.fromhex(hash_text)
            except ValueError:
                raise reader.fail("hash", "not hexadecimal") from None
    spec = RequestSpec(
        index=index,
        sr=sr,
        at_s=at_s,
        after=Trigger(_normalise_match(after_table)) if after_table else None,
        delay_s=reader.get("delay_s", float, 0.0),
        devices=devices,
        device=device,
        image=image,
        image_name=image_name,
        firmware_version=_version(reader, "firmware_version"),
        firmware_hash=firmware_hash,
        execute_in_s=reader.get("execute_in_s", float, None),
        execution=reader.get("execution", str, None),
        request_id=reader.get("request_id", str, None),
        originator=reader.eui("originator") or IMPORT_SUPPLIER_ID,
    )
    reader.done()
    return spec


def _eui_list(reader: _Reader, key: str) -> list[int]:
    items = reader.get(key, list, [])
    out = []
    for i, text in enumerate(items):
        try:
            out.append(parse_eui64(text))
        except (ValueError, AttributeError) as exc:
            raise reader.fail(f"{key}[{i}]", str(exc)) from None
    return out


_SAMPLES = {"ppmid": ("PPMID", 0x0084), "esme": ("ESME", 0x0000), "gsme": ("GSME", 0x0001)}


def _image(reader: _Reader, name: str, base: Path | None) -> bytes:
    from .samples import load_sample

    if name.lower() in _SAMPLES:
        try:
            return load_sample(*_SAMPLES[name.lower()])
        except FileNotFoundError as exc:
            raise reader.fail("image", str(exc)) from None
    if "\0" in name:
        raise reader.fail("image", f"{name!r}: a path cannot contain a NUL character")
    path = Path(name)
    if not path.is_absolute() and base is not None:
        path = base / path
    try:
        return path.read_bytes()
    except OSError as exc:
        raise reader.fail("image", f"cannot read {path}: {exc.strerror}") from None
