"""Build the optional compiled (mypyc) variant of the per-frame hot modules (docs/fleet.md).

    python tools/build_compiled.py [--venv .venv-compiled]

Copies ``emulator/`` to ``build/compiled/emulator``, compiles ``emulator/compiled.py``'s HOT_MODULES there
in place with mypyc, and (with ``--venv``) makes that venv import ``emulator`` from the copy, whatever
its working directory. The source tree stays pure Python, so the default ``.venv`` never loads a .so.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build" / "compiled"


def _hot_modules() -> tuple[str, ...]:
    """HOT_MODULES from the source tree's emulator/compiled.py (a compiled venv imports an older copy)."""
    spec = importlib.util.spec_from_file_location("_hot_set", ROOT / "emulator" / "compiled.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return tuple(module.HOT_MODULES)


# Imported by the venv's .pth: ``emulator`` (and so every emulator.* module) comes from build/compiled,
# ahead of the editable install's source tree and of a working directory that holds ``emulator/``.
_FINDER = '''"""ch-emulator compiled build: import ``emulator`` from this directory (tools/build_compiled.py)."""
import importlib.machinery
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))


class _CompiledFirst:
    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        if fullname != "emulator":
            return None
        return importlib.machinery.PathFinder.find_spec(fullname, [_HERE])


sys.meta_path.insert(0, _CompiledFirst)
'''


def build() -> None:
    """Copy the package and compile the hot set in place (needs a C compiler and Python's headers)."""
    from mypyc.build import mypycify
    from setuptools import setup

    include = Path(sysconfig.get_paths()["include"]) / "Python.h"
    if not include.exists():
        sys.exit(f"build_compiled: {include} is missing: install Python's headers (Debian: python3-dev)")
    if BUILD.exists():
        shutil.rmtree(BUILD)
    shutil.copytree(ROOT / "emulator", BUILD / "emulator", ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    # mypy reads [tool.mypy] from this copy; setuptools must not see the project's pyproject.toml here.
    shutil.copy(ROOT / "pyproject.toml", BUILD / "mypy.toml")
    (BUILD / "_ch_emulator_compiled.py").write_text(_FINDER)
    (BUILD / "firmware_images").symlink_to(ROOT / "firmware_images")  # the samples beside the package
    paths = [str(Path(*name.split("."))) + ".py" for name in _hot_modules()]
    os.chdir(BUILD)
    extensions = mypycify(["--config-file", "mypy.toml", *paths], group_name="ch_emulator_hot", opt_level="3")
    setup(name="ch-emulator-compiled", ext_modules=extensions,
          script_args=["build_ext", "--inplace", "--parallel", str(os.cpu_count() or 1)])


def link_venv(venv: Path) -> None:
    """A .pth in the venv's site-packages: build/compiled on sys.path and the finder installed."""
    purelib = Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))
    (purelib / "ch_emulator_compiled.pth").write_text(f"{BUILD}\nimport _ch_emulator_compiled\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, help="venv whose python should import the compiled build")
    args = parser.parse_args(argv)
    venv = args.venv.resolve() if args.venv is not None else None  # before build() changes directory
    build()
    if venv is not None:
        link_venv(venv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
