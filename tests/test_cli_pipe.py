"""A reader that stops early (``ch-emulator ... | head``) must not make any subcommand print a traceback."""

from __future__ import annotations

import subprocess
import sys


def test_a_closed_pipe_ends_quietly() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "emulator.cli", "certify", "list"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    first = process.stdout.readline()
    process.stdout.close()  # as `head -1` does
    stderr = process.stderr.read().decode()
    process.wait(timeout=60)
    assert first.startswith(b"A1")
    assert "Traceback" not in stderr, stderr
