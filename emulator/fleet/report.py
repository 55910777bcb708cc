"""The HTML report of a fleet run (``--report FILE.html``): what was run, what failed and on which
devices, completion over simulated time, the spread of upgrade durations and the outcomes per
fault. One self-contained file: inline CSS and SVG, no scripts, no network assets.

Everything comes from the run's :class:`~emulator.fleet.tally.FleetTally`, so a report of a
million devices costs what the tally keeps, not the devices.
"""

from __future__ import annotations

import html
import math
from typing import Any

from emulator.ota.image import parse_image

from .faults import FAULTS
from .run import FleetResult
from .sketch import DurationSketch

_W, _H = 720, 300
_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 24, 16, 52  # plot margins: room for tick labels and axis titles
_LISTED = 20  # failed devices shown per reason (the JUnit file and --results have them all)

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1100px;
color:#1d2329;padding:0 1em;line-height:1.4}
h1{font-size:1.6em;margin-bottom:.2em} h2{font-size:1.2em;margin-top:1.8em;border-bottom:1px solid #d0d7de}
table{border-collapse:collapse;margin:.5em 0} th,td{padding:.3em .8em;border-bottom:1px solid #e5e8eb;
text-align:left;vertical-align:top} th{background:#f5f7f9} td.n{text-align:right;font-variant-numeric:tabular-nums}
code{font-size:.92em} .ok{color:#1a7f37;font-weight:600;white-space:nowrap} .bad{color:#cf222e;font-weight:600}
.verdict{font-size:1.15em;margin:.6em 0 1em} .devices{font-family:ui-monospace,monospace;font-size:.85em}
.params td:first-child{font-weight:600;white-space:nowrap} svg text{font-family:inherit}
"""


def _esc(value: Any) -> str:
    return html.escape(str(value))


def _nice_ticks(high: float, count: int = 6) -> list[float]:
    """Round tick values from 0 to at least ``high``."""
    if high <= 0:
        return [0.0, 1.0]
    raw = high / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    ticks = [0.0]
    while ticks[-1] < high - 1e-9:
        ticks.append(ticks[-1] + step)
    return ticks


def _fmt(value: float) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    return f"{value:g}"


class _Axis:
    """A linear or logarithmic axis from ``lo`` to ``hi`` with round ticks."""

    def __init__(self, lo: float, hi: float, *, log: bool = False) -> None:
        self.log = log and lo > 0 and hi > lo
        if self.log:
            self.lo, self.hi = lo, hi
            self.ticks = [t for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
                          for m in (1, 2, 5) if lo <= (t := m * 10.0 ** e) <= hi]
            if len(self.ticks) < 2:
                self.ticks = [lo, hi]
        else:
            ticks = _nice_ticks(hi - lo) if lo == 0 else [lo + t for t in _nice_ticks(hi - lo)]
            self.lo, self.hi, self.ticks = lo, ticks[-1], ticks

    def frac(self, value: float) -> float:
        if self.log:
            value = min(max(value, self.lo), self.hi)
            return math.log(value / self.lo) / math.log(self.hi / self.lo)
        return (value - self.lo) / ((self.hi - self.lo) or 1.0)

    def points(self, n: int) -> list[float]:
        """``n`` + 1 values spread evenly along the axis."""
        if self.log:
            return [self.lo * (self.hi / self.lo) ** (i / n) for i in range(n + 1)]
        return [self.lo + (self.hi - self.lo) * i / n for i in range(n + 1)]


def _wide(durations: DurationSketch) -> bool:
    """Durations spread over more than a factor of 4: a log axis shows the outliers and the bulk."""
    return durations.min > 0 and durations.max / durations.min > 4


def _frame(x_title: str, y_title: str, x: _Axis, y: _Axis) -> tuple[list[str], Any, Any]:
    """Axes with ticks and titles; returns the parts and the x and y scale functions."""
    pw, ph = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM

    def sx(value: float) -> float:
        return _LEFT + x.frac(value) * pw

    def sy(value: float) -> float:
        return _TOP + ph - y.frac(value) * ph

    parts = [f'<rect x="{_LEFT}" y="{_TOP}" width="{pw}" height="{ph}" fill="#fbfcfd" stroke="#d0d7de"/>']
    for t in y.ticks:
        yy = sy(t)
        parts.append(f'<line x1="{_LEFT}" y1="{yy:.1f}" x2="{_LEFT + pw}" y2="{yy:.1f}" stroke="#e5e8eb"/>')
        parts.append(f'<text x="{_LEFT - 6}" y="{yy + 4:.1f}" font-size="11" text-anchor="end">{_fmt(t)}</text>')
    for t in x.ticks:
        xx = sx(t)
        parts.append(f'<line x1="{xx:.1f}" y1="{_TOP + ph}" x2="{xx:.1f}" y2="{_TOP + ph + 4}" stroke="#57606a"/>')
        parts.append(f'<text x="{xx:.1f}" y="{_TOP + ph + 17}" font-size="11" text-anchor="middle">'
                     f'{_esc(_fmt(round(t, 1)))}</text>')
    title = x_title + (" — log scale" if x.log else "")
    parts.append(f'<text x="{_LEFT + pw / 2}" y="{_H - 10}" font-size="12" text-anchor="middle">{_esc(title)}</text>')
    parts.append(f'<text x="14" y="{_TOP + ph / 2}" font-size="12" text-anchor="middle" '
                 f'transform="rotate(-90 14 {_TOP + ph / 2})">{_esc(y_title)}</text>')
    return parts, sx, sy


def _svg(parts: list[str], title: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" viewBox="0 0 {_W} {_H}" '
            f'role="img" aria-label="{_esc(title)}">{"".join(parts)}</svg>')


def completion_svg(durations: DurationSketch, devices: int) -> str:
    """Devices that succeeded (y) by simulated seconds after the Service Request (x); a log time
    axis when the slowest took far longer than the fastest."""
    if durations.count == 0:
        return "<p>No device succeeded.</p>"
    wide = _wide(durations)
    x = _Axis(durations.min / 1.5, durations.max * 1.2, log=True) if wide else _Axis(0.0, durations.max)
    y = _Axis(0.0, devices)
    parts, sx, sy = _frame("simulated time after the Service Request (s)", "devices succeeded", x, y)
    points = x.points(400)
    done = durations.cumulative(points)
    path = " ".join(f"{'M' if i == 0 else 'L'}{sx(t):.1f},{sy(n):.1f}" for i, (t, n) in enumerate(zip(points, done)))
    parts.append(f'<path d="{path}" fill="none" stroke="#0969da" stroke-width="2"/>')
    total = sy(devices)
    parts.append(f'<line x1="{_LEFT}" y1="{total:.1f}" x2="{_W - _RIGHT}" y2="{total:.1f}" stroke="#cf222e" '
                 f'stroke-dasharray="4 3"/><text x="{_W - _RIGHT - 4}" y="{total - 4:.1f}" font-size="11" '
                 f'text-anchor="end" fill="#cf222e">all {devices:,} devices</text>')
    return _svg(parts, "devices succeeded over simulated time")


def histogram_svg(durations: DurationSketch, bins: int = 40) -> str:
    """Upgrade durations of the devices that succeeded, each bar labelled with its count, so that
    one outlier does not squash the rest into one bar. Devices beyond the far-out fence
    (Q3 + 3 x IQR) are few (at most 1 %): the bins are linear up to the slowest device inside the
    fence, and the outliers get one red bar of their own. Otherwise the bins are logarithmic when
    the durations spread over more than a factor of 4, else linear."""
    if durations.count == 0:
        return "<p>No device succeeded.</p>"
    lo, top, n = durations.min, durations.max, durations.count
    q1, q3 = durations.percentile(25) or lo, durations.percentile(75) or top
    fence = q3 + 3 * max(q3 - q1, 0.01 * q3)
    outliers = n - durations.cumulative([fence])[0] if top > fence else 0
    overflow = outliers if 0 < outliers <= max(1, n // 100) else 0
    if not overflow and lo > 0 and top / lo > 4:
        x = _Axis(lo, top, log=True)
        edges = x.points(bins)
    else:
        hi = (durations.at_rank(n - overflow) or top) if overflow else top
        if hi - lo < 1e-6:
            lo, hi = lo - 0.5, hi + 0.5
        width = (hi - lo) / bins
        edges = [lo + width * i for i in range(bins + 1)]
        end = hi + (2 * width if overflow else 0.0)
        x = _Axis(lo, end)
        x.lo, x.hi = lo, end  # bars fill the plot; ticks stay round
        x.ticks = [t for t in _nice_ticks(hi) if lo <= t <= hi] or [lo, hi]
    counts = durations.bin_counts(edges)
    if overflow:
        counts[-1] -= min(overflow, counts[-1])  # the last bin counted what lies beyond it
    y = _Axis(0.0, max(counts + [overflow]))
    parts, sx, sy = _frame("upgrade duration, Service Request to outcome (s)", "devices", x, y)
    base = sy(0)

    def bar(x0: float, x1: float, c: int, colour: str, title: str, label: str) -> None:
        top_y = sy(c)
        parts.append(f'<rect x="{x0 + 0.5:.1f}" y="{top_y:.1f}" width="{max(x1 - x0 - 1, 1.0):.1f}" '
                     f'height="{max(base - top_y, 1.0):.1f}" fill="{colour}"><title>{title}</title></rect>')
        parts.append(f'<text x="{(x0 + x1) / 2:.1f}" y="{min(top_y, base - 1) - 3:.1f}" font-size="10" '
                     f'text-anchor="middle">{label}</text>')

    for i, c in enumerate(counts):
        if c:
            bar(sx(edges[i]), sx(edges[i + 1]), c, "#fb8f44",
                f"{edges[i]:,.1f}–{edges[i + 1]:,.1f} s: {c:,} devices", f"{c:,}")
    if overflow:
        w = edges[1] - edges[0]
        bar(sx(edges[-1] + w), sx(edges[-1] + 2 * w), overflow, "#cf222e",
            f"&gt; {edges[-1]:,.1f} s (up to {top:,.1f} s): {overflow:,} devices",
            f"&gt; {_fmt(round(edges[-1], 1))} s: {overflow:,}")
    return _svg(parts, "histogram of upgrade durations")


def _parameters(result: FleetResult) -> str:
    spec = result.spec
    rows: list[tuple[str, str]] = [
        ("premises", f"{spec.premises:,}"),
        ("devices per premises", ", ".join(f"{m.count} × {m.device_type.value}" for m in spec.devices if m.count)
         + " (and the Comms Hub)"),
    ]
    for image in spec.images:
        h = parse_image(image.data, source=image.path).header
        rows.append((f"image ({image.device_type.value})",
                     f"<code>{_esc(image.path)}</code>: manufacturer {h.manufacturer_code:04X}, image type "
                     f"{h.image_type:04X}, file version {h.file_version:08X}, {len(image.data):,} bytes"))
    rows.append(("faults", ", ".join(f"{_esc(k)} {v:g} %" for k, v in sorted(spec.faults.items())) or "none"))
    radio = spec.radio
    if radio is None:
        rows.append(("radio", "fixed latency (5 ms a frame), no radio model"))
    else:
        burst = (f"; bursts: good {radio.burst.mean_good_s:g} s / bad {radio.burst.mean_bad_s:g} s, loss in bad "
                 f"{radio.burst.loss_bad:g}" if radio.burst else "")
        rows.append(("radio", f"802.15.4 at {radio.bitrate_bps // 1000} kbit/s, loss {radio.loss:g}, "
                              f"{radio.max_frame_retries} MAC retries, APS acks "
                              f"{'on' if radio.aps_ack else 'off'}{burst}"))
    rows += [("seed", str(spec.seed)), ("simulated time limit", f"{spec.duration_s:,.0f} s"),
             ("ran on", f"{result.workers} worker(s), {_esc(result.backend)}"),
             ("wall time", f"{result.wall_s:,.1f} s for {result.simulated_s:,.1f} simulated s, "
                           f"{result.block_exchanges:,} block exchanges"),
             ("results digest", f"<code>{result.digest()}</code>")]
    body = "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in rows)
    return f'<table class="params">{body}</table>'


def _failures(result: FleetResult) -> str:
    t = result.tally
    if not t.failures:
        return '<p class="ok">No device failed.</p>'
    rows = []
    for reason in sorted(t.failures, key=lambda r: (-t.failures[r].count, r)):
        group = t.failures[reason]
        listed = [f"{r.to_dict()['device']} (P{r.premises:06d} {r.device_type}"
                  + (f", {r.fault})" if r.fault else ")") for r in group.devices[:_LISTED]]
        more = group.count - len(listed)
        devices = "<br>".join(_esc(x) for x in listed) + (f"<br>… and {more:,} more" if more > 0 else "")
        rows.append(f"<tr><td>{_esc(reason)}</td><td class=n>{group.count:,}</td>"
                    f"<td class=n>{100 * group.count / t.devices:.2f} %</td><td class=devices>{devices}</td></tr>")
    return ("<table><tr><th>reason</th><th>devices</th><th>share</th><th>failed devices (EUI-64, premises, type, "
            f"fault)</th></tr>{''.join(rows)}</table>")


def _per_fault(result: FleetResult) -> str:
    t = result.tally
    if not t.by_fault:
        return "<p>No fault was injected.</p>"
    outcomes = sorted({o for v in t.by_fault.values() for o in v}, key=lambda o: (o != "succeeded", o))
    head = "".join(f"<th>{_esc(o)}</th>" for o in outcomes)
    rows = []
    for fault, counts in sorted(t.by_fault.items()):
        expected = FAULTS[fault].expected if fault in FAULTS else "?"
        total = sum(counts.values())
        got_expected = counts.get(expected, 0) == total
        mark = '<span class="ok">as documented</span>' if got_expected else '<span class="bad">differs</span>'
        cells = "".join(f"<td class=n>{counts.get(o, 0):,}</td>" for o in outcomes)
        rows.append(f"<tr><td>{_esc(fault)}</td><td>{_esc(expected)}</td><td>{mark}</td>"
                    f"<td class=n>{total:,}</td>{cells}</tr>")
    return (f'<div style="overflow-x:auto"><table><tr><th>fault</th><th>expected (docs/faults.md)</th><th></th>'
            f"<th>devices</th>{head}</tr>{''.join(rows)}</table></div>")


def render_html(result: FleetResult) -> str:
    t = result.tally
    d = t.duration_summary()
    failed = t.failed
    verdict = (f'<span class="ok">all {t.devices:,} devices succeeded</span>' if not failed else
               f'<span class="bad">{failed:,} of {t.devices:,} devices failed or unfinished '
               f'({100 * failed / t.devices:.2f} %)</span>, {t.succeeded:,} succeeded')
    durations = (f"Upgrade duration p50 {d['p50']} s, p95 {d['p95']} s, max {d['max']} s (simulated)"
                 if d["p50"] is not None else "")
    exact = "" if t.durations.exact else " Percentiles from a fixed histogram (within 0.5 %)."
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Fleet run: {t.devices:,} devices, {result.spec.premises:,} premises</title>
<style>{_CSS}</style></head>
<body><h1>Fleet run: {result.spec.premises:,} premises, {t.devices:,} devices</h1>
<p class="verdict">{verdict}. {durations}.{exact}</p>
<h2>Run parameters</h2>{_parameters(result)}
<h2>Failures by reason</h2>{_failures(result)}
<h2>Completion over simulated time</h2>{completion_svg(t.durations, t.devices)}
<h2>Upgrade durations</h2>{histogram_svg(t.durations)}
<h2>Outcomes per fault</h2>{_per_fault(result)}
</body></html>
"""
