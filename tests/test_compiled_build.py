"""The optional compiled build (docs/fleet.md): the default install is pure Python, and the compiled
build really runs the hot modules compiled (so its equivalence tests do not pass on source by accident)."""

from __future__ import annotations

import os

from emulator.compiled import HOT_MODULES, compiled_modules, describe

# `make test-compiled` sets this; `make test` (the default .venv) does not.
EXPECT_COMPILED = os.environ.get("CH_EMULATOR_EXPECT_COMPILED") == "1"


def test_hot_modules_load_as_the_build_says() -> None:
    flags = compiled_modules()
    assert set(flags) == set(HOT_MODULES)
    if EXPECT_COMPILED:
        assert all(flags.values()), f"not compiled: {[m for m, on in flags.items() if not on]}"
        assert describe().startswith(f"compiled (mypyc): {len(HOT_MODULES)}/{len(HOT_MODULES)}")
    else:
        assert not any(flags.values()), f"the default install loaded compiled modules: {flags}"
        assert describe().startswith("pure Python")
