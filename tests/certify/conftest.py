"""Fixtures for the certify tests: the TEST ONLY samples and a CLI runner."""

from __future__ import annotations

from typing import Callable

import pytest
from certify_paths import SAMPLE_FILES, SAMPLES_DIR

from emulator.certify.mutations import Samples
from emulator.cli import main
from emulator.ota.image import load_private_key


@pytest.fixture(scope="session")
def samples() -> Samples:
    files = {device: path.read_bytes() for device, path in SAMPLE_FILES.items()}
    return Samples.from_files(files, load_private_key(SAMPLES_DIR / "TEST-ONLY-signing-key.pem"))


@pytest.fixture
def certify(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """Run ``ch-emulator certify ARGS``; returns (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        code = main(["certify", *map(str, args)])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run
