"""``run --junit FILE``: a scenario's verdict as JUnit XML, so CI can gate on it.

One test case per expectation (met passes; unmet, or a forbidden event seen, fails), one for the
Service Requests sent, and one failing case when the scenario states no expectation at all (it
would check nothing).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

NO_EXPECTATIONS = "the scenario states no expectations ([[expect]]): nothing was checked"


def junit_xml(result: Any) -> bytes:
    cases: list[tuple[str, str | None]] = [(f"expect {text}", None) for text in result.met]
    cases += [(f"expect {text}", "not seen before the run ended")
              for text in result.unmet if text != NO_EXPECTATIONS]
    cases += [(f"expect {text}", "seen, but the scenario says it must not happen") for text in result.violated]
    if NO_EXPECTATIONS in result.unmet:
        cases.append(("expectations", NO_EXPECTATIONS))
    sent = result.requests_sent == result.requests_total
    cases.append(("requests sent", None if sent else f"{result.requests_sent}/{result.requests_total} sent"))
    failures = sum(1 for _, failure in cases if failure is not None)
    root = ET.Element("testsuites", tests=str(len(cases)), failures=str(failures))
    suite = ET.SubElement(root, "testsuite", name=f"ch-emulator run {result.scenario}", tests=str(len(cases)),
                          failures=str(failures), errors="0", skipped="0", time=f"{result.wall_s:.3f}")
    properties = ET.SubElement(suite, "properties")
    for name, value in (("han", result.han), ("simulated_s", f"{result.simulated_s:.3f}"),
                        ("han_frames", str(result.frames))):
        ET.SubElement(properties, "property", name=name, value=value)
    for name, failure in cases:
        case = ET.SubElement(suite, "testcase", classname=f"scenario.{result.scenario}", name=name)
        if failure is not None:
            ET.SubElement(case, "failure", message=failure).text = failure
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def write_junit(path: str | Path, result: Any) -> None:
    Path(path).write_bytes(junit_xml(result))
