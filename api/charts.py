"""Inline SVG charts: a pure function from points to markup.

Server-rendered SVG needs no chart library or script, prints, scales on a
tablet and is readable by screen readers through ``role="img"``, a
``<title>`` and an ``aria-label`` that states the range in words.  Every
string placed in the SVG is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape

from markupsafe import Markup

WIDTH, HEIGHT = 640, 220
PAD_L, PAD_R, PAD_T, PAD_B = 48, 12, 16, 28


@dataclass(frozen=True, slots=True)
class Threshold:
    """A horizontal line drawn at ``value`` with ``label``."""

    label: str
    value: float


def _fmt(v: float) -> str:
    return f"{v:.0f}" if abs(v) >= 20 else f"{v:.1f}"


def line_chart(
    points: Sequence[tuple[datetime, float]],
    *,
    start: datetime,
    end: datetime,
    title: str,
    unit: str,
    thresholds: Sequence[Threshold] = (),
    marker_at: datetime | None = None,
) -> Markup:
    """An SVG line chart of ``points`` between ``start`` and ``end``."""
    values = [v for _, v in points] + [line.value for line in thresholds]
    if values:
        lo, hi = min(values), max(values)
    else:
        lo, hi = 0.0, 1.0
    if hi - lo < 1e-9:
        lo, hi = lo - 1, hi + 1
    margin = (hi - lo) * 0.08
    lo, hi = lo - margin, hi + margin
    span = max((end - start).total_seconds(), 1.0)
    plot_w, plot_h = WIDTH - PAD_L - PAD_R, HEIGHT - PAD_T - PAD_B

    def x(t: datetime) -> float:
        return PAD_L + plot_w * min(max((t - start).total_seconds() / span, 0.0), 1.0)

    def y(v: float) -> float:
        return PAD_T + plot_h * (1 - (v - lo) / (hi - lo))

    if points:
        summary = (f"{title}: {len(points)} readings from {start:%b %d} to {end:%b %d}, "
                   f"lowest {_fmt(min(v for _, v in points))} {unit}, "
                   f"highest {_fmt(max(v for _, v in points))} {unit}")
    else:
        summary = f"{title}: no readings from {start:%b %d} to {end:%b %d}"
    if thresholds:
        summary += "; thresholds " + ", ".join(f"{th.label} {_fmt(th.value)}"
                                               for th in thresholds)
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(summary)}" preserveAspectRatio="xMidYMid meet" '
        'xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(summary)}</title>",
        f'<rect x="{PAD_L}" y="{PAD_T}" width="{plot_w}" height="{plot_h}" class="plot"/>',
    ]
    for frac in (0.0, 0.5, 1.0):
        v = lo + (hi - lo) * frac
        parts.append(f'<text x="{PAD_L - 6}" y="{y(v) + 4:.1f}" class="axis" '
                     f'text-anchor="end">{_fmt(v)}</text>')
    parts.append(f'<text x="{PAD_L}" y="{HEIGHT - 8}" class="axis">{start:%b %d}</text>')
    parts.append(f'<text x="{WIDTH - PAD_R}" y="{HEIGHT - 8}" class="axis" '
                 f'text-anchor="end">{end:%b %d}</text>')
    for line in thresholds:
        ty = y(line.value)
        parts.append(f'<line x1="{PAD_L}" x2="{WIDTH - PAD_R}" y1="{ty:.1f}" y2="{ty:.1f}" '
                     'class="threshold"/>')
        parts.append(f'<text x="{WIDTH - PAD_R - 4}" y="{ty - 4:.1f}" class="threshold-label" '
                     f'text-anchor="end">{escape(line.label)} {_fmt(line.value)}</text>')
    if marker_at is not None:
        mx = x(marker_at)
        parts.append(f'<line x1="{mx:.1f}" x2="{mx:.1f}" y1="{PAD_T}" '
                     f'y2="{PAD_T + plot_h}" class="marker"/>')
    ordered = sorted(points)
    if len(ordered) > 1:
        path = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in ordered)
        parts.append(f'<polyline points="{path}" class="series"/>')
    for t, v in ordered:
        parts.append(f'<circle cx="{x(t):.1f}" cy="{y(v):.1f}" r="3" class="point"/>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated string is escaped


_OPS = {"gt": ">", "ge": "≥", "lt": "<", "le": "≤"}


def rule_threshold_lines(
    params: dict[str, object], metric: str, baseline: float | None = None
) -> list[tuple[str, float, str | None]]:
    """Threshold levels of a rule's params for ``metric`` as (label, value, unit).

    Understands the rule file's shapes: ``clauses`` / ``clause`` lists of
    ``{metric, gt|ge|lt|le}`` (absolute levels) and ``delta`` rules
    (``{metric, ge, unit, days_back}``), whose level is ``baseline + ge``.
    Values stay in the unit the rule states (``unit``), canonical otherwise.
    """
    clauses: list[dict[str, object]] = []
    raw = params.get("clauses")
    if isinstance(raw, list):
        clauses += [c for c in raw if isinstance(c, dict)]
    if isinstance(params.get("clause"), dict):
        clauses.append(params["clause"])  # type: ignore[arg-type]
    if "metric" in params:
        clauses.append(params)
    out: list[tuple[str, float, str | None]] = []
    for clause in clauses:
        if clause.get("metric") != metric:
            continue
        unit = clause.get("unit", params.get("unit"))
        relative = "days_back" in clause
        for op, sym in _OPS.items():
            v = clause.get(op)
            if isinstance(v, int | float) and not isinstance(v, bool):
                if relative:
                    if baseline is None:
                        continue
                    out.append((f"baseline {sym}+{v:g}", float(v), str(unit) if unit else None))
                else:
                    out.append((f"{sym} {v:g}", float(v), str(unit) if unit else None))
    return out
