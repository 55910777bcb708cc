"""`serve` under kill -9: a short crash loop of the real process (subprocess + SIGKILL, bounded),
and the user mistakes that must be a clear error with exit 2, not a traceback."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from emulator.cli import main

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

from crash import crash_loop  # noqa: E402


@pytest.mark.parametrize("workers", [1, 2])
def test_a_few_kill_9_lose_nothing_and_leave_nothing_in_progress(tmp_path: Path, workers: int) -> None:
    """With ``--workers 2`` the kills hit the core or the edge (seed 7: both)."""
    figures = asyncio.run(crash_loop(4 if workers == 2 else 3, clients=3, seed=7, settle=150.0, workdir=tmp_path,
                                     workers=workers, edge_share=0.5))
    assert figures.kills == (4 if workers == 2 else 3)
    if workers == 2:
        assert 0 < figures.edge_kills < figures.kills
    assert figures.accepted > 0
    assert figures.lost_requests == []
    assert figures.stuck == 0
    assert figures.transfers_offset_lost == 0  # no HAN transfer started over while its flash held more


@pytest.mark.parametrize("argv, message", [
    (["--db", "/nonexistent-folder/x.db"], "directory /nonexistent-folder does not exist"),
    (["--journal", "/nonexistent-folder/j.jsonl"], "directory /nonexistent-folder does not exist"),
    (["--db", "."], "is a directory"),
])
def test_serve_refuses_paths_it_cannot_write_with_exit_2(argv: list[str], message: str, capsys) -> None:
    assert main(["serve", "--port", "0", *argv]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--port", "70000"], ["--port", "http"], ["--max-in-flight", "0"],
                                  ["--distribution-deadline", "-1"]])
def test_serve_refuses_bad_numbers_with_exit_2(argv: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["serve", *argv])
    assert stop.value.code == 2
    assert "Traceback" not in capsys.readouterr().err
