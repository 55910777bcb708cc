"""Certify reports: console text, JSON lines, JUnit XML (one test case per check) and HTML."""

from __future__ import annotations

import html
import json
from typing import Any, Iterable

from lxml import etree

from emulator.certify.catalogue import BY_ID, CATALOGUE
from emulator.certify.model import Check, CheckResult, Evidence, Verdict
from emulator.certify.runner import CertifyReport

_ORDER = (Verdict.FAIL, Verdict.INCONCLUSIVE, Verdict.WARN, Verdict.PASS, Verdict.NOT_APPLICABLE,
          Verdict.NOT_AVAILABLE)


def _evidence_dict(item: Evidence) -> dict[str, Any]:
    return {key: value for key, value in (
        ("message", item.message), ("field", item.field), ("offset", item.offset),
        ("expected", item.expected), ("found", item.found)) if value is not None}


def counts(report: CertifyReport) -> dict[str, int]:
    return {verdict.value: report.count(verdict) for verdict in _ORDER}


# --- JSON lines -------------------------------------------------------------------------------


def json_lines(report: CertifyReport) -> Iterable[str]:
    """A ``run`` record, one ``check`` record per check, then a ``summary`` record."""
    yield json.dumps({
        "type": "run", "command": report.command, "tool": "ch-emulator",
        "tool_version": report.tool_version, "started": report.started.isoformat(),
        "subject": report.subject, "image": report.identity, "parameters": report.parameters,
        **({"device": report.device} if report.device is not None else {}),
    })
    for result in report.results:
        record: dict[str, Any] = {
            "type": "check", "id": result.check_id, "title": result.title,
            "source": report.sources.get(result.check_id), "verdict": result.verdict.value,
            "evidence": [_evidence_dict(item) for item in result.evidence],
        }
        if report.device is not None:
            record.update(budget=result.budget, frames=list(result.frames), timeline=list(result.timeline),
                          pcap=result.pcap)
        yield json.dumps(record)
    yield json.dumps({"type": "summary", "counts": counts(report), "exit_code": report.exit_code,
                      "elapsed_s": round(report.elapsed_s, 4)})


def catalogue_lines(checks: Iterable[Check[Any]] = CATALOGUE) -> Iterable[str]:
    for check in checks:
        yield json.dumps(catalogue_entry(check))


def catalogue_entry(check: Check[Any]) -> dict[str, Any]:
    return {
        "id": check.check_id, "group": check.group.value, "title": check.title,
        "source": check.source, "needs": [need.value for need in check.needs],
        "applies_to": check.applies_to, "verdict_rule": check.verdict_rule,
        "status": "implemented" if check.implemented else "not-available",
        "reason": check.unavailable,
        "limits": check.limits,
    }


# --- console ----------------------------------------------------------------------------------


def text(report: CertifyReport) -> str:
    lines = [f"{report.command} {report.subject} (ch-emulator {report.tool_version})"]
    device = report.device
    if device is not None:
        version = device["current_file_version"] or "(from its query)"
        lines.append(f"  device {device['eui64']} {device['device_type']}, manufacturer "
                     f"{device['manufacturer_code'] or '-'}, image type {device['image_type'] or '-'}, "
                     f"file version {version}, hardware {device['hardware_version'] or '-'}")
    identity = report.identity
    if "parse_error" in identity:
        lines.append(f"  does not parse: {identity['parse_error']}")
    else:
        lines.append(f"  layout {identity['layout']}, manufacturer {identity['manufacturer_code']}, "
                     f"image type {identity['image_type']}, file version {identity['file_version']}, "
                     f"{identity['total_image_size']} bytes")
    for result in report.results:
        lines.append(f"{result.check_id:<4} {result.verdict.value.upper():<14} {result.title}")
        for item in result.evidence:
            lines.append(f"       {item}")
        if result.pcap:
            lines.append(f"       pcap: {result.pcap}")
    summary = ", ".join(f"{n} {v}" for v, n in counts(report).items() if n)
    lines.append(f"result: {'FAIL' if report.failed else 'no check failed'} ({summary})")
    return "\n".join(lines)


def catalogue_text(checks: Iterable[Check[Any]] = CATALOGUE) -> str:
    lines = []
    for check in checks:
        status = "implemented" if check.implemented else "not available"
        needs = "+".join(need.value for need in check.needs)
        lines.append(f"{check.check_id:<4} {status:<13} {needs:<18} {check.title}")
        lines.append(f"     source: {check.source}")
        if check.limits:
            lines.append(f"     not yet: {check.limits}")
    return "\n".join(lines)


