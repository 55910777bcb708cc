"""Every DUIS message of every end-to-end scenario (the seed branches and the demo) validates
against DCC's DUIS V5.4 XSD, and, signed with DCC's published ZAZ1 DSP key, passes DCC Boxed's own
validator (duis-sign-wrap: XSD V5.1 + XML signature).

The seed-branch scenarios are those of ``test_seed_branches.py``, replayed here with their
``play`` helper wrapped so that every synchronous response and every user message is kept.
"""

from __future__ import annotations

import inspect
from concurrent.futures import ThreadPoolExecutor
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "dcc"))
import test_seed_branches  # noqa: E402
from duis_schema import (  # noqa: E402
    ZAZ1_KEYSTORE,
    require_tool,
    schema_errors,
    sign_wrap_available,
    sign_wrap_validate,
)
from lxml import etree  # noqa: E402

from emulator.dcc.duis import UserMessageRenderer, render_dsp_response  # noqa: E402
from emulator.dcc.duis.keystore import DSP_EUI, load_keystore  # noqa: E402
from emulator.dcc.duis.signing import DuisSigner  # noqa: E402
from emulator.dcc.messages import DspResponse, MessageKind, UserMessage  # noqa: E402
from emulator.gbcs.flow import remote_party_keys_dir  # noqa: E402
from emulator.gbcs.messages import decode_message  # noqa: E402
from emulator.gbcs.protection import MessageProtection  # noqa: E402
from emulator.keys.devices import export_device_keys  # noqa: E402
from emulator.keys.store import CombinedKeyStore, DirectoryKeyStore  # noqa: E402
from emulator.runtime.events import EventCollector  # noqa: E402
from emulator.scenario.runner import ScenarioRun  # noqa: E402
from emulator.scenario.spec import load_scenario  # noqa: E402
from emulator.scenario.system import SCENARIO_EPOCH, DccSystem  # noqa: E402

DEMO = Path(__file__).resolve().parents[2] / "emulator" / "scenario" / "scenarios" / "demo.toml"
AT = datetime(2026, 1, 1, 12, tzinfo=timezone.utc)


@dataclass
class Played:
    responses: list[DspResponse] = field(default_factory=list)
    messages: list[UserMessage] = field(default_factory=list)
    gbcs_seed: int | None = None  # the seed of the emulated devices' GBCS keys

    def documents(self) -> list[tuple[str, bytes]]:
        renderer = UserMessageRenderer(epoch=SCENARIO_EPOCH)
        out = [(f"sync {r.service_reference_variant} {r.response_code}", render_dsp_response(r, at=AT))
               for r in self.responses]
        out += [(f"{m.kind.value} {m.code}", renderer.xml(m, counter=n)) for n, m in enumerate(self.messages, 1)]
        return out


def _seed_cases() -> list[tuple[str, object, dict]]:
    cases = []
    for name, function in inspect.getmembers(test_seed_branches, inspect.isfunction):
        if not name.startswith("test_"):
            continue
        if "code" in inspect.signature(function).parameters:
            cases += [(f"{name}[{code}]", function, {"code": code}) for code in ("N18", "N19", "N20", "N22")]
        else:
            cases.append((name, function, {}))
    return cases


@pytest.fixture(scope="module")
def played() -> dict[str, Played]:
    """Scenario name -> everything the DSP answered and sent in it."""
    results: dict[str, Played] = {}
    current: list[Played] = []
    original_submit = DccSystem.submit
    original_sink = DccSystem._on_user_message

    def submit(self: DccSystem, sr):  # type: ignore[no-untyped-def]
        response = original_submit(self, sr)
        current[-1].responses.append(response)
        return response

    def sink(self: DccSystem, message: UserMessage) -> None:
        current[-1].messages.append(message)
        current[-1].gbcs_seed = self.gbcs.protection.keys.seed  # type: ignore[attr-defined]
        original_sink(self, message)

    patch = pytest.MonkeyPatch()
    patch.setattr(DccSystem, "submit", submit)
    patch.setattr(DccSystem, "_on_user_message", sink)
    try:
        for name, function, kwargs in _seed_cases():
            current.append(Played())
            function(**kwargs)  # the scenario's own assertions run too
            results[name] = current[-1]
        current.append(Played())
        run = ScenarioRun(load_scenario(DEMO), observers=[EventCollector()])
        run.run()
        results["demo"] = current[-1]
    finally:
        patch.undo()
    return results


