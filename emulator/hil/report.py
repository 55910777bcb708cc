"""JUnit XML for CI dashboards: one test suite per command, one test case per finding."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    ok: bool
    message: str = ""
    time_s: float = 0.0


def junit_xml(suite: str, cases: list[Case], *, classname: str) -> bytes:
    failures = sum(1 for c in cases if not c.ok)
    root = ET.Element("testsuites", tests=str(len(cases)), failures=str(failures))
    node = ET.SubElement(root, "testsuite", name=suite, tests=str(len(cases)), failures=str(failures),
                         errors="0", skipped="0", time=f"{sum(c.time_s for c in cases):.3f}")
    for case in cases:
        element = ET.SubElement(node, "testcase", classname=classname, name=case.name, time=f"{case.time_s:.3f}")
        if not case.ok:
            ET.SubElement(element, "failure", message=case.message).text = case.message
        elif case.message:
            ET.SubElement(element, "system-out").text = case.message
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def write_junit(path: str | Path, suite: str, cases: list[Case], *, classname: str) -> None:
    Path(path).write_bytes(junit_xml(suite, cases, classname=classname))