# --- JUnit ------------------------------------------------------------------------------------


def junit_xml(report: CertifyReport) -> bytes:
    """One ``testcase`` per check: failure for FAIL, skipped for not applicable / not available;
    warnings pass with the finding in ``system-out``."""
    suite = etree.Element(
        "testsuite", name=f"ch-emulator {report.command}", tests=str(len(report.results)),
        failures=str(report.count(Verdict.FAIL)), errors="0",
        skipped=str(report.count(Verdict.NOT_APPLICABLE) + report.count(Verdict.NOT_AVAILABLE)),
        time=f"{report.elapsed_s:.4f}", timestamp=report.started.strftime("%Y-%m-%dT%H:%M:%S"),
    )
    properties = etree.SubElement(suite, "properties")
    for key, value in {**_flat(report.identity, "image."), **_flat(report.device or {}, "device."),
                       **_flat(report.parameters, "parameter."), "tool_version": report.tool_version}.items():
        etree.SubElement(properties, "property", name=key, value=str(value))
    for result in report.results:
        case = etree.SubElement(suite, "testcase", classname=f"certify.{result.check_id[0]}",
                                name=f"{result.check_id} {result.title}")
        if result.verdict is Verdict.FAIL:
            failure = etree.SubElement(case, "failure", message=result.summary, type="fail")
            failure.text = "\n".join(str(item) for item in result.evidence)
        elif result.verdict in (Verdict.NOT_APPLICABLE, Verdict.NOT_AVAILABLE, Verdict.INCONCLUSIVE):
            etree.SubElement(case, "skipped", message=f"{result.verdict.value}: {result.summary}")
        else:
            out = etree.SubElement(case, "system-out")
            out.text = f"{result.verdict.value}: " + "\n".join(str(item) for item in result.evidence)
        if result.frames or result.timeline:
            err = etree.SubElement(case, "system-err")
            err.text = "\n".join([*(f"frame: {line}" for line in result.frames),
                                  *(f"timeline: {line}" for line in result.timeline),
                                  *([f"pcap: {result.pcap}"] if result.pcap else [])])
    root = etree.Element("testsuites")
    root.append(suite)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))


def _flat(values: dict[str, Any], prefix: str) -> dict[str, Any]:
    return {f"{prefix}{key}": "; ".join(map(str, value)) if isinstance(value, list) else value
            for key, value in values.items() if value not in (None, [], "")}


# --- HTML -------------------------------------------------------------------------------------

_CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d1d1f;background:#fafafa}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px}
.sub{color:#555;margin:0 0 16px}
.verdict{display:inline-block;min-width:104px;white-space:nowrap;text-align:center;border-radius:4px;padding:1px 6px;
 font-weight:600;font-size:13px;text-transform:uppercase}
.fail{background:#c62828;color:#fff}.warn{background:#f9a825;color:#000}.pass{background:#2e7d32;color:#fff}
.not-applicable{background:#cfd8dc;color:#000}.inconclusive{background:#ffe0b2;color:#000}.not-available{background:#eceff1;color:#37474f;border:1px solid #b0bec5}
.banner{padding:12px 16px;border-radius:6px;font-size:17px;font-weight:600;margin:12px 0}
.banner.fail{background:#ffebee;color:#b71c1c;border:1px solid #ef9a9a}
.banner.pass{background:#e8f5e9;color:#1b5e20;border:1px solid #a5d6a7}
table{border-collapse:collapse;width:100%;background:#fff;table-layout:fixed}
th,td{border:1px solid #ddd;padding:6px 8px;text-align:left;vertical-align:top;overflow-wrap:anywhere}
th{background:#f0f0f0;font-weight:600}
table.kv th{width:220px}
table.checks td.id{font-weight:600}
code,.mono{font-family:ui-monospace,"DejaVu Sans Mono",Menlo,monospace;font-size:13px;overflow-wrap:anywhere}
ul.ev{margin:4px 0 0;padding-left:18px}ul.ev li{margin:2px 0}
.where{color:#555;font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:12.5px}
.src{color:#666;font-size:13px}
.counts span{margin-right:12px}
details{margin:6px 0 0}summary{cursor:pointer;color:#333;font-size:13px}
pre.log{white-space:pre-wrap;overflow-wrap:anywhere;font:12px/1.4 ui-monospace,"DejaVu Sans Mono",monospace;
 background:#f6f8fa;border:1px solid #e1e4e8;padding:6px 8px;margin:4px 0}
"""


def _e(value: object) -> str:
    return html.escape(str(value))


def _evidence_html(item: Evidence) -> str:
    where = []
    if item.offset is not None:
        where.append(f"offset {item.offset} (0x{item.offset:X})")
    if item.field:
        where.append(item.field)
    head = f'<span class="where">{_e(", ".join(where))}</span> ' if where else ""
    detail = ""
    if item.expected is not None or item.found is not None:
        detail = (f'<br><span class="where">expected</span> <code>{_e(item.expected or "-")}</code> '
                  f'<span class="where">found</span> <code>{_e(item.found or "-")}</code>')
    return f"<li>{head}{_e(item.message)}{detail}</li>"


def _kv_table(values: dict[str, Any], missing: str = "not given") -> str:
    rows = []
    for key, value in values.items():
        if isinstance(value, list):
            value = "; ".join(str(v) for v in value) or "none"
        shown = missing if value is None else value
        rows.append(f"<tr><th>{_e(key.replace('_', ' '))}</th><td class=\"mono\">{_e(shown)}</td></tr>")
    return f'<table class="kv">{"".join(rows)}</table>'


def _session_html(result: CheckResult) -> str:
    """A device check's session: budget, frames involved, timeline excerpt, pcap link."""
    parts = []
    if result.budget:
        parts.append(f'<div class="src">time: {_e(result.budget)}</div>')
    if result.pcap:
        parts.append(f'<div class="src">capture: <a href="{_e(result.pcap)}">{_e(result.pcap)}</a></div>')
    if result.frames:
        parts.append(f'<details{" open" if result.verdict is Verdict.FAIL else ""}><summary>frames involved '
                     f'({len(result.frames)} lines)</summary><pre class="log">{_e(chr(10).join(result.frames))}'
                     '</pre></details>')
    if result.timeline:
        parts.append(f'<details><summary>timeline excerpt ({len(result.timeline)} events)</summary>'
                     f'<pre class="log">{_e(chr(10).join(result.timeline))}</pre></details>')
    return "".join(parts)


def _device_html(report: CertifyReport) -> str:
    if report.device is None:
        return ""
    return f"<h2>Device under test</h2>\n{_kv_table(report.device, 'unknown')}\n"


def html_report(report: CertifyReport) -> str:
    verdict = "fail" if report.failed else "pass"
    failed = [r.check_id for r in report.results if r.verdict is Verdict.FAIL]
    banner = (f"FAILED: {', '.join(failed)}" if failed else "No check failed")
    tally = "".join(f'<span><span class="verdict {v}">{_e(v)}</span> {n}</span>'
                    for v, n in counts(report).items())
    rows = []
    for result in report.results:
        check = BY_ID.get(result.check_id)
        source = report.sources.get(result.check_id, check.source if check else "")
        evidence = "".join(_evidence_html(item) for item in result.evidence)
        rows.append(
            f'<tr id="{_e(result.check_id)}"><td class="id">{_e(result.check_id)}</td>'
            f'<td class="v"><span class="verdict {result.verdict.value}">{_e(result.verdict.value)}</span></td>'
            f'<td><strong>{_e(result.title)}</strong><div class="src">source: {_e(source)}</div>'
            f'<ul class="ev">{evidence}</ul>{_session_html(result)}</td></tr>'
        )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ch-emulator {_e(report.command)}: {_e(report.subject)}</title>
<style>{_CSS}</style></head>
<body><main>
<h1>Vendor pre-certification: {_e(report.command)}</h1>
<p class="sub mono">{_e(report.subject)}</p>
<div class="banner {verdict}">{banner}: exit code {report.exit_code}</div>
<p class="counts">{tally}</p>
<h2>Checks</h2>
<table class="checks"><tr><th style="width:52px">ID</th><th style="width:136px">Verdict</th>
<th>Check, source and evidence</th></tr>
{"".join(rows)}</table>
{_device_html(report)}<h2>Image identity</h2>
{_kv_table(report.identity, "absent")}
<h2>Run parameters</h2>
{_kv_table(report.parameters)}
<h2>Tool</h2>
{_kv_table({"tool": "ch-emulator", "tool_version": report.tool_version,
            "started": report.started.isoformat(timespec="seconds"),
            "elapsed": f"{report.elapsed_s:.3f} s"})}
<p class="src">Check IDs and sources: docs/certify.md; keys marked TEST ONLY are
published test keys and prove nothing about production firmware.</p>
</main></body></html>
"""
