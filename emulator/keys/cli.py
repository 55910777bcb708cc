"""``ch-emulator keys export DIR``: write the emulated devices' TEST ONLY public keys.

The files (``<eui>-ds.pem``, ``<eui>-ka.pem``) are what gbcs-parser's key-store callback and
``ch-emulator gbcs decode --keystore DIR`` read, so a user can verify what the emulated devices
sign and MAC. The devices and the seed come from a scenario (``--scenario``, default the demo:
a scenario's devices sign with keys derived from its ``seed``); ``--device`` / ``--seed`` choose
them instead; ``--db`` reads the keys ``serve`` stored with the premises in its database.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from emulator.errors import UserError
from ..eui64 import format_eui64, parse_eui64
from .devices import DEFAULT_SEED, export_device_keys, write_device_key_files


def _scenario_devices(path: str) -> tuple[list[int], int]:
    """Every Comms Hub and device of the scenario's premises, and its seed."""
    from ..scenario.spec import ScenarioError, load_scenario

    try:
        scenario = load_scenario(path)
    except ScenarioError as exc:
        raise UserError(str(exc)) from None
    except OSError as exc:
        raise UserError(f"--scenario {path}: {exc.strerror or exc}") from None
    devices: list[int] = []
    for premises in scenario.premises:
        devices.append(premises.comms_hub)
        devices += [device.eui64 for device in premises.devices]
    return devices, scenario.seed


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    keys = subparsers.add_parser("keys", help="GBCS keys of the emulated devices (TEST ONLY)")
    sub = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    export = sub.add_parser("export", help="write <eui>-ds.pem / <eui>-ka.pem for emulated devices")
    export.add_argument("directory", metavar="DIR", nargs="?",
                        help="where to write the GBCS key files (created if missing)")
    export.add_argument("--scenario", metavar="FILE",
                        help="export the devices (and, with --wireshark, the HAN keys) of this scenario with its "
                             "seed (default: the demo's)")
    export.add_argument("--db", metavar="PATH",
                        help="export the device keys stored with the premises in this `serve` database (what "
                             "its devices signed and MAC'd with)")
    export.add_argument("--seed", type=int, default=None,
                        help=f"key seed (default: the scenario's; {DEFAULT_SEED} with --device)")
    export.add_argument("--device", action="append", default=[], metavar="EUI",
                        help="a device EUI-64 (repeatable; default: the scenario's devices)")
    export.add_argument("--private", action="store_true",
                        help="also write <eui>-ds.key / <eui>-ka.key private keys (TEST ONLY)")
    export.add_argument("--wireshark", metavar="FILE",
                        help="also (or only) write the HAN's NWK, install-code and CBKE link keys as a Wireshark "
                             "zigbee_pc_keys file (TEST ONLY; from the scenario seed)")
    export.set_defaults(func=_export)


def _export(args: argparse.Namespace) -> int:
    if args.wireshark is None and args.directory is None:
        raise UserError("keys export: give DIR (GBCS keys), --wireshark FILE (HAN keys), or both")
    if args.wireshark is not None:
        _export_wireshark(Path(args.wireshark), args.scenario)
    if args.directory is None:
        return 0
    try:
        devices = [parse_eui64(text) for text in args.device]
    except ValueError as exc:
        raise UserError(f"--device: {exc}") from None
    if args.db is not None:
        return _export_from_db(args, devices)
    seed = DEFAULT_SEED
    if not devices or args.scenario:
        from ..scenario.cli import DEMO_SCENARIO

        listed, seed = _scenario_devices(args.scenario or str(DEMO_SCENARIO))
        devices = devices or listed
    if args.seed is not None:
        seed = args.seed
    args.seed = seed
    if args.seed < 0 or args.seed >= 1 << 128:
        raise UserError(f"--seed {args.seed}: must be between 0 and 2**128 - 1")
    target = Path(args.directory)
    if target.exists() and not target.is_dir():
        raise UserError(f"{target} exists and is not a directory")
    try:
        written = export_device_keys(target, devices, seed=args.seed, include_private=args.private)
    except OSError as exc:
        raise UserError(f"{target}: {exc.strerror or exc}") from None
    names = ", ".join(format_eui64(eui) for eui in sorted(set(devices)))
    print(f"wrote {len(written)} TEST ONLY key files for {names} (seed {args.seed}) to {target}")
    return 0


def _export_from_db(args: argparse.Namespace, devices: list[int]) -> int:
    """The keys ``serve`` stored in its database (all, or the ``--device`` ones)."""
    import sqlite3

    from ..dcc.device_keys import stored_device_keys
    from ..dcc.store import Store, StoreError

    if args.scenario or args.seed is not None:
        raise UserError("keys export: --db takes the devices and keys from the database; "
                        "leave out --scenario and --seed")
    if not Path(args.db).is_file():
        raise UserError(f"--db {args.db}: no such file")
    try:
        store = Store(args.db)
        try:
            stored = stored_device_keys(store)
        finally:
            store.close()
    except (StoreError, sqlite3.DatabaseError, ValueError) as exc:
        raise UserError(f"--db {args.db}: {exc}") from None
    if not stored:
        raise UserError(f"--db {args.db}: holds no device keys (not a `serve` database, or serve never started on it)")
    held = {key.eui64 for key in stored}
    missing = [format_eui64(eui) for eui in devices if eui not in held]
    if missing:
        raise UserError(f"--device {', '.join(missing)}: not in the premises of {args.db}")
    chosen = [key for key in stored if not devices or key.eui64 in devices]
    target = Path(args.directory)
    if target.exists() and not target.is_dir():
        raise UserError(f"{target} exists and is not a directory")
    try:
        written = write_device_key_files(target, [(k.eui64, k.usage, k.private_key) for k in chosen],
                                         include_private=args.private)
    except OSError as exc:
        raise UserError(f"{target}: {exc.strerror or exc}") from None
    seeds = ", ".join(str(seed) for seed in sorted({key.seed for key in chosen}))
    print(f"wrote {len(written)} TEST ONLY key files for {len({k.eui64 for k in chosen})} devices "
          f"(stored in {args.db}, seed {seeds}) to {target}")
    return 0


def _export_wireshark(path: Path, scenario_path: str | None) -> None:
    from ..scenario.cli import DEMO_SCENARIO
    from ..scenario.spec import ScenarioError, load_scenario
    from .wireshark import han_keys, write_zigbee_pc_keys

    try:
        scenario = load_scenario(scenario_path or str(DEMO_SCENARIO))
    except ScenarioError as exc:
        raise UserError(str(exc)) from None
    hub_types = {"CHF", "GPF"}
    premises = [(p.comms_hub, [d.eui64 for d in p.devices if d.device_type.value not in hub_types])
                for p in scenario.premises]
    keys = han_keys(scenario.seed, premises, install_codes=scenario.han_security.install_codes)
    try:
        write_zigbee_pc_keys(path, keys)
    except OSError as exc:
        raise UserError(f"--wireshark {path}: {exc.strerror or exc}") from None
    print(f"wrote {len(keys)} TEST ONLY ZigBee keys for {len(premises)} premises (seed {scenario.seed}) to {path}")
