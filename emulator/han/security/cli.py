"""``ch-emulator cbke ca|issue|inspect|install-code``: the TEST ONLY CBKE CA and certificate checks.

``issue`` writes a device's or the hub's CBKE identity (certificate + private key) signed by the
emulator's default test CA or one from ``cbke ca``; ``inspect`` shows a certificate's fields and
the public key it reconstructs to, for vendors checking their test certificates.
"""

from __future__ import annotations

import argparse
import datetime
import json
import string
import time
from pathlib import Path
from typing import Any

from emulator.eui64 import format_eui64, parse_eui64

from .aes_mmo import InstallCodeError, install_code_crc, link_key_from_install_code
from .certificates import CertificateError, CryptoSuite, ImplicitCertificate
from .curves import InvalidPoint
from .test_ca import CA_KIND, IDENTITY_KIND, KeyFileError, TestCertificateAuthority, identity_to_json

# Public TEST CAs a vendor's test certificate may come from: (suite, issuer) -> CA public key.
# Certicom's TESTSECA keys as published with its test certificates (TEST ONLY).
_CERTICOM_TEST_CAS: dict[tuple[CryptoSuite, bytes], tuple[str, str]] = {
    (CryptoSuite.SUITE_1, b"TESTSECA"): (
        "Certicom test CA (TESTSECA, suite 1)", "0200FDE8A7F3D1084224962A4E7C54E69AC3F04DA6B8"),
    (CryptoSuite.SUITE_2, bytes.fromhex("1112131415161718")): (
        "Certicom test CA (suite 2)", "0207A445022D9F39F49BDC38380026A27A9E0A1799313AB28C5C1A1C6B605154DB1DFF6752"),
}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "cbke", help="TEST ONLY CBKE certificates: issue, inspect, install codes",
        description="Smart Energy CBKE material for tests: a TEST ONLY ECQV CA, certificate inspection "
                    "and install-code link keys.")
    commands = parser.add_subparsers(dest="cbke_command", metavar="ACTION", required=True)

    ca = commands.add_parser("ca", help="write a new TEST ONLY CA key file")
    ca.add_argument("-o", "--output", required=True, metavar="CA.json")
    ca.add_argument("--suite", default="2", metavar="1|2", help="crypto suite (default 2, as GB uses)")
    ca.add_argument("--issuer", default="CHEMTEST", metavar="ID", help="8 ASCII characters or 16 hex digits")
    ca.add_argument("--force", action="store_true", help="overwrite an existing file")
    ca.set_defaults(func=_ca)

    issue = commands.add_parser("issue", help="issue a TEST ONLY certificate and private key for a device")
    issue.add_argument("--eui", required=True, metavar="EUI", help="the subject's EUI-64, e.g. 00-DB-12-34-56-78-90-A4")
    issue.add_argument("--suite", default="2", metavar="1|2", help="crypto suite (default 2)")
    issue.add_argument("--ca", metavar="KEYFILE", help="CA key file from 'cbke ca' (default: the emulator's test CA)")
    issue.add_argument("--valid-from", metavar="UNIX", help="suite 2: start of validity (default: now)")
    issue.add_argument("--valid-for", metavar="SECONDS", help="suite 2: validity period (default: never expires)")
    issue.add_argument("-o", "--output", required=True, metavar="DIR")
    issue.set_defaults(func=_issue)

    inspect = commands.add_parser("inspect", help="show a certificate's fields and reconstructed public key")
    inspect.add_argument("certificate", metavar="CERT", help="hex, or a file (binary or hex text)")
    inspect.add_argument("--ca", metavar="KEY", help="CA public key (hex) or a CA/identity file")
    inspect.add_argument("--json", action="store_true", help="print one JSON object")
    inspect.set_defaults(func=_inspect)

    code = commands.add_parser("install-code", help="check an install code's CRC and print its link key")
    code.add_argument("code", metavar="HEX", help="install code with its CRC (CRC octets as sent, LSB first)")
    code.set_defaults(func=_install_code)


def _user_error(message: str) -> Exception:
    from emulator.errors import UserError

    return UserError(message)


