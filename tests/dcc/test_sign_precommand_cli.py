"""``ch-emulator duis sign-precommand``: a User signs DCC's CS06 pre-command with its DS key (TEST
ONLY ZAZ1 supplier key by default) and gets the SignedPreCommand GBCSPayload."""

from __future__ import annotations

import base64

from emulator.cli import main
from emulator.gbcs.flow import GbcsSetup
from emulator.gbcs.messages import decode_message
from emulator.gbcs.protection import Check, MessageProtection
from emulator.hub.gbcs_commands import HubGbcs
from emulator.keys.embedded import REMOTE_PARTIES_DIR, remote_party_keys

ESME = 0x00DB1234567890A0
HUB = 0x00DB1234567890A1


def _precommand() -> bytes:
    gbcs = HubGbcs(HUB, GbcsSetup.default(), {ESME: "ESME"})
    return gbcs.precommand(ESME, bytes(range(32)), None, request_id="90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0:7")


def test_the_signed_pre_command_verifies_with_the_zaz1_supplier_key(capsys) -> None:
    pre = _precommand()
    assert main(["duis", "sign-precommand", base64.b64encode(pre).decode()]) == 0
    out, err = capsys.readouterr()
    signed = base64.b64decode(out.strip())
    assert signed.startswith(pre) and "TEST ONLY" in err
    message = decode_message(signed)
    assert MessageProtection(remote_party_keys()).verify_signature(message.signing) is Check.VALID


def test_another_key_makes_a_signature_the_supplier_key_does_not_verify(capsys, tmp_path) -> None:
    pre = _precommand()
    other = REMOTE_PARTIES_DIR / "90b3d51f30020000-ds.key"
    source = tmp_path / "pre.b64"
    source.write_text(base64.b64encode(pre).decode())
    target = tmp_path / "signed.b64"
    assert main(["duis", "sign-precommand", f"@{source}", "--sign-with", str(other), "-o", str(target)]) == 0
    message = decode_message(base64.b64decode(target.read_text()))
    assert MessageProtection(remote_party_keys()).verify_signature(message.signing) is Check.INVALID


def test_bad_input_is_exit_2_naming_what_is_wrong(capsys, tmp_path) -> None:
    assert main(["duis", "sign-precommand", "not*base64"]) == 2
    assert "PRECOMMAND_B64: not base64" in capsys.readouterr().err
    signed_already = base64.b64encode(base64.b64decode(_signed(capsys))).decode()
    assert main(["duis", "sign-precommand", signed_already]) == 2
    assert "already has a signature field" in capsys.readouterr().err
    assert main(["duis", "sign-precommand", base64.b64encode(_precommand()).decode(),
                 "--sign-with", str(tmp_path / "missing.key")]) == 2
    assert "--sign-with" in capsys.readouterr().err


def _signed(capsys) -> str:
    assert main(["duis", "sign-precommand", base64.b64encode(_precommand()).decode()]) == 0
    return capsys.readouterr().out.strip()
