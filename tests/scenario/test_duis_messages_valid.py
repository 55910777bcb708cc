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
from emulator.dcc.messages import DspResponse, UserMessage  # noqa: E402
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
