"""DCC Users the emulated DSP knows, their roles, and which roles may send SR 11.1-11.4.

A User is known when the SMI names it responsible for a device (its supplier roles there), or
when it is one of DCC's ZAZ1 test organisations (TEST ONLY IDs, from DCC's published keystore).
Eligibility follows the DUIS request matrix as DCC's duis-parser encodes it: 11.1/11.3/11.4 only
by the device's Import Supplier (ESME, PPMID, Comms Hub) or Gas Supplier (GSME, GPF); 11.2 also by
Electricity Distributor, Gas Transporter, Registered Supplier Agent and Other User; 8.11 only by a
supplier of the Comms Hub's premises.
"""

from __future__ import annotations

import enum
from typing import Mapping

from emulator.dcc.service_requests import ServiceReferenceVariant


class UserRole(str, enum.Enum):
    IMPORT_SUPPLIER = "IS"
    GAS_SUPPLIER = "GS"
    ELECTRICITY_DISTRIBUTOR = "ED"
    GAS_TRANSPORTER = "GT"
    REGISTERED_SUPPLIER_AGENT = "RSA"
    OTHER_USER = "OU"
    EXPORT_SUPPLIER = "ES"


SUPPLIER_ROLES = frozenset({UserRole.IMPORT_SUPPLIER, UserRole.GAS_SUPPLIER})

ELIGIBLE_ROLES: Mapping[ServiceReferenceVariant, frozenset[UserRole]] = {
    ServiceReferenceVariant.UPDATE_FIRMWARE: SUPPLIER_ROLES,
    ServiceReferenceVariant.ACTIVATE_FIRMWARE: SUPPLIER_ROLES,
    ServiceReferenceVariant.UPDATE_PPMID_FIRMWARE: SUPPLIER_ROLES,
    ServiceReferenceVariant.READ_FIRMWARE_VERSION: frozenset(UserRole),
    ServiceReferenceVariant.UPDATE_HAN_DEVICE_LOG: SUPPLIER_ROLES,
}

SMI_ROLE_NAMES: Mapping[str, UserRole] = {
    "ImportSupplier": UserRole.IMPORT_SUPPLIER,
    "GasSupplier": UserRole.GAS_SUPPLIER,
}
"""SMI supplier-role names (emulator.dcc.premises) -> DUIS user roles."""

ZAZ1_USERS: Mapping[int, frozenset[UserRole]] = {
    0x90B3D51F30010000: frozenset({UserRole.IMPORT_SUPPLIER, UserRole.GAS_SUPPLIER}),
    0x90B3D51F30030000: frozenset({UserRole.IMPORT_SUPPLIER, UserRole.GAS_SUPPLIER}),
    0x90B3D51F30020000: frozenset({UserRole.ELECTRICITY_DISTRIBUTOR, UserRole.GAS_SUPPLIER}),
    0x90B3D51F30010009: frozenset({UserRole.OTHER_USER}),
    0x00DB123456780004: frozenset({UserRole.OTHER_USER}),
    0x90B3D51F30000002: frozenset({UserRole.OTHER_USER}),
}
"""DCC's ZAZ1 test Users (dccboxed-keystore 0.4.2) with the roles their certificates carry
(supplier, network operator, other user); 90-B3-D5-1F-30-02-00-00 is also the default premises' gas
supplier, so it keeps that role. 90-B3-D5-1F-30-00-00-02 is the DCC's own ID: DCC's CS08 11.2
template sends from it, so it may read firmware versions. TEST ONLY identities."""
