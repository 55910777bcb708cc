"""The HTML report of a fleet run: the summary, devices completed over simulated time and a
histogram of upgrade durations, as inline SVG (no scripts, no network assets)."""

from __future__ import annotations

import html
import json
from typing import Any

from .run import FleetResult

_W, _H, _PAD = 640, 260, 40


def _axes(x_label: str, y_label: str, x_max: float, y_max: float) -> list[str]:
    return [
        f'<line x1="{_PAD}" y1="{_H - _PAD}" x2="{_W - 10}" y2="{_H - _PAD}" stroke="black"/>',
        f'<line x1="{_PAD}" y1="10" x2="{_PAD}" y2="{_H - _PAD}" stroke="black"/>',
        f'<text x="{_W / 2}" y="{_H - 8}" text-anchor="middle" font-size="12">{html.escape(x_label)}'
        f' (0 – {x_max:,.1f})</text>',
        f'<text x="12" y="{_H / 2}" font-size="12" transform="rotate(-90 12 {_H / 2})" text-anchor="middle">'
        f'{html.escape(y_label)} (0 – {y_max:,.0f})</text>',
    ]


def completion_svg(points: list[tuple[float, int]]) -> str:
    """Devices completed (y) over simulated seconds (x) as a step line."""
    x_max = max((t for t, _ in points), default=1.0) or 1.0
    y_max = max((n for _, n in points), default=1) or 1
    sx = (_W - _PAD - 10) / x_max
    sy = (_H - _PAD - 10) / y_max
    path = [f"M{_PAD},{_H - _PAD}"]
    last_y = _H - _PAD
    for t, n in points:
        x = _PAD + t * sx
        y = _H - _PAD - n * sy
        path.append(f"L{x:.1f},{last_y:.1f} L{x:.1f},{y:.1f}")
        last_y = y
    parts = _axes("simulated time, s", "devices completed", x_max, y_max)
    parts.append(f'<path d="{" ".join(path)}" fill="none" stroke="#1f77b4" stroke-width="2"/>')
    return f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" role="img">{"".join(parts)}</svg>'


def histogram_svg(durations: list[float], bins: int = 20) -> str:
    if not durations:
        return "<p>No device completed.</p>"
    lo, hi = min(durations), max(durations)
    width = (hi - lo) / bins or 1.0
    counts = [0] * bins
    for d in durations:
        counts[min(int((d - lo) / width), bins - 1)] += 1
    y_max = max(counts)
    bar_w = (_W - _PAD - 10) / bins
    sy = (_H - _PAD - 10) / y_max
    parts = _axes(f"upgrade duration, s (from {lo:,.1f})", "devices", hi, y_max)
    for i, c in enumerate(counts):
        h = c * sy
        parts.append(f'<rect x="{_PAD + i * bar_w:.1f}" y="{_H - _PAD - h:.1f}" width="{bar_w - 1:.1f}" '
                     f'height="{h:.1f}" fill="#ff7f0e"><title>{lo + i * width:,.1f}–{lo + (i + 1) * width:,.1f} s:'
                     f' {c}</title></rect>')
    return f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" role="img">{"".join(parts)}</svg>'


def render_html(result: FleetResult) -> str:
    summary: dict[str, Any] = result.summary()
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td><code>{html.escape(json.dumps(v))}</code></td></tr>"
                   for k, v in summary.items())
    points = [(p["time"], p["done"]) for p in result.progress]
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Fleet run: {summary['premises']} premises</title>
<style>body{{font-family:sans-serif;margin:2em}} th{{text-align:left;padding-right:1em}}</style></head>
<body><h1>Fleet run: {summary['premises']} premises, {summary['devices']} devices</h1>
<p>{summary['succeeded']} succeeded; simulated {summary['simulated_s']:,} s in {summary['wall_s']:,} s wall time.</p>
<h2>Summary</h2><table>{rows}</table>
<h2>Devices completed over simulated time</h2>{completion_svg(points)}
<h2>Upgrade durations</h2>{histogram_svg(result.durations)}
</body></html>
"""
