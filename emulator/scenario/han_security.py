"""Puts ZigBee security on a premises' virtual HAN: ``[han] security = "cbke"``.

The hub becomes Trust Centre with a Device Log holding each emulated device's install code (as if
CCS01 had run at commissioning; a device marked ``whitelisted = false`` is left out and cannot
join); every node gets a TEST ONLY CBKE certificate and, after CBKE, APS link keys on its port.
All keys come from the scenario seed (:class:`HanKeyMaterial`), so ``ch-emulator keys export
--wireshark`` knows them before the run. ``"none"`` (the default) leaves the HAN as it was: no
join, no CBKE, no APS security, and no cryptography cost in a fleet.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Mapping

from emulator.devices.key_establishment import DeviceKeyEstablishment
from emulator.han.link_security import PROTECTED_CLUSTERS, ApsLinkSecurity, FrameRefused
from emulator.han.security.cbke import CbkeIdentity
from emulator.han.security.provisioning import HanKeyMaterial
from emulator.han.virtual import VirtualPort
from emulator.hub.trust_centre import TrustCentre

if TYPE_CHECKING:
    from emulator.devices.device import EmulatedDevice

    from .premises import Premises


class HanSecurityMode(str, enum.Enum):
    NONE = "none"
    CBKE = "cbke"


@dataclass(frozen=True, slots=True)
class HanSecurity:
    """How a scenario's HANs are secured. ``install_codes`` (with CRC) override the seed's;
    ``not_whitelisted`` devices are not put in the Device Log; ``join_time_period_s`` is the
    CCS01 JoinTimePeriod of the commissioning-time entries (None: no limit)."""

    mode: HanSecurityMode = HanSecurityMode.NONE
    seed: int = 1
    install_codes: Mapping[int, bytes] = field(default_factory=dict)
    not_whitelisted: frozenset[int] = frozenset()
    join_time_period_s: float | None = None
    hub_identity: "CbkeIdentity | None" = None
    """The hub's CBKE certificate and key when not the seed's (a bench's ``[cbke] hub_identity``)."""

    @property
    def enabled(self) -> bool:
        return self.mode is HanSecurityMode.CBKE


_MATERIAL: dict[int, HanKeyMaterial] = {}


def key_material(seed: int) -> HanKeyMaterial:
    """One :class:`HanKeyMaterial` per seed per process (certificates are cached in it)."""
    material = _MATERIAL.get(seed)
    if material is None:
        material = _MATERIAL[seed] = HanKeyMaterial(seed)
    return material


def install_code_of(security: HanSecurity, eui64: int) -> bytes:
    return security.install_codes.get(eui64) or key_material(security.seed).install_code(eui64)


def secure_premises(site: "Premises", security: HanSecurity) -> None:
    """Make ``site``'s hub the Trust Centre and run join + CBKE on its emulated devices."""
    hub = site.hub
    transport = hub.transport
    install = getattr(transport, "install_link_key", None)  # a hub on bellows: the NCP's key table
    if not isinstance(transport, VirtualPort) and install is None:
        raise ValueError(f"premises {site.spec.premises_id}: [han] security = \"cbke\" needs the virtual HAN or "
                         f"an EZSP radio; the hub here is on {type(transport).__name__}")
    keys = key_material(security.seed)
    bus = site.bus
    clock_epoch = hub.gbcs.setup.epoch.timestamp()  # certificates' validity dates are checked in the run's time

    def refused(source: str) -> Callable[[FrameRefused], None]:
        def report(event: FrameRefused) -> None:
            bus.emit(source, "aps_frame_refused", event.node if source != "comms_hub" else event.sender,
                     sender=f"{event.sender:016X}", cluster=f"0x{event.cluster:04X}", refusal=event.refusal.value,
                     detail=event.detail)
        return report

    hub_security = ApsLinkSecurity(hub.eui64, on_refused=refused("comms_hub"))
    if isinstance(transport, VirtualPort):
        transport.security = hub_security
    else:
        # On an EZSP radio the NCP does APS security: the host computed CBKE, installs the key
        # and asks for the APS ENCRYPTION option on OTA and Tunneling unicasts.
        transport.aps_encrypted_clusters = PROTECTED_CLUSTERS  # type: ignore[attr-defined]
    # An NCP with the CBKE library (and its preinstalled certificate) computes the hub's side.
    ncp = getattr(transport, "ncp_cbke", None)
    # Devices on the air check the certificate's subject against the dongle's own EUI-64.
    identity = security.hub_identity or keys.identity(getattr(transport, "radio_eui64", None) or hub.eui64)
    trust_centre = TrustCentre(hub.eui64, transport, site.clock, bus,
                               identity if ncp is None else ncp.identity(),
                               security=hub_security, ephemeral_source=keys.ephemeral_source(hub.eui64),
                               on_alert=hub.raise_hub_alert, on_link_key=install,
                               next_aps=lambda: hub.ota.next_aps(), ncp=ncp,
                               clock_epoch=clock_epoch)
    hub.trust_centre = trust_centre
    site.han.set_admission(trust_centre.admit)
    for eui64, device in site.devices.items():
        code = install_code_of(security, eui64)
        if eui64 not in security.not_whitelisted:
            trust_centre.update_device_log(eui64, code, security.join_time_period_s, report=False)
        secure_device(device, keys, code, hub.eui64, transport.nwk, on_refused=refused(device.source),
                      clock_epoch=clock_epoch)
    # Real devices (a bench) joined through the NCP's own Trust Centre with their install code
    # (docs/hil.md): the hub's Device Log holds them as joined, so their Key Establishment runs.
    for eui64 in getattr(site, "real_devices", frozenset()):
        trust_centre.update_device_log(eui64, install_code_of(security, eui64), None, report=False)
        trust_centre.joined_through_ncp(eui64)


def secure_device(device: "EmulatedDevice", keys: HanKeyMaterial, install_code: bytes, trust_centre: int,
                  trust_centre_nwk: int, *, on_refused: Callable[[FrameRefused], None] | None = None,
                  clock_epoch: float | None = None) -> None:
    """An emulated device that joins with ``install_code`` and runs CBKE with ``trust_centre``
    (its certificate from ``keys``), then APS-secures its OTA and Tunneling frames."""
    port = device.transport
    if not isinstance(port, VirtualPort):  # emulated devices are always on a virtual medium
        raise TypeError(f"device {device.eui64:016X} is not on a virtual HAN port")
    device_security = ApsLinkSecurity(device.eui64, on_refused=on_refused)
    port.security = device_security
    device.key_establishment = DeviceKeyEstablishment(
        device.eui64, port, device.clock, device.bus, keys.identity(device.eui64), install_code,
        security=device_security, trust_centre=trust_centre, trust_centre_nwk=trust_centre_nwk,
        ephemeral_source=keys.ephemeral_source(device.eui64), next_aps=device.ota.next_aps, source=device.source,
        clock_epoch=clock_epoch)
