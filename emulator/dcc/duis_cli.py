"""``ch-emulator duis build``: write a schema-valid DUIS request a User can POST with curl."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from emulator.dcc.duis.builder import ENDPOINTS, BuildError, RequestOptions, parse_when, render_request
from emulator.dcc.duis.errors import DuisError
from emulator.dcc.duis.eui import parse_eui64


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("duis", help="DUIS tools: build a request")
    commands = parser.add_subparsers(dest="duis_command", required=True)
    build = commands.add_parser("build", help="write a DUIS request for SR 11.1-11.4 or 8.11 (stdout or --output)")
    build.add_argument("variant", choices=["11.1", "11.2", "11.3", "11.4", "8.11"], help="the Service Request")
    build.add_argument("--device", action="append", default=[], metavar="EUI",
                       help="target device (repeat for 11.1/11.4), e.g. 00-DB-12-34-56-78-90-A4")
    build.add_argument("--image", metavar="FILE", help="the OTA image (11.1/11.4; 11.3 takes its hash)")
    build.add_argument("--hash", metavar="HEX", help="11.3: SHA-256 of the Manufacturer Image, instead of --image")
    build.add_argument("--execute-at", metavar="WHEN", help="11.3: ISO date and time, or 'cancel' (3000-12-31)")
    build.add_argument("--firmware-version", metavar="TEXT", help="11.1/11.4: default the image header's version")
    build.add_argument("--comms-hub", metavar="EUI", help="8.11: the Comms Hub whose Device Log changes")
    build.add_argument("--install-code", metavar="HEX", help="8.11 Add: the device's install code (a label's CRC is dropped)")
    build.add_argument("--join-time-period", type=int, metavar="S", help="8.11 Add: JoinTimePeriod, 1-3600 seconds")
    build.add_argument("--remove", action="store_true", help="8.11: RequestType Remove (CCS02) instead of Add")
    build.add_argument("--user", metavar="EUI", default="90-B3-D5-1F-30-01-00-00",
                       help="the sending User (default 90-B3-D5-1F-30-01-00-00, DCC's RTDS supplier)")
    build.add_argument("--counter", type=int, help="RequestID counter (default: milliseconds since 1970)")
    build.add_argument("--schema-version", default="5.4", help="schemaVersion (default 5.4)")
    build.add_argument("--sign-with", metavar="KEY", help="PEM private key of the User (enveloped XML-DSig)")
    build.add_argument("--cert", metavar="CERT", help="PEM certificate of that key (its issuer and serial are named)")
    build.add_argument("--output", "-o", metavar="FILE", help="write here instead of standard output")
    build.set_defaults(func=build_command)
    sign = commands.add_parser(
        "sign-precommand",
        help="11.3: sign DCC's CS06 pre-command (PreCommand/GBCSPayload) with the User's DS key; "
             "prints the SignedPreCommand GBCSPayload (base64)")
    sign.add_argument("precommand", metavar="PRECOMMAND_B64",
                      help="the GBCSPayload of DCC's PreCommand, base64 (or @FILE holding it)")
    sign.add_argument("--sign-with", metavar="KEY", default=None,
                      help="PEM private DS key of the supplier (default: the TEST ONLY ZAZ1 supplier "
                           "90-B3-D5-1F-30-01-00-00 key)")
    sign.add_argument("--output", "-o", metavar="FILE", help="write here instead of standard output")
    sign.set_defaults(func=sign_precommand_command)


def _read(path: str, option: str) -> bytes:
    from emulator.errors import UserError

    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise UserError(f"{option} {path}: {exc.strerror or exc}") from None


def build_command(args: argparse.Namespace) -> int:
    from emulator.errors import UserError
    from emulator.keys.pem import KeyStoreError, load_certificate, load_private_pem, same_key
    from emulator.keys.store import KeyEntry, KeyUsage
    from emulator.dcc.duis.signing import DuisSigner

    try:
        devices = tuple(parse_eui64(d, element="--device") for d in args.device)
        user = parse_eui64(args.user, element="--user")
        digest = None
        if args.hash is not None:
            try:
                digest = bytes.fromhex(args.hash)
            except ValueError:
                raise BuildError(f"--hash: {args.hash[:80]!r} is not hex") from None
        install_code = None
        if args.install_code is not None:
            try:
                install_code = bytes.fromhex(args.install_code)
            except ValueError:
                raise BuildError(f"--install-code: {args.install_code[:80]!r} is not hex") from None
        options = RequestOptions(
            variant=args.variant, devices=devices, user=user, counter=args.counter,
            image=_read(args.image, "--image") if args.image else None,
            firmware_version=args.firmware_version, firmware_hash=digest,
            execution=parse_when(args.execute_at) if args.execute_at else None,
            schema_version=args.schema_version,
            comms_hub=parse_eui64(args.comms_hub, element="--comms-hub") if args.comms_hub else None,
            install_code=install_code, join_time_period=args.join_time_period, remove=args.remove,
        )
        signer = None
        if args.sign_with or args.cert:
            if not (args.sign_with and args.cert):
                raise BuildError("--sign-with and --cert go together")
            certificate = load_certificate(_read(args.cert, "--cert"), f"--cert {args.cert}")
            key = load_private_pem(_read(args.sign_with, "--sign-with"), f"--sign-with {args.sign_with}")
            entry = KeyEntry.from_certificate(user, KeyUsage.XML_SIGN, certificate, key, source=args.cert)
            if not same_key(entry.public_key, key.public_key()):
                raise BuildError(f"--sign-with {args.sign_with} is not the private key of --cert {args.cert}")
            signer = DuisSigner(entry)
        document = render_request(options, signer)
    except (BuildError, DuisError, KeyStoreError) as exc:
        raise UserError(str(exc)) from None
    if args.output:
        try:
            Path(args.output).write_bytes(document)
        except OSError as exc:
            raise UserError(f"--output {args.output}: {exc.strerror or exc}") from None
    else:
        sys.stdout.buffer.write(document + b"\n")
    print(f"POST it to {ENDPOINTS[args.variant]}"
          f"{'' if signer else ' (unsigned: accepted with a warning unless serve has --require-signatures)'}",
          file=sys.stderr)
    return 0


def sign_precommand_command(args: argparse.Namespace) -> int:
    """The signed pre-command a User returns in 11.3 CV 5 (docs/duis.md "11.3 as DCC runs it")."""
    import base64
    import binascii

    from emulator.errors import UserError
    from emulator.gbcs.precommand import PreCommandError, sign_precommand
    from emulator.keys.embedded import REMOTE_PARTIES_DIR, ZAZ1_SUPPLIER_EUI
    from emulator.keys.pem import KeyStoreError, load_private_pem

    text = args.precommand
    where = "PRECOMMAND_B64"
    if text.startswith("@"):
        where = text[1:]
        text = _read(where, "PRECOMMAND_B64").decode("ascii", "replace")
    try:
        precommand = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise UserError(f"{where}: not base64: {exc}") from None
    key_path = args.sign_with or str(REMOTE_PARTIES_DIR / f"{ZAZ1_SUPPLIER_EUI:016x}-ds.key")
    try:
        key = load_private_pem(_read(key_path, "--sign-with"), f"--sign-with {key_path}")
        signed = base64.b64encode(sign_precommand(precommand, key))
    except (KeyStoreError, PreCommandError) as exc:
        raise UserError(f"{where}: {exc}" if isinstance(exc, PreCommandError) else str(exc)) from None
    if args.output:
        try:
            Path(args.output).write_bytes(signed + b"\n")
        except OSError as exc:
            raise UserError(f"--output {args.output}: {exc.strerror or exc}") from None
    else:
        sys.stdout.buffer.write(signed + b"\n")
    if args.sign_with is None:
        print("signed with the TEST ONLY ZAZ1 supplier DS key 90-B3-D5-1F-30-01-00-00", file=sys.stderr)
    return 0