def _suite(text: str) -> CryptoSuite:
    try:
        return CryptoSuite.from_number(int(text))
    except ValueError:
        raise _user_error(f"--suite: {text!r} is not 1 or 2") from None


def _number(option: str, text: str, bits: int) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise _user_error(f"{option}: {text!r} is not a number") from None
    if not 0 <= value < 1 << bits:
        raise _user_error(f"{option}: {text} is outside 0..{(1 << bits) - 1}")
    return value


def _issuer(text: str) -> bytes:
    if len(text) == 16 and all(c in string.hexdigits for c in text):
        return bytes.fromhex(text)
    raw = text.encode("ascii", "replace")
    if len(raw) != 8:
        raise _user_error(f"--issuer: {text!r} must be 8 ASCII characters or 16 hex digits")
    return raw


def _ca(args: argparse.Namespace) -> int:
    path = Path(args.output)
    if path.exists() and not args.force:
        raise _user_error(f"{path} exists; use --force to overwrite it")
    ca = TestCertificateAuthority.generate(_suite(args.suite), _issuer(args.issuer))
    path.write_text(json.dumps(ca.to_json(), indent=2) + "\n")
    print(f"wrote TEST ONLY CA key {path} (suite {ca.suite.number}, issuer {ca.issuer.hex().upper()})")
    return 0


def _issue(args: argparse.Namespace) -> int:
    try:
        eui = parse_eui64(args.eui)
    except ValueError as exc:
        raise _user_error(f"--eui: {exc}") from None
    suite = _suite(args.suite)
    if args.ca:
        try:
            ca = TestCertificateAuthority.load(Path(args.ca))
        except KeyFileError as exc:
            raise _user_error(f"--ca: {exc}") from None
        if ca.suite is not suite:
            raise _user_error(f"--ca: {args.ca} is a suite {ca.suite.number} CA, --suite asks for {suite.number}")
    else:
        ca = TestCertificateAuthority.default(suite)
    options: dict[str, int] = {}
    if suite is CryptoSuite.SUITE_2:
        options["valid_from"] = (_number("--valid-from", args.valid_from, 40) if args.valid_from
                                 else int(time.time()))
        if args.valid_for:
            options["valid_to"] = _number("--valid-for", args.valid_for, 32)
    elif args.valid_from or args.valid_for:
        raise _user_error("--valid-from/--valid-for: suite 1 certificates carry no validity period")
    identity = ca.issue(eui, **options)
    out = Path(args.output)
    try:
        out.mkdir(parents=True, exist_ok=True)
        stem = f"{eui:016X}.suite{suite.number}"
        (out / f"{stem}.json").write_text(json.dumps(identity_to_json(identity), indent=2) + "\n")
        (out / f"{stem}.cert").write_bytes(identity.certificate.encode())
    except OSError as exc:
        raise _user_error(f"-o: cannot write to {out}: {exc.strerror}") from None
    print(f"TEST ONLY certificate for {format_eui64(eui)} (suite {suite.number}, issuer "
          f"{ca.issuer.hex().upper()}): {out / (stem + '.json')}, {out / (stem + '.cert')}")
    return 0


def _read_certificate(text: str) -> bytes:
    path = Path(text)
    if path.is_file():
        raw = path.read_bytes()
        stripped = b"".join(raw.split())
        try:
            decoded = stripped.decode("ascii")
            if len(decoded) in (96, 148) and all(c in string.hexdigits for c in decoded):
                return bytes.fromhex(decoded)
        except UnicodeDecodeError:
            pass
        return raw
    cleaned = text.replace(" ", "").replace(":", "").replace("-", "")
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        raise _user_error(f"CERT: {text!r} is neither a file nor hex") from None


def _ca_key(text: str, suite: CryptoSuite) -> tuple[int, int]:
    curve = suite.curve
    path = Path(text)
    if path.is_file():
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise _user_error(f"--ca: {path} is not a CA or identity file: {exc}") from None
        kind = str(data.get("kind")) if isinstance(data, dict) else ""
        field = {CA_KIND: "public_key", IDENTITY_KIND: "ca_public_key"}.get(kind)
        if field is None:
            raise _user_error(f"--ca: {path} is neither a CA key ({CA_KIND}) nor an identity ({IDENTITY_KIND}) file")
        text = str(data.get(field, ""))
    try:
        return curve.decompress(bytes.fromhex(text))
    except (ValueError, InvalidPoint) as exc:
        raise _user_error(f"--ca: not a suite {suite.number} CA public key ({curve.point_length} octets, "
                          f"compressed): {exc}") from None


