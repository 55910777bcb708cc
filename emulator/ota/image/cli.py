"""``ch-emulator image keygen|build|inspect|verify``.

Numbers are read by the handlers, not by argparse, so a bad value ends in one line naming the
option rather than argparse's usage dump.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from emulator.ota.image import format as fmt
from emulator.ota.image.model import OtaImage

_TEST_ONLY = "TEST ONLY"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "image", help="build, inspect, sign and verify OTA image files",
        description="Build, inspect, sign and verify ZigBee OTA files (standard and GBCS layouts).",
    )
    commands = parser.add_subparsers(dest="image_command", metavar="ACTION", required=True)

    keygen = commands.add_parser("keygen", help="write a TEST ONLY P-256 key pair (PEM)")
    keygen.add_argument("--private-key", required=True, metavar="OUT.pem")
    keygen.add_argument("--public-key", required=True, metavar="OUT.pem")
    keygen.add_argument("--force", action="store_true", help="overwrite existing files")
    keygen.set_defaults(func=_keygen)

    build = commands.add_parser("build", help="wrap a payload in an OTA file")
    build.add_argument("payload", metavar="PAYLOAD", help="Manufacturer Image (GBCS) or upgrade image data")
    build.add_argument("-o", "--output", required=True, metavar="OUT")
    build.add_argument("--manufacturer", required=True, metavar="CODE", help="manufacturer code, e.g. 0x121D")
    build.add_argument("--image-type", required=True, metavar="TYPE", help="image type, e.g. 0x0084")
    build.add_argument("--file-version", required=True, metavar="VERSION", help="e.g. 0xACDCACDD")
    build.add_argument("--stack-version", default="0x0002", metavar="VERSION")
    build.add_argument("--header-string", default="", metavar="TEXT", help="at most 32 bytes of UTF-8")
    build.add_argument("--min-hw", metavar="VERSION", help="minimum hardware version")
    build.add_argument("--max-hw", metavar="VERSION", help="maximum hardware version")
    build.add_argument("--layout", default="gbcs", choices=fmt.LAYOUTS)
    build.add_argument("--signing-key", metavar="PEM", help="P-256 private key (layout gbcs)")
    build.set_defaults(func=_build)

    inspect = commands.add_parser("inspect", help="show an OTA file's header, layout and warnings")
    inspect.add_argument("file", metavar="FILE")
    inspect.add_argument("--json", action="store_true", help="print one JSON object")
    inspect.add_argument("--layout", choices=fmt.LAYOUTS, help="force the body layout")
    inspect.set_defaults(func=_inspect)

    verify = commands.add_parser("verify", help="check a GBCS image's signature")
    verify.add_argument("file", metavar="FILE")
    verify.add_argument("--public-key", required=True, metavar="PEM")
    verify.add_argument("--layout", choices=fmt.LAYOUTS, help="force the body layout")
    verify.set_defaults(func=_verify)


def parse_number(option: str, text: str, bits: int) -> int:
    """Read a decimal or 0x-prefixed hex number that must fit in ``bits`` bits."""
    from emulator.errors import UserError

    try:
        value = int(text.replace("_", ""), 0)
    except ValueError:
        raise UserError(f"{option}: {text!r} is not a number (use decimal or 0x-prefixed hex)") from None
    maximum = (1 << bits) - 1
    if not 0 <= value <= maximum:
        raise UserError(f"{option}: {text} is outside 0..0x{maximum:0{bits // 4}X}")
    return value


def _keygen(args: argparse.Namespace) -> int:
    from emulator.errors import UserError
    from emulator.ota.image.signing import generate_keypair, save_private_key, save_public_key

    for path in (args.private_key, args.public_key):
        if os.path.exists(path) and not args.force:
            raise UserError(f"{path} exists; use --force to overwrite it")
    private_key, public_key = generate_keypair()
    try:
        save_private_key(private_key, args.private_key)
        save_public_key(public_key, args.public_key)
    except OSError as exc:
        raise UserError(f"{exc.filename}: cannot write: {exc.strerror}") from None
    print(f"{_TEST_ONLY}: wrote P-256 private key {args.private_key} and public key "
          f"{args.public_key}; never sign real firmware with them")
    return 0


def _build(args: argparse.Namespace) -> int:
    from emulator.errors import UserError
    from emulator.ota.image.build import build_image
    from emulator.ota.image.parse import parse_image
    from emulator.ota.image.signing import load_private_key

    numbers = {
        "manufacturer_code": parse_number("--manufacturer", args.manufacturer, 16),
        "image_type": parse_number("--image-type", args.image_type, 16),
        "file_version": parse_number("--file-version", args.file_version, 32),
        "stack_version": parse_number("--stack-version", args.stack_version, 16),
    }
    min_hw = None if args.min_hw is None else parse_number("--min-hw", args.min_hw, 16)
    max_hw = None if args.max_hw is None else parse_number("--max-hw", args.max_hw, 16)
    if (min_hw is None) != (max_hw is None):
        raise UserError("--min-hw and --max-hw: give both or neither")
    if min_hw is not None and max_hw is not None and min_hw > max_hw:
        raise UserError(f"--min-hw 0x{min_hw:04X} is above --max-hw 0x{max_hw:04X}")
    if args.signing_key and args.layout != "gbcs":
        raise UserError(f"--signing-key: layout {args.layout} carries no signature; only gbcs does")
    signing_key = None
    if args.signing_key:
        try:
            signing_key = load_private_key(args.signing_key)
        except OSError as exc:
            raise UserError(f"{args.signing_key}: cannot read: {exc.strerror}") from None
        except ValueError as exc:
            raise UserError(str(exc)) from None
    payload = _read(args.payload)
    try:
        data = build_image(
            payload, header_string=args.header_string, min_hardware_version=min_hw,
            max_hardware_version=max_hw, layout=args.layout, signing_key=signing_key, **numbers,
        )
    except ValueError as exc:
        raise UserError(str(exc)) from None
    try:
        with open(args.output, "wb") as handle:
            handle.write(data)
    except OSError as exc:
        raise UserError(f"{args.output}: cannot write: {exc.strerror}") from None
    image = parse_image(data, source=args.output, layout=args.layout)
    digest = image.manufacturer_image_sha256
    summary = (f"wrote {args.output}: {len(data)} bytes, layout {image.layout}, "
               f"file version 0x{image.header.file_version:08X}")
    if digest is not None:
        summary += f", manufacturer image SHA-256 {digest.hex()}"
    print(summary)
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from emulator.ota.image.report import format_text, inspect_dict

    image = _load(args.file, args.layout)
    if args.json:
        print(json.dumps(inspect_dict(image)))
    else:
        print(format_text(image, args.file))
    return 0


def _verify(args: argparse.Namespace) -> int:
    from emulator.errors import UserError
    from emulator.ota.image.signing import load_public_key, verify_image

    image = _load(args.file, args.layout)
    try:
        public_key = load_public_key(args.public_key)
    except OSError as exc:
        raise UserError(f"{args.public_key}: cannot read: {exc.strerror}") from None
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if image.signature is None:
        print(f"no signature: {args.file} has layout {image.layout}; only gbcs images are signed")
        return 1
    if not any(image.signature):
        print(f"signature invalid: {args.file} is unsigned (all-zero signature)")
        return 1
    if verify_image(image, public_key):
        print("signature valid")
        return 0
    print(f"signature invalid: {args.file}'s signature does not match its Manufacturer Image "
          f"under {args.public_key}")
    return 1


def _read(path: str) -> bytes:
    from emulator.errors import UserError

    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise UserError(f"{path}: cannot read: {exc.strerror}") from None


def _load(path: str, layout: str | None) -> OtaImage:
    from emulator.errors import UserError
    from emulator.ota.image.errors import ImageError
    from emulator.ota.image.parse import load_image

    try:
        return load_image(path, layout=layout)
    except ImageError as exc:
        raise UserError(str(exc)) from None
