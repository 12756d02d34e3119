"""Display helpers for escalation summaries: values in words a coordinator reads.

Weights show lb first (US practice) with kg in brackets; glucose LO/HI show
as ``LO``/``HI``; times show in the patient's local zone.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from gateway.units import CANONICAL_UNIT, Metric, kg_to_lb
from rules.definitions import OP_SYMBOL, Clause

LABEL: dict[Metric, str] = {
    Metric.WEIGHT: "Weight",
    Metric.SYSTOLIC: "Systolic",
    Metric.DIASTOLIC: "Diastolic",
    Metric.MEAN_ARTERIAL: "Mean arterial pressure",
    Metric.PULSE: "Pulse",
    Metric.SPO2: "SpO2",
    Metric.PERFUSION_INDEX: "Perfusion index",
    Metric.GLUCOSE: "Glucose",
    Metric.BATTERY: "Battery",
}


def num(v: float, digits: int = 1) -> str:
    """A number without needless trailing zeros (``92``, ``92.5``, ``-0.3``; never ``-0``)."""
    s = f"{round(v, digits):.{digits}f}"
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return "0" if s == "-0" else s


def lb(kg: float) -> str:
    """``186.4 lb`` for a kg value."""
    return f"{kg_to_lb(kg):.1f} lb"


def value(metric: Metric | None, v: float) -> str:
    """A canonical value in display form."""
    if metric is Metric.GLUCOSE and math.isinf(v):
        return "HI" if v > 0 else "LO"
    if metric is Metric.WEIGHT:
        return f"{lb(v)} ({v:.2f} kg)"
    unit = CANONICAL_UNIT[metric] if metric is not None else ""
    return f"{num(v)} {unit}".rstrip()


def weight_change(kg: float) -> str:
    """``2.6 lb (1.18 kg)`` for a kg difference (absolute)."""
    return f"{kg_to_lb(abs(kg)):.1f} lb ({abs(kg):.2f} kg)"


def duration(td: timedelta) -> str:
    """``60 min``, ``24 h``, ``7 days``."""
    s = td.total_seconds()
    if s % 86400 == 0 and s >= 86400 and s != 86400:
        return f"{int(s // 86400)} days"
    if s % 3600 == 0 and s >= 7200:
        return f"{int(s // 3600)} h"
    if s % 60 == 0:
        return f"{int(s // 60)} min"
    return f"{num(s)} s"


def local_time(epoch: float, tz: ZoneInfo) -> str:
    """``Sun Mar 08 08:00 EDT`` in the patient's zone."""
    return datetime.fromtimestamp(epoch, UTC).astimezone(tz).strftime("%a %b %d %H:%M %Z")


def label(metric: Metric, *, lower: bool = False) -> str:
    """``Systolic`` (or ``systolic`` mid-sentence; ``SpO2`` stays as is)."""
    text = LABEL.get(metric, str(metric))
    return text.lower() if lower and not text.startswith("SpO2") else text


def clause(c: Clause, *, weight_in_lb: bool = True, lower: bool = False) -> str:
    """``SpO2 <= 92 % on 2 readings within 60 min``."""
    if c.flag is not None:
        text = f"a {c.flag.removeprefix('glucose_').upper()} reading"
    else:
        parts = []
        for op, v in c.ops():
            shown = f"{kg_to_lb(v):.1f} lb" if (c.metric is Metric.WEIGHT and weight_in_lb) \
                else value(c.metric, v)
            parts.append(f"{OP_SYMBOL[op]} {shown}")
        name = label(c.metric, lower=lower) if c.metric else ""
        text = f"{name} {' and '.join(parts)}"
    if c.count > 1:
        text += f" on {c.count} readings within {duration(c.within)}"
    return text.strip()
