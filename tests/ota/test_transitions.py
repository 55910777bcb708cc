"""The OTA engines' state machines are data: the docs show the tables the engines enforce."""

from __future__ import annotations

from pathlib import Path

import pytest

from emulator.ota.client import ClientProfile, ImageUpgradeStatus, OtaClient
from emulator.ota.server import OtaServer
from emulator.ota.sessions import Session, SessionState
from emulator.ota.transitions import CLIENT, SERVER, IllegalTransition

DOCS = Path(__file__).resolve().parents[2] / "docs" / "ota.md"


@pytest.mark.parametrize("table", [SERVER, CLIENT], ids=["server", "client"])
def test_docs_show_the_transition_table_the_engine_enforces(table) -> None:
    assert table.markdown() in DOCS.read_text(), f"docs/ota.md is out of date: paste\n{table.markdown()}"


def test_every_state_of_each_engine_is_reachable_in_its_table() -> None:
    assert {row.target for row in SERVER.rows} == set(SessionState)
    # WAIT_FOR_MORE (5) belongs to multi-part images, which GB devices do not use.
    assert {row.target for row in CLIENT.rows} == set(ImageUpgradeStatus) - {ImageUpgradeStatus.WAIT_FOR_MORE}


def test_server_refuses_a_move_its_table_does_not_list() -> None:
    session = Session(0x00DB1234567890A4, 0x1234, 0x121D, 0x0084, 0xACDCACDD, 1000, state=SessionState.COMPLETED)
    with pytest.raises(IllegalTransition, match="COMPLETED -> DOWNLOADING.*00DB1234567890A4"):
        OtaServer._move(session, SessionState.DOWNLOADING)
    assert session.state is SessionState.COMPLETED


def test_client_refuses_a_move_its_table_does_not_list() -> None:
    client = OtaClient(0x00DB1234567890A4, ClientProfile(0x121D, 0x0084, 0xACDC0001))
    with pytest.raises(IllegalTransition, match="NORMAL -> COUNT_DOWN"):
        client._move(ImageUpgradeStatus.COUNT_DOWN)
    assert client.image_upgrade_status is ImageUpgradeStatus.NORMAL
