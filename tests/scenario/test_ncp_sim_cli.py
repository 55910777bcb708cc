"""``ncp-sim`` command line: arguments and their errors."""

from __future__ import annotations

import argparse

import pytest

from emulator.scenario import ncp_sim as cli


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command"))
    return parser


def test_ncp_sim_arguments() -> None:
    args = _parser().parse_args(["ncp-sim", "--listen", "127.0.0.1:0", "--ezsp-version", "13"])
    assert args.listen == ("127.0.0.1", 0) and args.ezsp_version == 13 and args.func is cli.run


@pytest.mark.parametrize(
    ("listen", "complaint"),
    [("9999", "expected HOST:PORT"), ("localhost:http", "not a number"), ("localhost:70000", "outside")],
)
def test_bad_listen_is_named(listen: str, complaint: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _parser().parse_args(["ncp-sim", "--listen", listen])
    assert complaint in capsys.readouterr().err


def test_unsupported_version_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _parser().parse_args(["ncp-sim", "--ezsp-version", "7"])
    assert "invalid choice" in capsys.readouterr().err
