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
import os
import sys
from typing import Sequence

from emulator.errors import UserError

__all__ = ["UserError", "build_parser", "main"]

# subcommand name -> module exposing register(subparsers)
_COMMANDS: dict[str, str] = {
    "image": "emulator.ota.image.cli",
    "scenario": "emulator.scenario.cli",
    "serve": "emulator.scenario.serve",
    "submit": "emulator.scenario.submit",
    "ncp-sim": "emulator.scenario.ncp_sim",
    "hil": "emulator.hil.cli",
    "fleet": "emulator.fleet.cli",
    "cbke": "emulator.han.security.cli",
    "certify": "emulator.certify.cli",
    "gbcs": "emulator.gbcs.cli",
    "keys": "emulator.keys.cli",
    "duis": "emulator.dcc.duis_cli",
    "outbox": "emulator.dcc.outbox_cli",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ch-emulator",
        description="Comms Hub emulator: GB smart-metering firmware distribution over ZigBee OTA.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv: debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in _COMMANDS.values():
        importlib.import_module(module).register(sub)
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
    except BrokenPipeError:  # `ch-emulator ... | head`: the reader left; not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
