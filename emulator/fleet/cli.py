"""``ch-emulator fleet``: thousands of premises upgrading in virtual time (docs/fleet.md)."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from emulator.gbcs.codes import DeviceType

from .faults import FAULTS


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("fleet", help="a virtual fleet of premises upgrading at once (virtual time)")
    p.add_argument("spec", nargs="?", metavar="SPEC", help="fleet spec (TOML); flags override it")
    p.add_argument("--premises", type=int, help="number of premises (each with its own Comms Hub)")
    p.add_argument("--image", metavar="FILE", action="append", default=[],
                   help="OTA image; TYPE=FILE names the device type (default PPMID); repeatable")
    p.add_argument("--devices", metavar="MIX", help="device mix per premises, e.g. PPMID=1,ESME=1")
    p.add_argument("--fault", metavar="NAME=PCT", action="append", default=[],
                   help=f"percent of devices with a fault; known: {', '.join(FAULTS)}")
    p.add_argument("--loss", type=float, help="radio loss probability per frame attempt")
    p.add_argument("--fixed-latency", action="store_true", help="no radio model: fixed 5 ms per frame")
    p.add_argument("--seed", type=int, help="random seed (default 0)")
    p.add_argument("--workers", type=int, help="worker processes (default: all cores)")
    p.add_argument("--duration", type=float, metavar="S", help="simulated time limit in seconds")
    p.add_argument("--json", action="store_true", help="JSON lines: periodic fleet_progress, then fleet_summary")
    p.add_argument("--report", metavar="FILE.html", help="write an HTML report with plots")
    p.add_argument("--results", metavar="FILE.jsonl", help="write one JSON line per device result")
    p.set_defaults(func=fleet_command)


def _image_arg(text: str) -> tuple[DeviceType, str]:
    from emulator.errors import UserError

    if "=" in text and text.split("=", 1)[0].upper() in {t.value for t in DeviceType if t.on_han}:
        kind, path = text.split("=", 1)
        return DeviceType.han_device(kind), path
    if "=" in text and not Path(text).exists():
        raise UserError(f"--image {text}: {text.split('=', 1)[0]!r} is not a device type (PPMID, ESME, GSME, HCALCS)")
    return DeviceType.PPMID, text


def build_spec(args: argparse.Namespace) -> Any:
    from emulator.errors import UserError
    from emulator.han.radio import RadioParams

    from .spec import DeviceMix, FleetSpec, FleetSpecError, load_spec, read_image

    try:
        if args.spec:
            spec = load_spec(args.spec)
        else:
            if args.premises is None or not args.image:
                raise UserError("give a fleet spec file, or --premises N and --image FILE")
            spec = FleetSpec(premises=args.premises, images=())
        changes: dict[str, Any] = {}
        if args.premises is not None:
            changes["premises"] = args.premises
        if args.image:
            images = {img.device_type: img for img in spec.images}
            for text in args.image:
                kind, path = _image_arg(text)
                images[kind] = read_image(path, kind)
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


def fleet_command(args: argparse.Namespace) -> int:
    from .run import run_fleet

    spec = build_spec(args)
    devices = spec.premises * sum(m.count for m in spec.devices)
    if args.json:
        from .progress import JsonProgress

        result = run_fleet(spec, on_progress=JsonProgress(sys.stdout))
        sys.stdout.write(json.dumps(result.summary()) + "\n")
    else:
        from .progress import RichProgress

        with RichProgress(devices) as display:
            result = run_fleet(spec, on_progress=display)
        _print_summary(result.summary())
    if args.report:
        from .report import render_html

        Path(args.report).write_text(render_html(result), encoding="utf-8")
    if args.results:
        with open(args.results, "w", encoding="utf-8") as out:
            for r in result.results:
                out.write(json.dumps(r.to_dict()) + "\n")
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