def test_every_message_of_every_scenario_is_valid_duis_5_4(played, capsys):
    invalid: list[str] = []
    lines = []
    for name, run in played.items():
        documents = run.documents()
        bad = [(what, errors) for what, data in documents if (errors := schema_errors(data))]
        invalid += [f"{name}: {what}: {errors[0]}" for what, errors in bad]
        lines.append(f"{name}: {len(documents) - len(bad)} of {len(documents)} valid")
    with capsys.disabled():
        print("\nDUIS V5.4 validation per scenario:\n  " + "\n  ".join(lines))
    assert sum(len(r.documents()) for r in played.values()) > 100  # the scenarios really produced messages
    assert not invalid, "\n".join(invalid)


def _shape(data: bytes) -> str:
    """What distinguishes one message from another for DCC's validator: code and body elements."""
    root = etree.fromstring(data)
    code = root.findtext("{*}Header/{*}ResponseCode")
    alert = root.findtext("{*}Body/{*}DCCAlertMessage/{*}DCCAlertCode") or ""
    body = root.find("{*}Body")
    names = [etree.QName(e).localname for e in body.iter() if isinstance(e.tag, str)][1:5]
    return f"{code} {alert} {'/'.join(names)}"


def test_signed_with_the_zaz1_dsp_key_every_kind_of_message_passes_dcc_boxed_validation(played, capsys):
    missing = sign_wrap_available() or (None if ZAZ1_KEYSTORE.is_file() else f"{ZAZ1_KEYSTORE} missing")
    if missing:
        require_tool(missing)
    entry = load_keystore(ZAZ1_KEYSTORE).signing_entry(DSP_EUI)
    assert entry is not None and entry.name == "dsp-xml-sign-90B3D51F30000002-ds"
    signer = DuisSigner(entry)
    kinds: dict[str, bytes] = {}
    total = 0
    for run in played.values():
        for _, data in run.documents():
            total += 1
            kinds.setdefault(_shape(data), data)
    def check(item: tuple[str, bytes]) -> str | None:
        shape, data = item
        code, log = sign_wrap_validate(signer.sign(data))
        return None if code == 0 and "passed signature check" in log else f"{shape}: exit {code}\n{log}"

    with ThreadPoolExecutor(max_workers=2) as pool:  # one JVM per message: two at a time
        failures = [f for f in pool.map(check, sorted(kinds.items())) if f]
    with capsys.disabled():
        print(f"\nduis-sign-wrap: {len(kinds) - len(failures)} of {len(kinds)} kinds of message "
              f"(covering all {total} messages) pass XSD V5.1 and the ZAZ1 signature check")
    assert len(kinds) >= 15
    assert not failures, "\n".join(failures)


def test_every_device_alert_and_response_carries_its_gbcs_which_verifies_with_the_exported_keys(
        played, tmp_path, capsys):
    """DUIS GBCSPayload is the device's own GBCS message: signed/MAC'd as its use case needs,
    checked with `keys export`'s public keys and the published ZAZ1 remote-party keys (TEST ONLY)."""
    remote = DirectoryKeyStore(remote_party_keys_dir())
    lines, problems = [], []
    kinds: set[tuple[int, int]] = set()
    for name, run in played.items():
        device_messages = [m for m in run.messages if m.kind in (MessageKind.DEVICE_ALERT, MessageKind.RESPONSE)]
        if not device_messages:
            continue
        assert run.gbcs_seed is not None
        exported = tmp_path / f"keys-{len(lines)}"
        export_device_keys(exported, {m.device for m in device_messages if m.device is not None}, seed=run.gbcs_seed)
        protection = MessageProtection(CombinedKeyStore([remote, DirectoryKeyStore(exported)]))
        verified = 0
        for message in device_messages:
            payload = message.details.get("gbcs_payload")
            if not payload:
                problems.append(f"{name}: {message.kind.value} {message.code}: empty GBCSPayload")
                continue
            decoded = decode_message(payload)
            verdict = protection.verify(decoded.envelope)
            header = decoded.header
            kinds.add((header.message_code, int(header.cra_flag)))
            if not verdict.ok or header.originator != message.device:
                problems.append(f"{name}: {message.code}: {verdict} from {header.originator:016X}")
                continue
            if message.kind is MessageKind.DEVICE_ALERT:
                code = decoded.payload.alert_code  # type: ignore[union-attr]
                assert f"{code:04X}" in message.code.upper(), (name, message.code, hex(code))
            verified += 1
        lines.append(f"{name}: {verified} of {len(device_messages)} GBCS payloads verified")
    with capsys.disabled():
        print("\nGBCS payloads verified per scenario:\n  " + "\n  ".join(lines))
    assert not problems, "\n".join(problems)
    # FDRA, 11.2 (ECS52, CS08), CS06 responses, 0x00CA and a generic alert; CS09 and CCS08 become
    # DCC alerts (N39, N62), which carry no GBCSPayload in DUIS
    assert {(0x00CE, 3), (0x0059, 2), (0x0129, 2), (0x0012, 2), (0x00CA, 3), (0x1001, 3)} <= kinds, sorted(kinds)
