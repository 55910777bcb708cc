"""``ch-emulator certify list|image|device``: vendor pre-certification checks (docs/certify.md).

Exit codes: 0 no check failed, 1 at least one check failed, 2 a user's mistake (missing file,
bad option). Options are read by the handlers so a bad value names its option in one line.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
from typing import Any

_HASH = re.compile(r"^[0-9a-fA-F]{64}$")
_SR_VERSION = re.compile(r"^(0x)?[0-9a-fA-F]{1,8}$")


def register(subparsers: Any) -> None:
    from emulator.certify.image_run import FIRMWARE_DEVICE_TYPES

    parser = subparsers.add_parser(
        "certify", help="vendor pre-certification checks (image file, device under test)",
        description="Run the vendor pre-certification checks (IDs A1-A12, B1-B16, C1-C7, D1-D6).",
    )
    commands = parser.add_subparsers(dest="certify_command", metavar="ACTION", required=True)

    listing = commands.add_parser("list", help="list every check: id, title, source, needs, status")
    listing.add_argument("--json", action="store_true", help="one JSON object per check")
    listing.add_argument("--only", metavar="IDS", help="comma-separated check IDs, e.g. A1,A4")
    listing.set_defaults(func=_list)

    image = commands.add_parser("image", help="run the A checks on an OTA image file")
    image.add_argument("file", metavar="FILE")
    image.add_argument("--device-type", choices=[d.value for d in FIRMWARE_DEVICE_TYPES],
                       help="target device type: sets the expected GBCS layout")
    image.add_argument("--hardware", metavar="VERSION", help="target hardware version (16-bit)")
    image.add_argument("--firmware-version", metavar="HEX8",
                       help="the version as the SR's FirmwareVersion carries it (8 hex digits)")
    image.add_argument("--manufacturer", metavar="CODE", help="the CPL entry's manufacturer code")
    image.add_argument("--image-type", metavar="TYPE", help="the CPL entry's image type")
    image.add_argument("--cpl-hash", metavar="HEX", help="the CPL entry's firmware hash (64 hex digits)")
    image.add_argument("--supplier-key", metavar="PEM",
                       help="supplier public key or certificate(s) (default: ZAZ1 supplier, TEST ONLY)")
    image.add_argument("--zigbee-signer", metavar="EUI64", action="append", default=[],
                       help="an EUI-64 allowed to sign ZigBee images (A11); repeatable")
    image.add_argument("--zigbee-ca", metavar="HEX",
                       help="suite-2 CA public key, compressed (74 hex digits; default Certicom's "
                       "TEST ONLY CA)")
    image.add_argument("--current-version", metavar="VERSION", help="the device's running file version")
    image.add_argument("--slot-size", metavar="BYTES", help="the device's declared image slot size")
    image.add_argument("--deploy-from", metavar="YYYY-MM-DD", help="deployment window start (default today, UTC)")
    image.add_argument("--deploy-until", metavar="YYYY-MM-DD", help="deployment window end (default --deploy-from)")
    image.add_argument("--only", metavar="IDS", help="run only these checks, e.g. A1,A4")
    image.add_argument("--json", action="store_true", help="JSON lines on stdout instead of text")
    image.add_argument("--junit", metavar="FILE", help="also write a JUnit XML report")
    image.add_argument("--html", metavar="FILE", help="also write an HTML report")
    image.set_defaults(func=_image)

    from emulator.certify.device import cli as device_cli

    device_cli.register(commands)


def _list(args: argparse.Namespace) -> int:
    from emulator.certify.catalogue import select
    from emulator.certify.reports import catalogue_lines, catalogue_text
    from emulator.errors import UserError

    try:
        checks = select(args.only)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if args.json:
        for line in catalogue_lines(checks):
            print(line)
    else:
        print(catalogue_text(checks))
    return 0


def _number(option: str, text: str | None, bits: int) -> int | None:
    from emulator.ota.image.cli import parse_number

    return None if text is None else parse_number(option, text, bits)


def _sr_version(text: str | None) -> int | None:
    from emulator.errors import UserError

    if text is None:
        return None
    if not _SR_VERSION.match(text):
        raise UserError(f"--firmware-version: {text!r} is not the SR's FirmwareVersion (up to 8 hex digits, "
                        "e.g. ACDCACDD)")
    return int(text, 16)


def _eui64(text: str) -> int:
    from emulator.errors import UserError

    digits = text.replace("-", "").replace(":", "")
    if not re.fullmatch(r"[0-9a-fA-F]{16}", digits):
        raise UserError(f"--zigbee-signer: {text!r} is not an EUI-64 (e.g. 00-DB-12-34-56-78-90-A0)")
    return int(digits, 16)


def _zigbee_ca(text: str | None) -> bytes | None:
    from emulator.han.security.curves import SECT283K1
    from emulator.errors import UserError

    if text is None:
        return None
    try:
        key = bytes.fromhex(text)
        SECT283K1.decompress(key)
    except ValueError:
        raise UserError(f"--zigbee-ca: {text!r} is not a compressed sect283k1 point (74 hex digits, "
                        "starting 02 or 03)") from None
    return key


def _date(option: str, text: str | None, default: dt.date) -> dt.date:
    from emulator.errors import UserError

    if text is None:
        return default
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise UserError(f"{option}: {text!r} is not a date (YYYY-MM-DD)") from None


def _options(args: argparse.Namespace) -> Any:
    from emulator.certify.image_run import ImageOptions
    from emulator.gbcs.codes import DeviceType
    from emulator.certify.keys import KeyFileError, default_supplier_keys, load_supplier_keys
    from emulator.errors import UserError

    cpl_hash = None
    if args.cpl_hash is not None:
        if not _HASH.match(args.cpl_hash):
            raise UserError(f"--cpl-hash: {args.cpl_hash!r} is not a SHA-256 (64 hex digits)")
        cpl_hash = bytes.fromhex(args.cpl_hash)
    if args.supplier_key is None:
        keys, default = default_supplier_keys(), True
    else:
        try:
            keys, default = load_supplier_keys(args.supplier_key), False
        except KeyFileError as exc:
            raise UserError(f"--supplier-key: {exc}") from None
    slot = _number("--slot-size", args.slot_size, 32)
    deploy_from = _date("--deploy-from", args.deploy_from, dt.datetime.now(dt.timezone.utc).date())
    deploy_until = _date("--deploy-until", args.deploy_until, deploy_from)
    if deploy_until < deploy_from:
        raise UserError(f"--deploy-until {deploy_until} is before --deploy-from {deploy_from}")
    return ImageOptions(
        device_type=None if args.device_type is None else DeviceType(args.device_type),
        hardware_version=_number("--hardware", args.hardware, 16),
        firmware_version=_sr_version(args.firmware_version),
        manufacturer_code=_number("--manufacturer", args.manufacturer, 16),
        image_type=_number("--image-type", args.image_type, 16),
        cpl_hash=cpl_hash,
        current_version=_number("--current-version", args.current_version, 32),
        slot_size=slot,
        zigbee_signers=tuple(_eui64(text) for text in args.zigbee_signer),
        zigbee_ca=_zigbee_ca(args.zigbee_ca),
        supplier_keys=keys,
        default_supplier_keys=default,
        deploy_from=deploy_from,
        deploy_until=deploy_until,
    )


def _image(args: argparse.Namespace) -> int:
    from emulator.certify.runner import certify_image
    from emulator.errors import UserError

    options = _options(args)
    try:
        with open(args.file, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise UserError(f"{args.file}: cannot read: {exc.strerror}") from None
    try:
        report = certify_image(args.file, data, options, only=args.only)
    except ValueError as exc:  # --only
        raise UserError(str(exc)) from None
    return emit_report(args, report)


def emit_report(args: argparse.Namespace, report: Any) -> int:
    """Write ``--junit`` / ``--html`` and print the report (``--json``: JSON lines); the exit code."""
    from emulator.certify import reports

    _write(args.junit, "--junit", reports.junit_xml(report))
    _write(args.html, "--html", reports.html_report(report).encode())
    if args.json:
        for line in reports.json_lines(report):
            print(line)
    else:
        print(reports.text(report))
    sys.stdout.flush()
    return int(report.exit_code)


def _write(path: str | None, option: str, content: bytes) -> None:
    from emulator.errors import UserError

    if path is None:
        return
    try:
        with open(path, "wb") as handle:
            handle.write(content)
    except OSError as exc:
        raise UserError(f"{option} {path}: cannot write: {exc.strerror}") from None
