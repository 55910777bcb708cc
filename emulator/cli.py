"""``ch-emulator`` command line.

Each subcommand lives in the module of the layer it belongs to and exposes
``register(subparsers)``; modules are imported lazily so ``ch-emulator image inspect`` never
imports bellows. A user's mistake ends in one clear line on stderr and exit code 2, never a
traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Sequence

# subcommand name -> module exposing register(subparsers)
_COMMANDS: dict[str, str] = {
    "image": "emulator.ota.image.cli",
    "scenario": "emulator.scenario.cli",
    "serve": "emulator.scenario.serve",
    "submit": "emulator.scenario.submit",
    "ncp-sim": "emulator.han.ezsp.cli",
    "hil": "emulator.hil.cli",
    "fleet": "emulator.fleet.cli",
    "outbox": "emulator.dcc.outbox_cli",
}


class UserError(Exception):
    """A mistake in the user's input: printed as one line, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ch-emulator",
        description="Comms Hub emulator: GB smart-metering firmware distribution over ZigBee OTA.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv: debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in _COMMANDS.items():
        try:
            importlib.import_module(module).register(sub)
        except ModuleNotFoundError as exc:  # a layer not built yet must not break the others
            if exc.name and module.startswith(exc.name):
                continue
            raise
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"ch-emulator {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
