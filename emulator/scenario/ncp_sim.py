"""``ch-emulator ncp-sim``: run the emulated EZSP dongle until Ctrl-C.

Point bellows (or zigpy-based tools, or the hub itself) at ``socket://HOST:PORT``. The command
lives in the composition layer because ``--premises default`` puts emulated devices behind the
dongle; the NCP emulator itself is :mod:`emulator.han.ezsp.ncp`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging

_LOGGER = logging.getLogger(__name__)


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (port 0 picks a free one)."""
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise argparse.ArgumentTypeError(f"--listen {text!r}: expected HOST:PORT, e.g. 127.0.0.1:9999")
    try:
        number = int(port)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--listen {text!r}: port {port!r} is not a number") from None
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"--listen {text!r}: port {number} is outside 0..65535")
    return host, number


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "ncp-sim",
        help="emulated Silicon Labs EZSP dongle on TCP (for bellows: socket://HOST:PORT)",
        description="Run an emulated EZSP NCP, coordinator of an already-formed network, until Ctrl-C.",
    )
    parser.add_argument("--listen", type=parse_listen, default=("127.0.0.1", 9999), metavar="HOST:PORT",
                        help="address to listen on (default 127.0.0.1:9999; port 0 picks one)")
    parser.add_argument("--ezsp-version", type=int, choices=(8, 13), default=8,
                        help="EZSP protocol version the NCP speaks (default 8)")
    parser.add_argument("--premises", choices=("none", "default"), default="none",
                        help="emulated devices behind the NCP: none (default), or the default premises' "
                             "ESME, GSME and PPMID (a stand-in bench for `ch-emulator hil`)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from emulator.errors import UserError

    try:
        asyncio.run(_serve(args.listen, args.ezsp_version, getattr(args, "premises", "none")))
    except OSError as exc:
        host, port = args.listen
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return 0


async def _serve(listen: tuple[str, int], version: int, premises: str = "none") -> None:
    from emulator.han.ezsp.ncp import EzspNcp

    populate = None
    if premises == "default":
        from emulator.dcc.premises import default_premises
        from emulator.runtime.clock import AsyncioClock
        from emulator.runtime.events import EventBus

        from .ezsp_sim import premises_devices

        populate = premises_devices(default_premises(), EventBus(AsyncioClock()))
    ncp = EzspNcp(ezsp_version=version, populate=populate)
    host, port = await ncp.start(*listen)
    _LOGGER.warning("EZSP v%d NCP emulator on socket://%s:%d (Ctrl-C to stop)", version, host, port)
    try:
        await ncp.serve_forever()
    finally:
        await ncp.stop()
