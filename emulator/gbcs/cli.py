"""``ch-emulator gbcs decode``: decode and verify any GBCS message, ours or DCC's.

Input is hex, base64 or a file holding either (or the raw bytes). Exit codes: 0 decoded (and, with
``--keystore``, every signature and MAC verified), 1 decoded but verification failed, 2 the input
is not a GBCS message the codec models (the error names the field and byte offset).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import re
import sys
from pathlib import Path

from emulator.errors import UserError
from ..keys.store import CombinedKeyStore, KeyStore, KeyStoreError, open_key_store
from .describe import describe, render_text
from .messages import ACCESS_CONTROL_BROKER_ID, decode_message
from .protection import MessageProtection
from .wire import GbcsDecodeError

_GBCS_TAGS = (0xDD, 0xDF)


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    gbcs = subparsers.add_parser("gbcs", help="GBCS messages: decode and verify")
    sub = gbcs.add_subparsers(dest="gbcs_command", metavar="ACTION", required=True)
    decode = sub.add_parser("decode", help="decode a GBCS message and check its signature and MAC")
    decode.add_argument("message", metavar="HEX|BASE64|FILE", help="the message, or a file holding it")
    decode.add_argument("--keystore", action="append", default=[], metavar="PATH",
                        help="a key directory (<eui>-ds.pem, -ka.key ...) or a dccboxed-keystore keystore.json; "
                             "repeat to combine")
    decode.add_argument("--acb", default=f"{ACCESS_CONTROL_BROKER_ID:016X}", metavar="EUI",
                        help="the Access Control Broker whose KA key MACs commands (default: %(default)s)")
    decode.add_argument("--json", action="store_true", help="print JSON instead of text")
    decode.set_defaults(func=_decode)


def read_message(argument: str) -> bytes:
    """The message bytes from hex or base64 text, or from a file of either (or of raw bytes)."""
    path = Path(argument)
    if _is_file(path):
        data = path.read_bytes()
        if data[:1] and data[0] in _GBCS_TAGS:
            return data
        try:
            text, where = data.decode("ascii"), str(path)
        except UnicodeDecodeError:
            raise UserError(f"{path}: neither a binary GBCS message (DD/DF) nor hex or base64 text") from None
    else:
        text, where = argument, "argument"
    compact = re.sub(r"\s+", "", text).removeprefix("0x")
    if not compact:
        raise UserError(f"{where}: empty message")
    for candidate in (_from_hex(compact), _from_base64(compact)):
        if candidate and candidate[0] in _GBCS_TAGS:
            return candidate
    raise UserError(f"{where}: not a GBCS message (DD or DF) in hex or base64, and no such file")


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # e.g. a hex message longer than a file name may be
        return False


def _from_hex(text: str) -> bytes | None:
    try:
        return bytes.fromhex(text)
    except ValueError:
        return None


def _from_base64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def _keys(paths: list[str]) -> KeyStore | None:
    if not paths:
        return None
    try:
        return CombinedKeyStore(open_key_store(path) for path in paths)
    except KeyStoreError as exc:
        raise UserError(str(exc)) from None


def _decode(args: argparse.Namespace) -> int:
    data = read_message(args.message)
    try:
        message = decode_message(data, allow_unmodelled=True)
    except GbcsDecodeError as exc:
        raise UserError(f"not a valid GBCS message: {exc}") from None
    keys = _keys(args.keystore)
    verdict = None
    if keys is not None:
        try:
            acb = int(args.acb.replace("-", ""), 16)
        except ValueError:
            raise UserError(f"--acb {args.acb!r} is not an EUI-64") from None
        verdict = MessageProtection(keys, access_control_broker=acb).verify(message.envelope)
    description = describe(message, verdict)
    if args.json:
        json.dump(description, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(render_text(description))
        if verdict is None:
            print("verification: not checked (no --keystore)")
    return 0 if verdict is None or verdict.ok else 1
