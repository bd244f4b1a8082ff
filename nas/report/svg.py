"""Charts as plain SVG text: axes, points, lines and hover titles, nothing to load in the browser.

A page holds a few charts of up to thousands of points; written as SVG from Python they need no JavaScript
library and open offline in any browser. Each point's ``<title>`` is what the browser shows on hover.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape
from typing import Sequence

COLORS = {"ok": "#1f77b4", "best": "#d62728", "front": "#ff7f0e", "stopped": "#9aa5b1", "cached": "#2ca02c",
          "failed": "#000000", "screened": "#d0d4d9", "reference": "#9467bd", "line": "#1f77b4", "rival": "#8c564b"}


@dataclass
class Series:
    """Points of one kind: drawn as dots (``kind`` names the colour), or joined as a line (``line`` True)."""

    label: str
    xs: Sequence[float]
    ys: Sequence[float]
    kind: str = "ok"
    titles: Sequence[str] = ()
    line: bool = False
    step: bool = False  # a line that holds its value until the next point (a running best)
    radius: float = 3.0


@dataclass
class Chart:
    """One chart: series on linear (or log-x) axes, optional vertical and horizontal marks."""

    title: str
    x_label: str
    y_label: str
    series: list[Series] = field(default_factory=list)
    vlines: list[tuple[float, str]] = field(default_factory=list)  # (x, label), e.g. the target
    band: tuple[float, float] | None = None  # a shaded x range, e.g. the FLOPs window
    log_x: bool = False
    width: int = 560
    height: int = 340

    def svg(self) -> str:
        """The chart as one ``<svg>`` element."""
        return render(self)


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values covering [low, high]."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low]
    raw = (high - low) / max(1, count)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


def tick_text(value: float) -> str:
    """Short tick labels: 400M, 1.5G, 0.35, 20."""
    size = abs(value)
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if size >= scale:
            return f"{value / scale:g}{unit}"
    return f"{value:.3g}"


def _extent(values: list[float], log: bool) -> tuple[float, float]:
    values = [v for v in values if math.isfinite(v) and (v > 0 or not log)]
    if not values:
        return (1.0, 10.0) if log else (0.0, 1.0)
    low, high = min(values), max(values)
    if log:
        low, high = math.log10(low), math.log10(high)
    pad = (high - low) * 0.05 or (abs(high) * 0.1 or 1.0)
    return low - pad, high + pad


def render(chart: Chart) -> str:
    """Draw ``chart``: frame, ticks, band, marks, then each series in order (later ones on top)."""
    left, right, top, bottom = 62, 12, 28, 44
    plot_w, plot_h = chart.width - left - right, chart.height - top - bottom
    xs = [float(x) for s in chart.series for x in s.xs] + [x for x, _ in chart.vlines]
    ys = [float(y) for s in chart.series for y in s.ys]
    x0, x1 = _extent(xs, chart.log_x)
    y0, y1 = _extent(ys, False)

    def px(x: float) -> float:
        value = math.log10(x) if chart.log_x else x
        return left + (value - x0) / (x1 - x0) * plot_w

    def py(y: float) -> float:
        return top + plot_h - (y - y0) / (y1 - y0) * plot_h

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{chart.width}" height="{chart.height}" '
             f'viewBox="0 0 {chart.width} {chart.height}" font-family="sans-serif" font-size="11">',
             f'<text x="{left}" y="16" font-size="13" font-weight="bold">{escape(chart.title)}</text>',
             f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#888"/>']
    if chart.band:
        a, b = (min(max(px(v), left), left + plot_w) for v in chart.band)
        parts.append(f'<rect x="{a:.1f}" y="{top}" width="{max(0.0, b - a):.1f}" height="{plot_h}" fill="#eef3f8"/>')
    x_ticks = ([10 ** t for t in nice_ticks(x0, x1)] if chart.log_x else nice_ticks(x0, x1))
    for t in x_ticks:
        if left <= px(t) <= left + plot_w:
            parts.append(f'<line x1="{px(t):.1f}" x2="{px(t):.1f}" y1="{top}" y2="{top + plot_h}" stroke="#eee"/>'
                         f'<text x="{px(t):.1f}" y="{top + plot_h + 14}" text-anchor="middle">{tick_text(t)}</text>')
    for t in nice_ticks(y0, y1):
        if top <= py(t) <= top + plot_h:
            parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{py(t):.1f}" y2="{py(t):.1f}" stroke="#eee"/>'
                         f'<text x="{left - 6}" y="{py(t) + 4:.1f}" text-anchor="end">{tick_text(t)}</text>')
    parts.append(f'<text x="{left + plot_w / 2}" y="{chart.height - 8}" text-anchor="middle">'
                 f'{escape(chart.x_label)}</text>'
                 f'<text transform="translate(14 {top + plot_h / 2}) rotate(-90)" text-anchor="middle">'
                 f'{escape(chart.y_label)}</text>')
    for x, label in chart.vlines:
        parts.append(f'<line x1="{px(x):.1f}" x2="{px(x):.1f}" y1="{top}" y2="{top + plot_h}" stroke="#555" '
                     f'stroke-dasharray="4 3"/><text x="{px(x) + 3:.1f}" y="{top + 12}">{escape(label)}</text>')
    for series in chart.series:
        parts.append(_series_svg(series, px, py))
    parts.append(_legend(chart, left + plot_w))
    parts.append("</svg>")
    return "".join(parts)


def _series_svg(series: Series, px, py) -> str:
    color = COLORS.get(series.kind, series.kind)
    points = [(px(float(x)), py(float(y))) for x, y in zip(series.xs, series.ys)
              if math.isfinite(float(x)) and math.isfinite(float(y))]
    if series.line:
        if series.step:
            stepped = []
            for i, (x, y) in enumerate(points):
                if i:
                    stepped.append((x, stepped[-1][1]))
                stepped.append((x, y))
            points = stepped
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        return f'<polyline class="series" points="{path}" fill="none" stroke="{color}" stroke-width="2"/>'
    titles = list(series.titles) or [""] * len(points)
    dots = [f'<circle class="point {escape(series.kind)}" cx="{x:.1f}" cy="{y:.1f}" r="{series.radius}" '
            f'fill="{color}" fill-opacity="0.8"><title>{escape(title)}</title></circle>'
            for (x, y), title in zip(points, titles)]
    return f'<g class="series" data-label="{escape(series.label)}">{"".join(dots)}</g>'


def _legend(chart: Chart, right_edge: float) -> str:
    items = [s for s in chart.series if s.label]
    if not items:
        return ""
    parts = [f'<rect x="{right_edge - 124}" y="30" width="120" height="{14 * len(items) + 6}" fill="white" '
             f'fill-opacity="0.85" stroke="#ccc"/>']
    y = 44
    for series in items:
        color = COLORS.get(series.kind, series.kind)
        mark = (f'<line x1="{right_edge - 118}" x2="{right_edge - 106}" y1="{y - 4}" y2="{y - 4}" stroke="{color}" '
                f'stroke-width="2"/>' if series.line else
                f'<circle cx="{right_edge - 112}" cy="{y - 4}" r="4" fill="{color}"/>')
        parts.append(f'{mark}<text x="{right_edge - 100}" y="{y}">{escape(series.label)}</text>')
        y += 14
    return "".join(parts)
