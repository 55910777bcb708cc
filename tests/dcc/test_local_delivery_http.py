"""Local delivery over the DUIS front door: 11.2 CV 2/3 and 11.3 CV 6/7 answer ``I0`` with
``LocalCommand{GBCSPayload}``, the GBCS command the User takes to the device itself (DUIS V5.4,
the CommandVariant table). CV 2/6 put nothing on the WAN; CV 3/7 also send the same bytes."""

from __future__ import annotations

import base64

from duis_schema import ZAZ1_KEYSTORE, assert_valid, require_tool, sign_wrap_available, sign_wrap_validate
from lxml import etree
from test_duis_helpers import request_xml
from test_precommand_http import (
    ESME,
    HOURS,
    SUPPLIER_KEY,
    USER,
    _holding,
    _post,
    _precommand,
    _Site,
)

from emulator.cli import main
from emulator.dcc.duis.keystore import DSP_EUI, load_keystore
from emulator.dcc.duis.signing import DuisSigner
from emulator.dcc.premises import ESME_ID
from emulator.gbcs.flow import remote_party_keys_dir
from emulator.gbcs.message_codes import CraFlag, MessageCode
from emulator.gbcs.messages import decode_message
from emulator.gbcs.precommand import sign_precommand
from emulator.keys.pem import load_private_pem

SUPPLIER_ID = int(USER.replace("-", ""), 16)


def _read_xml(counter: int, command_variant: int) -> bytes:
    return request_xml("11.2", "<sr:ReadFirmwareVersion/>", request_id=f"{USER}:{ESME}:{counter}",
                       command_variant=command_variant)


def _signed_xml(signed: bytes, counter: int, command_variant: int) -> bytes:
    return request_xml("11.3", f"<sr:SignedPreCommand><sr:GBCSPayload>{base64.b64encode(signed).decode()}"
                       "</sr:GBCSPayload></sr:SignedPreCommand>", request_id=f"{USER}:{ESME}:{counter}",
                       command_variant=command_variant)


def _local_command(data: bytes) -> bytes:
    """The answer is valid DUIS, I0, and carries ``ResponseMessage/LocalCommand/GBCSPayload``."""
    assert_valid(data)
    root = etree.fromstring(data)
    assert root.findtext("{*}Header/{*}ResponseCode") == "I0"
    payload = root.findtext("{*}Body/{*}ResponseMessage/{*}LocalCommand/{*}GBCSPayload")
    assert payload, data.decode()
    return base64.b64decode(payload)


def _decodes_and_verifies(command: bytes, tmp_path, capsys) -> str:
    """``ch-emulator gbcs decode`` reads and verifies it with the published remote-party keys and
    the emulated ESME's exported keys (seed 0: the default premises' setup)."""
    keys = tmp_path / "device-keys"
    assert main(["keys", "export", str(keys), "--device", ESME]) == 0
    capsys.readouterr()
    code = main(["gbcs", "decode", command.hex(), "--keystore", str(remote_party_keys_dir()),
                 "--keystore", str(keys)])
    out = capsys.readouterr().out
    assert code == 0 and "mac: valid" in out, out
    return out


def _record_tunnel(site: _Site) -> list[tuple[int, bytes]]:
    """Every GBCS message the hub puts into a device's tunnel from now on."""
    sent: list[tuple[int, bytes]] = []
    hub = site.premises.hub
    original = hub._tunnel_send

    def send(device: int, message: bytes) -> None:
        sent.append((device, message))
        original(device, message)

    hub._tunnel_send = send  # type: ignore[method-assign]
    return sent


async def test_11_2_cv2_returns_the_acb_maced_read_command_and_sends_nothing(tmp_path, capsys) -> None:
    site = _Site()
    site.clock.run(until=site.clock.now() + HOURS)  # the tunnels are up
    sent = _record_tunnel(site)
    command = _local_command(await _post(site, "/api/v1/serviceD", _read_xml(3000, 2)))
    message = decode_message(command)
    assert command[0] == 0xDD, "MAC'd (General-Ciphering)"
    assert message.header.message_code == MessageCode.ECS52_READ_ESME_CHF_FIRMWARE_VERSION
    assert message.header.cra_flag is CraFlag.COMMAND
    assert (message.header.originator, message.header.recipient) == (SUPPLIER_ID, ESME_ID)
    _decodes_and_verifies(command, tmp_path, capsys)
    site.clock.run(until=site.clock.now() + HOURS)
    assert not [m for m in site.messages if m.code == "11.2"], "no response: nothing went to the meter"
    assert not sent, "nothing was put in the meter's tunnel"


