"""An in-process 11.3 (run, demo, submit) goes through DCC's critical-command round trip under the
scenario's RequestID: the DSP issues the CS06 pre-command (CV 4), the User's key signs it, and the
DSP checks and sends the signed one (CV 5); the meter answers that very command."""

from __future__ import annotations

from test_seed_branches import activate, esme_update, play, responses

from emulator.dcc.messages import MessageKind
from emulator.dcc.sat import SatEvent
from emulator.gbcs.messages import decode_message


def test_an_in_process_11_3_is_issued_signed_and_checked_as_dcc_does() -> None:
    run, _, events = play({"requests": [esme_update(), activate(request_id="scenario-11.3")]})
    (response,) = responses(run, "11.3")
    assert response["activation_result_name"] == "SUCCESS"
    [message] = [m for m in run.system.messages if m.kind is MessageKind.RESPONSE and m.code == "11.3"]
    assert message.request_id == "scenario-11.3", "the scenario's request ID, as before"
    sat = run.system.dsp.sat
    issued = [e for e in sat.entries(event=SatEvent.DSP_ACCEPTED, request_id="scenario-11.3") if "precommand" in e.details]
    assert len(issued) == 1, "the DSP issued one pre-command (CV 4)"
    precommand = decode_message(bytes.fromhex(issued[0].details["precommand"]))
    answer = decode_message(bytes.fromhex(response["gbcs_payload"]) if isinstance(response["gbcs_payload"], str)
                            else response["gbcs_payload"])
    assert answer.header.originator_counter == precommand.header.originator_counter, \
        "the meter answered the command made from the issued pre-command"
    assert len(sat.entries(event=SatEvent.SERVICE_REQUEST, request_id="scenario-11.3")) == 2, "CV 4, then CV 5"
    assert run.system.dsp.issued_precommand("scenario-11.3") is None, "used"
    accepted = [e for e in events if e["event"] == "sr_accepted" and e.get("service_reference_variant") == "11.3"]
    assert [e["response_code"] for e in accepted] == ["I99"], "one answer to the scenario's one request"
