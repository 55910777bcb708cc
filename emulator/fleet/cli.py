"""``ch-emulator fleet``: thousands of premises upgrading in virtual time (docs/fleet.md)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from emulator.gbcs.codes import DeviceType

from .faults import FAULTS


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("fleet", help="a virtual fleet of premises upgrading at once (virtual time)")
    p.add_argument("spec", nargs="?", metavar="SPEC", help="fleet spec (TOML); flags override it")
    p.add_argument("--premises", type=int, help="number of premises (each with its own Comms Hub; default 1)")
    p.add_argument("--image", metavar="[TYPE=]IMAGE", action="append", default=[],
                   help="OTA image: a file or a sample (ppmid, esme, gsme); TYPE= names the device type "
                        "(default: the sample's, else PPMID); repeatable. Default: the sample PPMID image")
    p.add_argument("--devices", metavar="MIX", help="device mix per premises, e.g. PPMID=1,ESME=1")
    p.add_argument("--fault", metavar="NAME=PCT", action="append", default=[],
                   help=f"percent of devices with a fault; known: {', '.join(FAULTS)}")
    p.add_argument("--loss", type=float, help="radio loss probability per frame attempt")
    p.add_argument("--fixed-latency", action="store_true", help="no radio model: fixed 5 ms per frame")
    p.add_argument("--per-frame", action="store_true",
                   help="no fast path: every frame through the full per-frame machinery (same results, slower)")
    p.add_argument("--seed", type=int, help="random seed (default 0)")
    p.add_argument("--workers", type=int, help="worker processes (default: all cores)")
    p.add_argument("--dask", metavar="ADDRESS",
                   help="run the chunks on a Dask cluster: tcp://SCHEDULER:8786, or 'local' for a LocalCluster")
    p.add_argument("--duration", type=float, metavar="S", help="simulated time limit in seconds")
    p.add_argument("--json", action="store_true", help="JSON lines: periodic fleet_progress, then fleet_summary")
    p.add_argument("--report", metavar="FILE.html", help="write an HTML report with plots")
    p.add_argument("--results", metavar="FILE.jsonl", help="stream one JSON line per device result to FILE "
                   "(FILE.parquet: a Parquet file, needs pyarrow)")
    p.add_argument("--junit", metavar="FILE.xml", help="write JUnit XML: one test case per failure reason")
    p.add_argument("--junit-per-device", action="store_true", help="with --junit: one test case per device")
    p.add_argument("--max-failed", type=float, metavar="PCT", default=0.0,
                   help="exit 0 while at most PCT %% of devices failed or are unfinished (default 0)")
    p.set_defaults(func=fleet_command)


_SAMPLE_NAMES = ("ppmid", "esme", "gsme")


def _image_arg(text: str) -> tuple[DeviceType, str]:
    """``[TYPE=]FILE|SAMPLE``: the device type and what to read."""
    from emulator.errors import UserError

    from .spec import SAMPLES

    head, sep, tail = text.partition("=")
    if sep and head.upper() in {t.value for t in DeviceType if t.on_han}:
        return DeviceType.han_device(head), tail
    if sep and not Path(text).exists():
        raise UserError(f"--image {text}: {head!r} is not a device type (PPMID, ESME, GSME, HCALCS)")
    if text.lower() in SAMPLES:
        return SAMPLES[text.lower()][0], text
    return DeviceType.PPMID, text


def build_spec(args: argparse.Namespace) -> Any:
    from emulator.errors import UserError
    from emulator.han.radio import RadioParams

    from .spec import DeviceMix, FleetSpec, FleetSpecError, load_spec, resolve_image

    try:
        if args.spec:
            spec = load_spec(args.spec)
        else:
            spec = FleetSpec(premises=1, images=())
        changes: dict[str, Any] = {}
        if args.premises is not None:
            changes["premises"] = args.premises
        images = {img.device_type: img for img in spec.images}
        for text in args.image:
            kind, name = _image_arg(text)
            images[kind] = resolve_image(name, kind)
        if not images:
            images[DeviceType.PPMID] = resolve_image("ppmid", DeviceType.PPMID)  # the sample
        changes["images"] = tuple(images.values())
        if args.devices:
            mix = []
            for part in args.devices.split(","):
                name, _, count = part.partition("=")
                try:
                    mix.append(DeviceMix(DeviceType.han_device(name), int(count or 1)))
                except ValueError:
                    raise UserError(f"--devices {args.devices}: {part!r} is not TYPE=COUNT "
                                    "(types PPMID, ESME, GSME, HCALCS)") from None
            changes["devices"] = tuple(mix)
        if args.fault:
            faults = dict(spec.faults)
            for text in args.fault:
                name, _, pct = text.partition("=")
                try:
                    faults[name.strip()] = float(pct)
                except ValueError:
                    raise UserError(f"--fault {text}: expected NAME=PERCENT, e.g. first_request_lost=5") from None
            changes["faults"] = faults
        if args.per_frame:
            changes["per_frame"] = True
        if args.fixed_latency:
            changes["radio"] = None
        elif args.loss is not None:
            changes["radio"] = replace(spec.radio or RadioParams(), loss=args.loss)
        for flag, key in (("seed", "seed"), ("workers", "workers"), ("duration", "duration_s")):
            if getattr(args, flag) is not None:
                changes[key] = getattr(args, flag)
        return replace(spec, **changes).validate()
    except (FleetSpecError, ValueError) as exc:
        raise UserError(str(exc)) from None


def _check_output(flag: str, path: str | None) -> None:
    """An output path that cannot be written is a mistake to report before a long run."""
    from emulator.errors import UserError

    if path is None:
        return
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise UserError(f"{flag} {path}: is a directory, give a file name")
    if not folder.is_dir():
        raise UserError(f"{flag} {path}: directory {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise UserError(f"{flag} {path}: directory {folder} is not writable")


def fleet_command(args: argparse.Namespace) -> int:
    from emulator.errors import UserError

    from .run import FleetError, run_fleet
    from .sinks import JUnitPerDeviceSink, results_sink as open_results

    if not 0.0 <= args.max_failed <= 100.0:
        raise UserError(f"--max-failed {args.max_failed:g}: must be a percentage 0..100")
    if args.junit_per_device and not args.junit:
        raise UserError("--junit-per-device needs --junit FILE")
    for flag, path in (("--report", args.report), ("--results", args.results), ("--junit", args.junit)):
        _check_output(flag, path)
    spec = build_spec(args)
    devices = spec.premises * sum(m.count for m in spec.devices)
    sinks: list[Any] = []
    results_sink = open_results(args.results) if args.results else None
    junit_sink = JUnitPerDeviceSink(args.junit) if args.junit and args.junit_per_device else None
    sinks = [s for s in (results_sink, junit_sink) if s is not None]

    def on_result(r: Any) -> None:
        for sink in sinks:
            sink(r)

    options: dict[str, Any] = {"on_result": on_result if sinks else None, "keep_results": False, "dask": args.dask}
    try:
        if args.json:
            from .progress import JsonProgress

            result = run_fleet(spec, on_progress=JsonProgress(sys.stdout), **options)
            sys.stdout.write(json.dumps(result.summary()) + "\n")
        else:
            from .progress import RichProgress

            with RichProgress(devices) as display:
                result = run_fleet(spec, on_progress=display, **options)
            _print_summary(result.summary())
    except FleetError as exc:
        from .dask_backend import DaskUnavailable

        if junit_sink is not None:
            junit_sink.discard()
        if isinstance(exc, DaskUnavailable):
            raise UserError(str(exc)) from None
        raise
    finally:
        if results_sink is not None:
            results_sink.close()
    if junit_sink is not None:
        junit_sink.close(wall_s=result.wall_s)
    elif args.junit:
        from .junit import render_junit

        Path(args.junit).write_text(render_junit(result), encoding="utf-8")
    if args.report:
        from .report import render_html

        Path(args.report).write_text(render_html(result), encoding="utf-8")
    return _gate(result, args.max_failed)


def _gate(result: Any, max_failed_pct: float) -> int:
    """Exit 1 when more devices failed (or are unfinished) than ``--max-failed`` allows."""
    t = result.tally
    share = 100.0 * t.failed / t.devices if t.devices else 0.0
    if t.failed and share > max_failed_pct:
        print(f"fleet: {t.failed} of {t.devices} devices failed or unfinished ({share:.2f} %, "
              f"--max-failed {max_failed_pct:g} %)", file=sys.stderr)
        return 1
    return 0


def _print_summary(s: dict[str, Any]) -> None:
    d = s["duration_s"]
    print(f"fleet: {s['premises']} premises, {s['devices']} devices: {s['succeeded']} succeeded, "
          f"{sum(s['failed'].values())} failed")
    for reason, n in s["failed"].items():
        print(f"  failed, {reason}: {n}")
    print(f"upgrade duration (simulated): p50 {d['p50']} s, p95 {d['p95']} s, max {d['max']} s")
    print(f"simulated {s['simulated_s']:,} s in {s['wall_s']:,} s wall time on {s['workers']} worker(s); "
          f"{s['block_exchanges']:,} block exchanges, {s['exchanges_per_wall_s']:,} per wall-second")
    print(f"results digest {s['results_digest']}")
