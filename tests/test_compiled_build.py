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


# Behaviour the compiled build must not change (it runs in both builds: `make test` and
# `make test-compiled`). Found by probing the build: frozen compiled dataclasses refused pickling and
# deep copies, and interpreted code could not subclass an exception class compiled with the codec.

def _records() -> list[object]:
    from emulator.han.virtual import Verdict
    from emulator.ota.catalog import ServedImage
    from emulator.ota.client import HeldDownload
    from emulator.ota.policy import PolicyBook, ServerPolicy, VersionRule
    from emulator.ota.profile import ClientProfile
    from emulator.ota.sessions import Session
    from emulator.ota.transitions import ImageUpgradeStatus

    book = PolicyBook()
    book.override(0x00DB1234567890A4, max_block_size=32, test_abort_after_blocks=3)
    return [
        ServerPolicy(max_block_size=20, version_rule=VersionRule.FORCE, link_lost_after_s=None),
        book,
        Verdict(drop=True, delay=0.25),
        ClientProfile(0x1234, 0x0084, 1, hardware_version=2, stack_fails_above=48),
        ServedImage(0x1234, 0x0084, 2, b"\x1e\xf1\xee\x0b" + bytes(60), max_hardware_version=3),
        HeldDownload(0x1234, 0x0084, 2, 64, 40, ImageUpgradeStatus.DOWNLOAD_IN_PROGRESS),
        Session(device=0x00DB1234567890A4, nwk=0x1234, manufacturer_code=0x1234, image_type=0x0084,
                file_version=2, image_size=64),
    ]


def test_records_survive_pickling_and_deep_copies() -> None:
    import copy
    import pickle

    for record in _records():
        for again in (pickle.loads(pickle.dumps(record)), copy.deepcopy(record), copy.copy(record)):
            assert type(again) is type(record) and again == record, type(record).__name__
    policy = pickle.loads(pickle.dumps(_records()[0]))
    assert policy.block_cap == 20  # computed again, not lost


def test_frame_error_can_be_subclassed_and_pickled() -> None:
    import pickle

    from emulator.ota import codec

    class HarnessError(codec.FrameError):
        pass

    error = HarnessError("bad frame", 3, "status")
    assert isinstance(error, ValueError) and (error.offset, error.field) == (3, "status")
    again = pickle.loads(pickle.dumps(codec.FrameError("bad frame", 3, "status")))
    assert str(again) == "bad frame (offset 3, field status)"