async def test_local_delivery_cvs_belong_on_the_non_device_service() -> None:
    site = _Site()
    data = await _post(site, "/api/v1/serviceS", _read_xml(3000, 2))
    assert etree.fromstring(data).findtext(".//{*}ResponseCode") == "E13"


async def test_11_2_cv3_sends_the_command_and_returns_the_same_bytes(tmp_path, capsys) -> None:
    site = _Site()
    site.clock.run(until=site.clock.now() + HOURS)
    sent = _record_tunnel(site)
    command = _local_command(await _post(site, "/api/v1/serviceS", _read_xml(3000, 3)))
    _decodes_and_verifies(command, tmp_path, capsys)
    site.clock.run(until=site.clock.now() + HOURS)
    assert sent == [(ESME_ID, command)], "the bytes returned are the bytes sent"
    [response] = [m for m in site.messages if m.code == "11.2"]
    assert response.request_id == f"{USER}:{ESME}:3000"
    answer = decode_message(bytes.fromhex(response.details["gbcs_payload"])
                            if isinstance(response.details["gbcs_payload"], str) else response.details["gbcs_payload"])
    assert answer.header.cra_flag is CraFlag.RESPONSE
    assert answer.header.originator_counter == decode_message(command).header.originator_counter, \
        "the meter answered the very command returned to the User (same counter)"


async def test_11_3_cv6_returns_the_signed_maced_cs06_and_the_meter_stays_as_it_was(tmp_path, capsys) -> None:
    site = _Site()
    image_hash, version = _holding(site)
    pre = await _precommand(site, image_hash, 2000)
    key = load_private_pem(SUPPLIER_KEY.read_bytes(), str(SUPPLIER_KEY))
    signed = sign_precommand(pre, key)
    sent = _record_tunnel(site)
    command = _local_command(await _post(site, "/api/v1/serviceD", _signed_xml(signed, 2001, 6)))
    message = decode_message(command)
    assert command[0] == 0xDD and message.header.message_code == MessageCode.CS06_ACTIVATE_FIRMWARE
    assert signed[1:] in command, "the User's KRP-signed pre-command, inside the ACB's MAC"
    out = _decodes_and_verifies(command, tmp_path, capsys)
    assert "signature: valid" in out, "the supplier's KRP signature verifies"
    site.clock.run(until=site.clock.now() + HOURS)
    assert not [m for m in site.messages if m.code == "11.3"]
    assert not sent and site.dcc.dsp.smi.require(ESME_ID).firmware_version != version, "nothing on the WAN"
    assert site.dcc.dsp.issued_precommand(f"{USER}:{ESME}:2000") is None, "the pre-command is used"
    again = await _post(site, "/api/v1/serviceS", _signed_xml(signed, 2002, 5))
    assert etree.fromstring(again).findtext(".//{*}ResponseCode") == "E100"


async def test_11_3_cv7_activates_the_meter_and_returns_the_command(tmp_path, capsys) -> None:
    site = _Site()
    image_hash, version = _holding(site)
    pre = await _precommand(site, image_hash, 2000)
    key = load_private_pem(SUPPLIER_KEY.read_bytes(), str(SUPPLIER_KEY))
    command = _local_command(await _post(site, "/api/v1/serviceS", _signed_xml(sign_precommand(pre, key), 2001, 7)))
    _decodes_and_verifies(command, tmp_path, capsys)
    site.clock.run(until=site.clock.now() + HOURS)
    [activation] = [m for m in site.messages if m.code == "11.3"]
    assert activation.details["activation_result_name"] == "SUCCESS"
    assert site.dcc.dsp.smi.require(ESME_ID).firmware_version == version


async def test_a_local_command_answer_passes_dcc_boxed_validation() -> None:
    missing = sign_wrap_available() or (None if ZAZ1_KEYSTORE.is_file() else f"{ZAZ1_KEYSTORE} missing")
    if missing:
        require_tool(missing)
    site = _Site()
    data = await _post(site, "/api/v1/serviceD", _read_xml(3000, 2))
    _local_command(data)
    entry = load_keystore(ZAZ1_KEYSTORE).signing_entry(DSP_EUI)
    assert entry is not None
    code, log = sign_wrap_validate(DuisSigner(entry).sign(data))
    assert code == 0 and "passed signature check" in log, log
