"""``ch-emulator certify device``: the B checks against a virtual or a real device (docs/certify.md).

Exit codes as ``certify image``: 0 no check failed, 1 at least one failed, 2 a user's mistake.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from emulator.ota.policy import BlockPeriodUnit


def register(commands: Any) -> None:
    device = commands.add_parser(
        "device", help="run the B checks against a device: --virtual (emulated) or --bench (real)",
        description="Run the device checks (B1-B16; C and D report what they wait for) against an emulated "
                    "device in virtual time or a real one on a bench dongle.")
    target = device.add_mutually_exclusive_group(required=True)
    target.add_argument("--virtual", metavar="SPEC",
                        help="conformant, a fault of the catalogue (docs/faults.md) or a profile file (.toml)")
    target.add_argument("--bench", metavar="BENCH", help="bench file (docs/hil.md): dongle and device under test")
    device.add_argument("--device", metavar="EUI64", help="which bench device (default: the first)")
    device.add_argument("--image", metavar="FILE",
                        help="the image under test (default: the ESME sample of firmware_images/, TEST ONLY)")
    device.add_argument("--signing-key", metavar="PEM",
                        help="key that re-signs derived images (default: firmware_images' TEST ONLY key)")
    device.add_argument("--minimum-block-period-unit", choices=[u.value for u in BlockPeriodUnit],
                        help="the unit the device reads MinimumBlockPeriod in (B6; default ms or the profile's)")
    device.add_argument("--min-query-interval", metavar="S", type=float,
                        help="declared back-off after NO_IMAGE_AVAILABLE (B4; default 60 s)")
    device.add_argument("--max-silent-phase", metavar="S", type=float,
                        help="declared longest delay from the last block to Upgrade End Request (B13; default 120 s)")
    device.add_argument("--only", metavar="IDS", help="run only these checks, e.g. B5,B11")
    device.add_argument("--json", action="store_true", help="JSON lines on stdout instead of text")
    device.add_argument("--junit", metavar="FILE", help="also write a JUnit XML report")
    device.add_argument("--html", metavar="FILE", help="also write an HTML report")
    device.add_argument("--pcap-dir", metavar="DIR", help="write each check's OTA frames to DIR/CHECK.pcap")
    device.set_defaults(func=run_device)


def run_device(args: argparse.Namespace) -> int:
    import dataclasses

    from emulator.certify.cli import emit_report
    from emulator.certify.device.dut import DeviceSpecError, virtual_device
    from emulator.certify.device.runner import certify_device, select_device_checks, virtual_factory
    from emulator.errors import UserError
    from emulator.ota.image import ImageError, load_private_key, parse_image
    from emulator.scenario.samples import SAMPLES_DIR, sample_path, trusted_key

    try:
        select_device_checks(args.only)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    image_path = Path(args.image) if args.image else sample_path("ESME", 0x0000)
    try:
        image = image_path.read_bytes()
    except OSError as exc:
        raise UserError(f"--image {image_path}: cannot read: {exc.strerror}") from None
    try:
        header = parse_image(image, source=str(image_path)).header
    except ImageError as exc:
        raise UserError(f"--image {image_path}: not an OTA file the checks can serve: {exc} "
                        "(run `ch-emulator certify image` on it)") from None
    key_path = Path(args.signing_key) if args.signing_key else SAMPLES_DIR / "TEST-ONLY-signing-key.pem"
    try:
        signing_key = load_private_key(key_path)
    except (OSError, ValueError, TypeError) as exc:
        raise UserError(f"--signing-key {key_path}: not a PEM EC private key ({exc})") from None
    for option, value in (("--min-query-interval", args.min_query_interval),
                          ("--max-silent-phase", args.max_silent_phase)):
        if value is not None and value <= 0:
            raise UserError(f"{option}: must be positive, got {value:g}")

    bench_loop: asyncio.AbstractEventLoop | None = None
    transport: Any = None
    if args.virtual is not None:
        try:
            dut = virtual_device(args.virtual)
        except DeviceSpecError as exc:
            raise UserError(str(exc)) from None
        target = {"virtual": args.virtual}
    else:
        dut, bench_loop, transport, hub_identity = _open_bench(args, header)
        target = {"bench": args.bench, "dongle": transport_name(args)}
    declared: dict[str, Any] = {}
    if args.minimum_block_period_unit:
        declared["minimum_block_period_unit"] = BlockPeriodUnit(args.minimum_block_period_unit)
    if args.min_query_interval is not None:
        declared["min_query_interval_s"] = args.min_query_interval
    if args.max_silent_phase is not None:
        declared["max_silent_phase_s"] = args.max_silent_phase
    dut = dataclasses.replace(dut, **declared)
    if bench_loop is None:
        factory = virtual_factory(dut, trusted_key())
    else:
        factory = _bench_factory(bench_loop, transport, dut, hub_identity)
    parameters = {**target, "image": str(image_path), "only": args.only, "pcap_dir": args.pcap_dir,
                  "time": "simulated (virtual device)" if dut.virtual else "wall (bench)",
                  "signing_key": f"{key_path} (derived images; TEST ONLY unless you gave your own)"}
    try:
        report = certify_device(dut, str(image_path), image, factory, signing_key, only=args.only,
                                pcap_dir=Path(args.pcap_dir) if args.pcap_dir else None, parameters=parameters)
    except OSError as exc:
        raise UserError(f"--pcap-dir {args.pcap_dir}: cannot write: {exc.strerror}") from None
    finally:
        if bench_loop is not None:
            bench_loop.run_until_complete(transport.stop())
            bench_loop.close()
    return emit_report(args, report)


def transport_name(args: argparse.Namespace) -> str:
    from emulator.hil.cli import _bench

    return _bench(args.bench).dongle.path


def _open_bench(args: argparse.Namespace, header: Any) -> tuple[Any, asyncio.AbstractEventLoop, Any, Any]:
    """The bench's device under test, the hub's transport on its dongle (on a private loop) and
    the bench's ``[cbke] hub_identity`` (None: the seed's TEST ONLY one)."""
    from emulator.certify.device.dut import DeviceUnderTest
    from emulator.gbcs.codes import DeviceType
    from emulator.errors import UserError
    from emulator.han.packet import format_eui64, parse_eui64
    from emulator.han.transport import TransportError
    from emulator.hil.check import open_bench_transport
    from emulator.hil.cli import _bench

    bench = _bench(args.bench)
    device = bench.devices[0]
    if args.device:
        try:
            wanted = parse_eui64(args.device)
        except ValueError as exc:
            raise UserError(f"--device: {exc}") from None
        matches = [d for d in bench.devices if d.eui64 == wanted]
        if not matches:
            raise UserError(f"--device {args.device}: not a device of {args.bench} "
                            f"({', '.join(format_eui64(d.eui64) for d in bench.devices)})")
        device = matches[0]
    loop = asyncio.new_event_loop()
    try:
        transport = loop.run_until_complete(open_bench_transport(bench))
    except (TransportError, asyncio.TimeoutError, OSError) as exc:
        loop.close()
        raise UserError(f"{args.bench}: dongle {bench.dongle.path}: {exc or 'no answer within the timeout'}") from None
    dut = DeviceUnderTest(
        name=f"bench {device.device_type} {format_eui64(device.eui64)}", eui64=device.eui64,
        device_type=DeviceType(device.device_type), manufacturer_code=header.manufacturer_code,
        image_type=header.image_type, current_file_version=None, hardware_version=None,
        sleepy=device.device_type == "GSME", hub_eui64=transport.eui64,
    )
    return dut, loop, transport, bench.hub_identity


def _bench_factory(loop: asyncio.AbstractEventLoop, transport: Any, dut: Any, hub_identity: Any = None) -> Any:
    from emulator.certify.device.session import BenchSession
    from emulator.ota.policy import ServerPolicy

    def open_session(policy: ServerPolicy, endpoint: int) -> BenchSession:
        session = BenchSession(loop, transport, dut.eui64, policy, endpoint=endpoint)
        session.hub_identity = hub_identity  # the D checks' host-computed CBKE uses it
        return session

    return open_session

