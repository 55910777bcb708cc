"""`ch-emulator run` as a CI gate: exit code 1 and a JUnit failure when an expectation is unmet
or the scenario states none; the demo passes."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from emulator.cli import main
from emulator.scenario.cli import DEMO_SCENARIO

PREMISES = 'duration_s = 60\n[[premises]]\ntemplate = "default"\n'


def _cases(path: Path) -> dict[str, str | None]:
    suite = ET.parse(path).getroot().find("testsuite")
    assert suite is not None
    return {case.get("name", ""): (case.find("failure").get("message") if case.find("failure") is not None
                                   else None) for case in suite.iter("testcase")}


def test_an_unmet_expectation_exits_1_and_fails_its_test_case(tmp_path: Path, capsys) -> None:
    scenario = tmp_path / "unmet.toml"
    scenario.write_text('name = "unmet"\n' + PREMISES + '[[expect]]\nevent = "firmware_activated"\n')
    junit = tmp_path / "run.xml"
    assert main(["run", str(scenario), "--junit", str(junit)]) == 1
    assert "UNMET:    event=firmware_activated" in capsys.readouterr().out
    assert _cases(junit) == {"expect event=firmware_activated": "not seen before the run ended",
                             "requests sent": None}


def test_a_scenario_without_expectations_exits_1(tmp_path: Path, capsys) -> None:
    scenario = tmp_path / "empty.toml"
    scenario.write_text('name = "empty"\n' + PREMISES)
    junit = tmp_path / "run.xml"
    assert main(["run", str(scenario), "--junit", str(junit)]) == 1
    assert "nothing was checked" in capsys.readouterr().out
    assert "nothing was checked" in (_cases(junit)["expectations"] or "")


def test_the_demo_passes_every_expectation(tmp_path: Path, capsys) -> None:
    junit = tmp_path / "demo.xml"
    assert main(["run", str(DEMO_SCENARIO), "--junit", str(junit)]) == 0
    cases = _cases(junit)
    assert len(cases) >= 5 and all(failure is None for failure in cases.values())


def test_an_unwritable_junit_file_is_a_user_error(tmp_path: Path, capsys) -> None:
    code = main(["run", str(DEMO_SCENARIO), "--junit", str(tmp_path / "missing" / "demo.xml")])
    assert code == 2 and "--junit" in capsys.readouterr().err
