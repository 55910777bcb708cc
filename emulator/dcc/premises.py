"""The default test premises, with the device IDs of DCC's published RTDS test data.

Plain data: the DSP loads it into the SMI (:func:`smi_devices`), and the hub and device builders
read the same records to build the Comms Hub and its HAN devices, so both sides agree on IDs,
models and firmware versions. Choices where the public record is silent are listed in docs/dcc.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from emulator.dcc.smi import DEFAULT_GBCS_VERSION, DeviceModel, DeviceStatus, SmiDevice
from emulator.gbcs.codes import DeviceType

MANUFACTURER_CODE = 0x121D
HARDWARE_VERSION_RANGE = (0x1111, 0x1211)  # image min/max hardware version of the test images
TARGET_FIRMWARE_VERSION = 0xACDCACDC  # version of the test images; devices start older

IMPORT_SUPPLIER_ROLE = "ImportSupplier"
GAS_SUPPLIER_ROLE = "GasSupplier"


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    eui64: int
    device_type: DeviceType
    manufacturer_code: int
    image_type: int
    hardware_version: int
    firmware_version: int
    status: DeviceStatus = DeviceStatus.COMMISSIONED
    supplier_roles: tuple[str, ...] = ()  # which of the premises' suppliers are responsible
    gbcs_version: str = DEFAULT_GBCS_VERSION  # the SMI's DeviceGBCSVersion


@dataclass(frozen=True, slots=True)
class PremisesSpec:
    premises_id: str
    comms_hub: int  # the CHF's ID: the hub the CSP delivers to
    devices: tuple[DeviceSpec, ...]
    suppliers: Mapping[str, int] = field(default_factory=dict)  # role -> supplier ID

    def device(self, eui64: int) -> DeviceSpec:
        for spec in self.devices:
            if spec.eui64 == eui64:
                return spec
        raise KeyError(f"no device {eui64:#018x} at premises {self.premises_id}")

    def of_type(self, device_type: DeviceType) -> tuple[DeviceSpec, ...]:
        return tuple(d for d in self.devices if d.device_type is device_type)


CHF_ID = 0x00DB1234567890A2
GPF_ID = 0x00DB1234567890A3  # project's choice: the RTDS CHF ID + 1
ESME_ID = 0x00DB1234567890A0
GSME_ID = 0x00DB1234567890A1
PPMID_ID = 0x00DB1234567890A4

IMPORT_SUPPLIER_ID = 0x90B3D51F30010000  # project's choice of DCC User IDs
GAS_SUPPLIER_ID = 0x90B3D51F30020000


def default_premises(premises_id: str = "PREMISES-0001") -> PremisesSpec:
    """One premises: CH (CHF + GPF), ESME, GSME, PPMID, all commissioned, two suppliers."""
    both = (IMPORT_SUPPLIER_ROLE, GAS_SUPPLIER_ROLE)
    hw = 0x1200
    return PremisesSpec(
        premises_id=premises_id,
        comms_hub=CHF_ID,
        suppliers={IMPORT_SUPPLIER_ROLE: IMPORT_SUPPLIER_ID, GAS_SUPPLIER_ROLE: GAS_SUPPLIER_ID},
        devices=(
            DeviceSpec(CHF_ID, DeviceType.CHF, MANUFACTURER_CODE, 0x0010, hw, 0xACDC0001, supplier_roles=both),
            DeviceSpec(GPF_ID, DeviceType.GPF, MANUFACTURER_CODE, 0x0011, hw, 0xACDC0001, supplier_roles=both),
            DeviceSpec(ESME_ID, DeviceType.ESME, MANUFACTURER_CODE, 0x0000, hw, 0xACDC0001,
                       supplier_roles=(IMPORT_SUPPLIER_ROLE,)),
            DeviceSpec(GSME_ID, DeviceType.GSME, MANUFACTURER_CODE, 0x0001, hw, 0xACDC0001,
                       supplier_roles=(GAS_SUPPLIER_ROLE,)),
            DeviceSpec(PPMID_ID, DeviceType.PPMID, MANUFACTURER_CODE, 0x0084, hw, 0xACDC0001, supplier_roles=both),
        ),
    )


def smi_devices(premises: PremisesSpec) -> list[SmiDevice]:
    """The SMI rows for ``premises``: every device under its Comms Hub, suppliers by role."""
    return [
        SmiDevice(
            eui64=spec.eui64,
            device_type=spec.device_type,
            model=DeviceModel(spec.manufacturer_code, spec.image_type, spec.hardware_version),
            status=spec.status,
            firmware_version=spec.firmware_version,
            comms_hub=premises.comms_hub,
            premises=premises.premises_id,
            suppliers={role: premises.suppliers[role] for role in spec.supplier_roles},
            gbcs_version=spec.gbcs_version,
        )
        for spec in premises.devices
    ]