def _known_ca(cert: ImplicitCertificate) -> tuple[str, tuple[int, int]] | None:
    default = TestCertificateAuthority.default(cert.suite)
    if cert.issuer == default.issuer:
        return ("ch-emulator default test CA", default.public_key)
    known = _CERTICOM_TEST_CAS.get((cert.suite, cert.issuer))
    if known is None:
        return None
    return (known[0], cert.curve.decompress(bytes.fromhex(known[1])))


def _ascii(raw: bytes) -> str | None:
    text = raw.decode("ascii", "replace")
    return text if all(c in string.printable and c not in "\r\n\t\x0b\x0c" for c in text) else None


def _time(seconds: int) -> str:
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).isoformat().replace("+00:00", "Z")


def _inspect(args: argparse.Namespace) -> int:
    raw = _read_certificate(args.certificate)
    try:
        cert = ImplicitCertificate.decode(raw)
    except CertificateError as exc:
        raise _user_error(f"CERT: {exc}") from None
    curve = cert.curve
    info: dict[str, Any] = {"suite": cert.suite.number, "curve": curve.name, "length": len(raw),
                            "subject": format_eui64(cert.subject), "issuer": cert.issuer.hex().upper()}
    if _ascii(cert.issuer):
        info["issuer_ascii"] = _ascii(cert.issuer)
    if cert.suite is CryptoSuite.SUITE_1:
        info["profile_attribute_data"] = cert.profile_attribute_data.hex().upper()
    else:
        info.update(type=cert.cert_type, serial=f"{cert.serial:016X}", curve_id=f"{cert.curve_id:02X}",
                    hash_id=f"{cert.hash_id:02X}", valid_from=_time(cert.valid_from),
                    valid_to="never" if cert.expires_at() is None else _time(cert.expires_at() or 0),
                    key_usage=f"{cert.key_usage:02X}",
                    key_agreement=bool(cert.key_usage & 0x08), digital_signature=bool(cert.key_usage & 0x80))
    info["public_reconstruction_key"] = cert.public_reconstruction_key.hex().upper()
    info["hash_e"] = f"{cert.hash_value():032X}"
    try:
        cert.reconstruction_point()
        info["reconstruction_point_valid"] = True
    except CertificateError as exc:
        info["reconstruction_point_valid"] = False
        info["problem"] = str(exc)
    ca: tuple[str, tuple[int, int]] | None
    if args.ca:
        ca = ("given with --ca", _ca_key(args.ca, cert.suite))
    else:
        ca = _known_ca(cert)
    if ca is not None and info["reconstruction_point_valid"]:
        info["ca"] = ca[0]
        info["ca_public_key"] = curve.compress(ca[1]).hex().upper()
        info["public_key"] = curve.compress(cert.public_key(ca[1])).hex().upper()
    elif ca is None:
        info["public_key"] = None
        info["note"] = "issuer is not a known test CA: give its public key with --ca to reconstruct the public key"
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        width = max(len(k) for k in info)
        for key, value in info.items():
            print(f"{key:<{width}}  {value}")
    return 0 if info["reconstruction_point_valid"] else 1


def _install_code(args: argparse.Namespace) -> int:
    text = args.code.replace(" ", "").replace(":", "").replace("-", "")
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise _user_error(f"HEX: {args.code!r} is not hexadecimal") from None
    try:
        key = link_key_from_install_code(raw)
    except InstallCodeError as exc:
        raise _user_error(f"install code: {exc}") from None
    print(f"install code {raw[:-2].hex().upper()} CRC {raw[-2:].hex().upper()} (0x{install_code_crc(raw[:-2]):04X}) "
          f"-> link key {key.hex().upper()}")
    return 0
