"""Test doubles for the DSP/CSP tests: a recording Comms Hub and GBCS-shaped OTA images."""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Sequence

from emulator.dcc.csp import Csp, CspPolicy
from emulator.dcc.dsp import Dsp
from emulator.eui64 import format_eui64
from emulator.dcc.messages import UserMessage
from emulator.dcc.premises import (
    HARDWARE_VERSION_RANGE,
    IMPORT_SUPPLIER_ID,
    MANUFACTURER_CODE,
    TARGET_FIRMWARE_VERSION,
    PremisesSpec,
    default_premises,
    smi_devices,
)
from emulator.dcc.service_requests import (
    ActivateFirmware,
    ReadFirmwareVersion,
    RequestHeader,
    UpdateFirmware,
    UpdatePPMIDFirmware,
)
from emulator.dcc.store import Store
from emulator.hub.port import CommandResponse, DeviceAlert, UpstreamSink
from emulator.runtime.clock import VirtualClock

MANUFACTURER_IMAGE = bytes(range(256)) * 4


def gbcs_image(
    *,
    manufacturer_code: int = MANUFACTURER_CODE,
    image_type: int = 0x0084,
    file_version: int = TARGET_FIRMWARE_VERSION,
    hardware_range: tuple[int, int] | None = HARDWARE_VERSION_RANGE,
    manufacturer_image: bytes = MANUFACTURER_IMAGE,
    signed: bool = False,
) -> bytes:
    """A GBCS-style OTA file: header, Manufacturer Image, and (for meters) 0x00 0x40 + signature."""
    field_control = 0x0004 if hardware_range else 0
    header_length = 56 + (4 if hardware_range else 0)
    body = manufacturer_image + (b"\x00\x40" + bytes(64) if signed else b"")
    header = struct.pack(
        "<IHHHHHIH32sI", 0x0BEEF11E, 0x0100, header_length, field_control, manufacturer_code, image_type,
        file_version, 0x0002, b"GBCS test image".ljust(32, b"\x00"), header_length + len(body),
    )
    if hardware_range:
        header += struct.pack("<HH", *hardware_range)
    return header + body


MANUFACTURER_IMAGE_HASH = hashlib.sha256(MANUFACTURER_IMAGE).digest()


@dataclass
class FakeHub:
    """A HubPort that records what the CSP asked and lets a test speak for the hub."""

    eui64: int
    upstream: UpstreamSink | None = None
    distributions: list[dict[str, Any]] = field(default_factory=list)
    activations: list[dict[str, Any]] = field(default_factory=list)
    cancellations: list[dict[str, Any]] = field(default_factory=list)
    reads: list[dict[str, Any]] = field(default_factory=list)

    def set_upstream(self, sink: UpstreamSink) -> None:
        self.upstream = sink

    def distribute_image(self, image: bytes, targets: Sequence[int], *, activate_now: bool, request_id: str) -> None:
        self.distributions.append(
            {"image": image, "targets": tuple(targets), "activate_now": activate_now, "request_id": request_id}
        )

    def activate_firmware(
        self, device: int, firmware_hash: bytes, execution_time: float | None, *, request_id: str
    ) -> None:
        self.activations.append(
            {"device": device, "hash": firmware_hash, "execution_time": execution_time, "request_id": request_id}
        )

    def cancel_activation(self, device: int, *, request_id: str) -> None:
        self.cancellations.append({"device": device, "request_id": request_id})

    def read_firmware_version(self, device: int, *, request_id: str) -> None:
        self.reads.append({"device": device, "request_id": request_id})

    # -- speaking for the hub ------------------------------------------------------------------
    def alert(self, code: int, device: int, time: float, **details: Any) -> None:
        assert self.upstream is not None
        self.upstream(DeviceAlert(code, device, self.eui64, time, details))

    def respond(self, request_id: str, service_reference: str, device: int, time: float, **details: Any) -> None:
        assert self.upstream is not None
        self.upstream(CommandResponse(request_id, service_reference, device, self.eui64, time, details))


class Harness:
    """One DCC (DSP + CSP) in virtual time with the default premises behind a fake hub."""

    def __init__(self, policy: CspPolicy | None = None, premises: PremisesSpec | None = None,
                 store: Store | None = None, load_smi: bool = True) -> None:
        self.clock = VirtualClock()
        self.store = store or Store(":memory:")
        self.csp = Csp(self.clock, policy)
        self.messages: list[UserMessage] = []
        self.dsp = Dsp(clock=self.clock, store=self.store, csp=self.csp, sink=self.messages.append)
        self.premises = premises or default_premises()
        if load_smi:
            self.dsp.smi.add_all(smi_devices(self.premises))
        self.hub = FakeHub(self.premises.comms_hub)
        self.csp.add_hub(self.hub)
        self._counter = 0

    def header(self, variant: str, target: int = 0, originator: int = IMPORT_SUPPLIER_ID) -> RequestHeader:
        self._counter += 1
        return RequestHeader(
            request_id=f"{format_eui64(originator)}:{format_eui64(target)}:{self._counter}",
            command_variant=8 if variant in ("11.1", "11.4") else 1,
            service_reference=variant.rsplit(".", 1)[0],
            service_reference_variant=variant,
            originator=originator,
            target=target,
            counter=self._counter,
        )

    def update_ppmid(self, devices: Sequence[int], image: bytes | None = None, version: int | None = None,
                     originator: int = IMPORT_SUPPLIER_ID) -> UpdatePPMIDFirmware:
        image = gbcs_image() if image is None else image
        return UpdatePPMIDFirmware(
            self.header("11.4", originator=originator), image,
            TARGET_FIRMWARE_VERSION if version is None else version, tuple(devices),
        )

    def update_meters(self, devices: Sequence[int], image: bytes | None = None,
                      originator: int = IMPORT_SUPPLIER_ID) -> UpdateFirmware:
        image = gbcs_image(image_type=0x0000, signed=True) if image is None else image
        return UpdateFirmware(self.header("11.1", originator=originator), image, TARGET_FIRMWARE_VERSION, tuple(devices))

    def activate(self, device: int, when: datetime | None = None, firmware_hash: bytes = MANUFACTURER_IMAGE_HASH
                 ) -> ActivateFirmware:
        return ActivateFirmware(self.header("11.3", device), device, firmware_hash, when)

    def read(self, device: int) -> ReadFirmwareVersion:
        return ReadFirmwareVersion(self.header("11.2", device), device)

    def codes(self) -> list[str]:
        return [m.code for m in self.messages]

    def with_code(self, code: str) -> list[UserMessage]:
        return [m for m in self.messages if m.code == code]
