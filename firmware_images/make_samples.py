#!/usr/bin/env python3
"""Build the sample firmware images in this folder (TEST ONLY: signed with a published key).

Usage: python firmware_images/make_samples.py [OUT_DIR]

Payloads are derived from a fixed seed and signatures are deterministic (RFC 6979), so re-running
with the committed key reproduces every file byte for byte. Without a key in OUT_DIR a new TEST ONLY
key pair is generated there first.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from emulator.ota.image import (
    build_image,
    generate_keypair,
    load_private_key,
    parse_image,
    save_private_key,
    save_public_key,
)

HERE = Path(__file__).resolve().parent
PRIVATE_KEY_NAME = "TEST-ONLY-signing-key.pem"
PUBLIC_KEY_NAME = "TEST-ONLY-public-key.pem"
MANIFEST_NAME = "samples.json"
SEED = "ch-emulator firmware sample v1"

MANUFACTURER_CODE = 0x121D
FILE_VERSION = 0xACDCACDD
MIN_HARDWARE_VERSION = 0x1111
MAX_HARDWARE_VERSION = 0x1211


@dataclass(frozen=True)
class SampleSpec:
    device_type: str
    image_type: int
    layout: str
    payload_length: int

    @property
    def file_name(self) -> str:
        return (f"{self.device_type.lower()}-{MANUFACTURER_CODE:04X}-{self.image_type:04X}-"
                f"{FILE_VERSION:08X}-TEST-ONLY.ota")

    @property
    def header_string(self) -> str:
        return f"CH emulator {self.device_type} TEST ONLY"


SAMPLES = (
    SampleSpec("PPMID", 0x0084, "gbcs-ppmid", 24 * 1024),
    SampleSpec("ESME", 0x0000, "gbcs", 48 * 1024),
    SampleSpec("GSME", 0x0001, "gbcs", 32 * 1024),
)


def payload_for(spec: SampleSpec) -> bytes:
    """A reproducible stand-in Manufacturer Image: SHAKE-256 of the seed and device type."""
    return hashlib.shake_256(f"{SEED}/{spec.device_type}".encode()).digest(spec.payload_length)


def build_sample(spec: SampleSpec, signing_key) -> bytes:
    return build_image(
        payload_for(spec),
        manufacturer_code=MANUFACTURER_CODE,
        image_type=spec.image_type,
        file_version=FILE_VERSION,
        header_string=spec.header_string,
        min_hardware_version=MIN_HARDWARE_VERSION,
        max_hardware_version=MAX_HARDWARE_VERSION,
        layout=spec.layout,
        signing_key=signing_key if spec.layout == "gbcs" else None,
    )


def manifest_entry(spec: SampleSpec, data: bytes) -> dict:
    image = parse_image(data, source=spec.file_name)
    if image.layout != spec.layout:
        raise SystemExit(f"{spec.file_name}: detected as {image.layout}, built as {spec.layout}")
    digest = image.manufacturer_image_sha256
    return {
        **asdict(spec),
        "file": spec.file_name,
        "manufacturer_code": MANUFACTURER_CODE,
        "file_version": FILE_VERSION,
        "min_hardware_version": MIN_HARDWARE_VERSION,
        "max_hardware_version": MAX_HARDWARE_VERSION,
        "total_image_size": len(data),
        "manufacturer_image_sha256": digest.hex() if digest else None,
        "file_sha256": hashlib.sha256(data).hexdigest(),
    }


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else HERE
    out.mkdir(parents=True, exist_ok=True)
    private_path = out / PRIVATE_KEY_NAME
    if private_path.exists():
        signing_key = load_private_key(private_path)
    else:
        signing_key, public_key = generate_keypair()
        save_private_key(signing_key, private_path)
        save_public_key(public_key, out / PUBLIC_KEY_NAME)
        print(f"TEST ONLY: generated key pair {private_path} / {out / PUBLIC_KEY_NAME}")
    entries = []
    for spec in SAMPLES:
        data = build_sample(spec, signing_key)
        (out / spec.file_name).write_bytes(data)
        entries.append(manifest_entry(spec, data))
        print(f"wrote {out / spec.file_name} ({len(data)} bytes)")
    (out / MANIFEST_NAME).write_text(json.dumps({"samples": entries}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
