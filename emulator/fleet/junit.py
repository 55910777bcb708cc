"""``--junit FILE``: a fleet run as JUnit XML, one test case per outcome (docs/fleet.md).

One passing case for the devices that succeeded and one failing case per failure reason, its
``<failure>`` listing the devices (EUI-64, premises, device type, fault). CI systems (GitLab,
Jenkins, GitHub test reporters) show each reason as a failed test.
"""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

from .run import FleetResult


def render_junit(result: FleetResult, *, name: str = "ch-emulator fleet") -> str:
    t = result.tally
    cases = [f'<testcase classname="fleet" name={quoteattr(f"succeeded ({t.succeeded} devices)")} '
             f'time="{result.wall_s:.3f}"/>']
    for reason in sorted(t.failures):
        group = t.failures[reason]
        lines = [f"{r.to_dict()['device']} premises {r.premises} {r.device_type}"
                 + (f" fault {r.fault}" if r.fault else "") for r in group.devices]
        if group.count > len(group.devices):
            lines.append(f"... and {group.count - len(group.devices)} more (see --results)")
        message = f"{group.count} device(s) failed: {reason}"
        cases.append(f'<testcase classname="fleet" name={quoteattr(reason)} time="0">'
                     f'<failure type={quoteattr(reason)} message={quoteattr(message)}>'
                     f'{escape(chr(10).join(lines))}</failure></testcase>')
    failures = len(t.failures)
    attrs = f'name={quoteattr(name)} tests="{len(cases)}" failures="{failures}" errors="0" time="{result.wall_s:.3f}"'
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<testsuites {attrs}>\n<testsuite {attrs}>\n" + "\n".join(cases) + "\n</testsuite>\n</testsuites>\n")
