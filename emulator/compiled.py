"""Which of the per-frame hot modules this process runs compiled (mypyc), for the benchmark's and the
fleet's report (docs/fleet.md, "Optional compiled build").

The pure-Python package is the default install; ``make compiled`` builds these modules with mypyc
into ``build/compiled`` and a separate ``.venv-compiled`` that imports them from there.
"""

from __future__ import annotations

import importlib
import importlib.machinery

# The per-frame block exchange spends most of its time here (cProfile and perf of benchmarks/fleet.py's
# per-frame rate): the server and client engines, their host glue (and the hub's subclass of it),
# frames, the codec, catalogue, sessions, server policy, the hub's tunnel bookkeeping, the virtual
# HAN, the clock and timers. Each compiles without a behaviour change the whole suite can see (it
# runs against the build): the codec checks its arguments itself, ota.frame_error keeps FrameError
# an interpreted class, ServerPolicy and ClientProfile quote their Optional annotations, frozen records pickle by their
# init fields (emulator.runtime.records); docs/fleet.md lists what still differs.
HOT_MODULES: tuple[str, ...] = (
    "emulator.ota.host",
    "emulator.ota.client",
    "emulator.ota.profile",
    "emulator.ota.server",
    "emulator.hub.ota_service",  # subclasses ota.host.EngineHost: a compiled class needs compiled subclasses
    "emulator.ota.frames",
    "emulator.ota.codec",
    "emulator.ota.policy",
    "emulator.ota.catalog",
    "emulator.ota.sessions",
    "emulator.hub.tunnels",
    "emulator.han.virtual",
    "emulator.runtime.clock",
    "emulator.runtime.timers",
)


def compiled_modules() -> dict[str, bool]:
    """Each hot module -> whether it was loaded from an extension module (.so) rather than source."""
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    return {name: str(getattr(importlib.import_module(name), "__file__", "")).endswith(suffixes)
            for name in HOT_MODULES}


def describe() -> str:
    """One line: ``compiled (mypyc): 7/7 hot modules`` or ``pure Python``, naming a partial build."""
    flags = compiled_modules()
    done = [name for name, on in flags.items() if on]
    if not done:
        return "pure Python (hot modules not compiled)"
    line = f"compiled (mypyc): {len(done)}/{len(flags)} hot modules"
    missing = [name for name, on in flags.items() if not on]
    return line + (f"; pure Python: {', '.join(missing)}" if missing else "")
