"""OTA image tooling: parse, build, sign and inspect ZigBee OTA files, including GBCS layouts.

See docs/image.md for the layouts, the detection heuristic and every warning code.
"""

from emulator.ota.image.build import build_image
from emulator.ota.image.errors import ImageError, ImageWarning
from emulator.ota.image.model import OtaHeader, OtaImage, SubElement
from emulator.ota.image.parse import load_image, parse_image
from emulator.ota.image.report import format_text, inspect_dict
from emulator.ota.image.signing import (
    generate_keypair,
    load_private_key,
    load_public_key,
    private_key_pem,
    public_key_pem,
    save_private_key,
    save_public_key,
    sign_manufacturer_image,
    verify_image,
)

__all__ = [
    "ImageError",
    "ImageWarning",
    "OtaHeader",
    "OtaImage",
    "SubElement",
    "build_image",
    "format_text",
    "generate_keypair",
    "inspect_dict",
    "load_image",
    "load_private_key",
    "load_public_key",
    "parse_image",
    "private_key_pem",
    "public_key_pem",
    "save_private_key",
    "save_public_key",
    "sign_manufacturer_image",
    "verify_image",
]
