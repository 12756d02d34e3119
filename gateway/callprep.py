"""CCM call preparation: one page a coordinator reads before calling a patient.

How this works: :func:`build_callprep` is pure -- readings, escalations, time
entries, device days and ``now`` in; a :class:`CallPrep` out, rendered as
markdown (:meth:`CallPrep.to_markdown`), JSON or the web page.  Per metric it
gives count, min/max/mean, the least-squares trend in units per week, the last
value, and the share of readings inside the target range (defaults below,
documented as *design choices*; the care plan's targets win when given).
Adherence and minutes come from the same billing projection the month-end
report uses.  Talking points are generated from the numbers, never free text.

Default target ranges (canonical units): systolic < 140 and diastolic < 90
mmHg (AHA home target), SpO2 >= 92 % (>= 88 % with COPD), glucose 70-180
mg/dL (ADA time in range), pulse 50-100 /min.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from gateway.billing import BillingProfile, TimeEntry, project_at_risk
from gateway.escalations import Escalation, Status
from gateway.model import Condition, Enrollment, Patient, Reading
from gateway.store.api_store import Medication
from gateway.store.base import NotFound
from gateway.units import Metric, kg_to_lb

#: (low, high) inclusive target per metric; None = open side.
DEFAULT_TARGETS: dict[Metric, tuple[float | None, float | None]] = {
    Metric.SYSTOLIC: (None, 139.999),
    Metric.DIASTOLIC: (None, 89.999),
    Metric.SPO2: (92.0, None),
    Metric.GLUCOSE: (70.0, 180.0),
    Metric.PULSE: (50.0, 100.0),
}
COPD_SPO2_TARGET = (88.0, None)
SHOWN = (Metric.WEIGHT, Metric.SYSTOLIC, Metric.DIASTOLIC, Metric.PULSE, Metric.SPO2,
         Metric.GLUCOSE)
_LABEL = {Metric.WEIGHT: "Weight", Metric.SYSTOLIC: "Systolic BP", Metric.DIASTOLIC:
          "Diastolic BP", Metric.PULSE: "Pulse", Metric.SPO2: "SpO2", Metric.GLUCOSE: "Glucose"}


def _display(metric: Metric, value: float, us: bool = True) -> str:
    if metric is Metric.WEIGHT:
        return f"{kg_to_lb(value):.1f} lb" if us else f"{value:.1f} kg"
    unit = {Metric.SPO2: " %", Metric.GLUCOSE: " mg/dL", Metric.PULSE: " /min"}.get(
        metric, " mmHg")
    return f"{value:.0f}{unit}"


@dataclass(frozen=True, slots=True)
class MetricSummary:
    """Statistics of one metric over the call-prep window."""

    metric: Metric
    count: int
    min: float
    max: float
    mean: float
    last: float
    last_at: datetime
    slope_per_week: float | None  # canonical units per week; None with < 3 days of data
    in_range_share: float | None  # None: no target for this metric
    points: tuple[tuple[datetime, float], ...]


@dataclass(frozen=True, slots=True)
class CallPrep:
    """Everything on the call-prep page."""

    patient_id: str
    initials: str
    since: datetime
    now: datetime
    timezone: str
    conditions: tuple[str, ...]
    metrics: tuple[MetricSummary, ...]
    escalations_opened: tuple[Escalation, ...]
    escalations_resolved: tuple[Escalation, ...]
    adherence: dict[str, Any]
    minutes: list[dict[str, Any]]
    talking_points: tuple[str, ...]
    goals: dict[str, str] = field(default_factory=dict)
    #: Active medications as recorded ("Furosemide 40 mg, once daily (since 2026-02-01)").
    medications: tuple[str, ...] = ()
    #: Medications started or stopped since the last call.
    medication_changes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (no names: initials only)."""
        return {
            "patient_id": self.patient_id, "initials": self.initials,
            "since": self.since.isoformat(), "now": self.now.isoformat(),
            "conditions": list(self.conditions),
            "metrics": [{"metric": m.metric.value, "count": m.count, "min": m.min,
                         "max": m.max, "mean": round(m.mean, 2), "last": m.last,
                         "last_at": m.last_at.isoformat(),
                         "slope_per_week": None if m.slope_per_week is None
                         else round(m.slope_per_week, 3),
                         "in_range_share": m.in_range_share} for m in self.metrics],
            "escalations_opened": [_esc(e) for e in self.escalations_opened],
            "escalations_resolved": [_esc(e) for e in self.escalations_resolved],
            "adherence": self.adherence, "minutes": self.minutes,
            "goals": self.goals, "talking_points": list(self.talking_points),
            "medications": list(self.medications),
            "medication_changes": list(self.medication_changes),
        }

    def to_markdown(self) -> str:
        """The printable page as markdown."""
        tz = ZoneInfo(self.timezone)
        out = [f"# Call prep: patient {self.initials} ({self.patient_id})", "",
               f"Since {self.since.astimezone(tz):%a %b %d %H:%M} "
               f"(now {self.now.astimezone(tz):%a %b %d %H:%M %Z}); conditions: "
               f"{', '.join(self.conditions) or 'none recorded'}", "", "## Talking points", ""]
        out += [f"- {t}" for t in self.talking_points] or ["- nothing out of the ordinary"]
        out += ["", "## Readings", "", "| metric | n | min | max | mean | last | trend/week "
                "| in target |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for m in self.metrics:
            trend = "n/a" if m.slope_per_week is None else (
                f"{m.slope_per_week * (2.2046226218 if m.metric is Metric.WEIGHT else 1):+.1f}")
            share = "n/a" if m.in_range_share is None else f"{m.in_range_share:.0%}"
            out.append(f"| {_LABEL[m.metric]} | {m.count} | {_display(m.metric, m.min)} | "
                       f"{_display(m.metric, m.max)} | {_display(m.metric, m.mean)} | "
                       f"{_display(m.metric, m.last)} | {trend} | {share} |")
        out += ["", "## Escalations", ""]
        for e in self.escalations_opened:
            out.append(f"- opened {e.opened_at.astimezone(tz):%b %d}: [{e.severity}] "
                       f"{e.summary} ({e.status})")
        for e in self.escalations_resolved:
            out.append(f"- resolved {e.resolved_at.astimezone(tz) if e.resolved_at else '':%b %d}"
                       f": {e.rule_id} ({e.disposition})")
        if not self.escalations_opened and not self.escalations_resolved:
            out.append("- none since the last call")
        a = self.adherence
        out += ["", "## Adherence and time", "",
                f"- RPM period: {a.get('status')}, {a.get('days_so_far')} device days so far, "
                f"{a.get('days_left')} days left (recent: {a.get('recent_days')} of the last 7)"]
        for t in self.minutes:
            nxt = (f", {t['minutes_short']} min to {t['next_code']}" if t.get("next_code")
                   else "")
            out.append(f"- {t['program']}: {t['minutes']} min this month{nxt}")
        out += ["", "## Care-plan goals", ""]
        out += [f"- {k}: {v}" for k, v in self.goals.items()] or ["- none recorded"]
        out += ["", "## Medications (as recorded in Vitalgate; the EHR is the source)", ""]
        out += [f"- {m}" for m in self.medications] or ["- none recorded; review in the EHR"]
        out += [f"- changed since the last call: {c}" for c in self.medication_changes]
        return "\n".join(out) + "\n"


def _esc(e: Escalation) -> dict[str, Any]:
    return {"id": e.id, "rule_id": e.rule_id, "severity": e.severity.value,
            "status": e.status.value, "opened_at": e.opened_at.isoformat(),
            "summary": e.summary}


def _slope_per_week(points: Sequence[tuple[datetime, float]]) -> float | None:
    if len({p[0].date() for p in points}) < 3:
        return None
    t0 = points[0][0]
    xs = [(p[0] - t0).total_seconds() / 86400 / 7 for p in points]
    ys = [p[1] for p in points]
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx


def _in_range(v: float, target: tuple[float | None, float | None]) -> bool:
    lo, hi = target
    return (lo is None or v >= lo) and (hi is None or v <= hi)


def build_callprep(patient: Patient, *, enrollment: Enrollment | None,
                   readings: Sequence[Reading], escalations: Sequence[Escalation],
                   time_entries: Sequence[TimeEntry], device_days: Sequence[date],
                   since: datetime, now: datetime,
                   practice_tz: str | None = None,
                   medications: Sequence[Medication] = ()) -> CallPrep:
    """Summarise a patient's data since ``since`` (the last call) for the next call."""
    tz = ZoneInfo(patient.timezone)
    conditions = tuple(sorted(c.value for c in enrollment.conditions)) if enrollment else ()
    targets = dict(DEFAULT_TARGETS)
    if enrollment and Condition.COPD in enrollment.conditions:
        targets[Metric.SPO2] = COPD_SPO2_TARGET
    window = [r for r in readings if since <= r.measured_at <= now and r.alerting]
    summaries = []
    for metric in SHOWN:
        pts = tuple((r.measured_at, v) for r in window
                    if (v := r.value(metric)) is not None)
        if not pts:
            continue
        vals = [p[1] for p in pts]
        target = targets.get(metric)
        summaries.append(MetricSummary(
            metric, len(vals), min(vals), max(vals), sum(vals) / len(vals), vals[-1],
            pts[-1][0], _slope_per_week(pts),
            None if target is None else sum(_in_range(v, target) for v in vals) / len(vals),
            pts))
    opened = tuple(e for e in escalations if e.opened_at >= since)
    resolved = tuple(e for e in escalations
                     if e.status is Status.RESOLVED and e.resolved_at is not None
                     and e.resolved_at >= since)
    adherence: dict[str, Any] = {}
    minutes: list[dict[str, Any]] = []
    if enrollment is not None:
        profile = BillingProfile(patient.id, patient.timezone, enrollment.programs,
                                 frozenset(conditions), enrollment.consent_date,
                                 enrollment.monitoring_start)
        proj = project_at_risk(profile, device_days, time_entries, now.astimezone(tz).date(),
                               practice_tz=practice_tz)
        d = proj.to_dict()
        adherence = {k: d[k] for k in ("status", "days_so_far", "days_left", "max_reachable",
                                       "recent_days")}
        minutes = [t.to_dict() for t in proj.time]
    points = _talking_points(summaries, all_readings=readings, now=now, tz=tz,
                             adherence=adherence, minutes=minutes, opened=opened)
    goals = {_LABEL[m]: _goal_text(m, t) for m, t in targets.items() if m in _LABEL}
    active, changes = _medications(medications, since=since, now=now, tz=tz)
    if changes:
        points.append("medications changed since the last call (" + "; ".join(changes)
                      + "): confirm the patient takes them as recorded")
    return CallPrep(patient.id, patient.initials, since, now, patient.timezone, conditions,
                    tuple(summaries), opened, resolved, adherence, minutes, tuple(points),
                    goals, active, changes)


def _medications(medications: Sequence[Medication], *, since: datetime, now: datetime,
                 tz: ZoneInfo) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Active medications at ``now`` and the changes recorded in ``[since, now]``."""
    active = []
    changes = []
    for m in medications:
        if m.active_at(now):
            began = m.started_on or m.recorded_at.astimezone(tz).date()
            active.append(f"{m.label} (since {began.isoformat()})")
        if since <= m.recorded_at <= now:
            changes.append(f"{m.label} recorded {m.recorded_at.astimezone(tz):%b %d}")
        if m.stopped_at is not None and since <= m.stopped_at <= now:
            why = f": {m.stop_reason}" if m.stop_reason else ""
            changes.append(f"{m.label} stopped {m.stopped_at.astimezone(tz):%b %d}{why}")
    return tuple(active), tuple(changes)


def _goal_text(metric: Metric, target: tuple[float | None, float | None]) -> str:
    lo, hi = target
    if lo is not None and hi is not None:
        return f"{_display(metric, lo)} to {_display(metric, hi)}"
    if lo is not None:
        return f">= {_display(metric, lo)}"
    return f"< {_display(metric, round(hi or 0))}"


def _talking_points(summaries: Sequence[MetricSummary], *, all_readings: Sequence[Reading],
                    now: datetime, tz: ZoneInfo,
                    adherence: dict[str, Any], minutes: list[dict[str, Any]],
                    opened: Sequence[Escalation]) -> list[str]:
    out: list[str] = []
    by = {s.metric: s for s in summaries}
    w = by.get(Metric.WEIGHT)
    if w is not None and len(w.points) >= 2:
        recent = [p for p in w.points if p[0] >= now - timedelta(days=5)]
        if len(recent) >= 2:
            change = kg_to_lb(recent[-1][1] - recent[0][1])
            days = max(1, (recent[-1][0] - recent[0][0]).days)
            if abs(change) >= 2.0:
                out.append(f"weight {'up' if change > 0 else 'down'} {abs(change):.1f} lb over "
                           f"{days} day{'s' if days != 1 else ''}")
    s, d = by.get(Metric.SYSTOLIC), by.get(Metric.DIASTOLIC)
    if s is not None and d is not None and (s.mean >= 140 or d.mean >= 90):
        out.append(f"average BP {s.mean:.0f}/{d.mean:.0f} mmHg, above the 140/90 goal")
    g = by.get(Metric.GLUCOSE)
    if g is not None:
        lows = sum(1 for _, v in g.points if v < 70)
        if lows:
            out.append(f"{lows} glucose reading{'s' if lows > 1 else ''} below 70 mg/dL")
        if g.in_range_share is not None and g.in_range_share < 0.5:
            out.append(f"glucose in range {g.in_range_share:.0%} of readings")
    o = by.get(Metric.SPO2)
    if o is not None and o.in_range_share is not None and o.in_range_share < 1:
        out.append(f"SpO2 below target on {1 - o.in_range_share:.0%} of readings "
                   f"(lowest {o.min:.0f} %)")
    # metrics the patient measured before but not in the last 3 days
    for metric in SHOWN:
        last = max((r.measured_at for r in all_readings if r.value(metric) is not None),
                   default=None)
        if last is not None and now - last >= timedelta(days=3) and metric is not \
                Metric.DIASTOLIC:
            out.append(f"no {_LABEL[metric].lower()} readings since "
                       f"{last.astimezone(tz):%A %b %d}")
    if adherence.get("status") in ("at_risk", "cannot_reach_16"):
        out.append(f"{adherence['days_so_far']} device days this period, {adherence['days_left']}"
                   f" days left: {adherence['status'].replace('_', ' ')} for 99454")
    for t in minutes:
        if t.get("next_code") and 0 < t.get("minutes_short", 0) <= 10:
            out.append(f"{t['minutes_short']} more {t['program']} minutes reach "
                       f"{t['next_code']} this month")
    if opened:
        out.append(f"{len(opened)} escalation{'s' if len(opened) > 1 else ''} since the last "
                   "call: review with the patient")
    return out


def sparkline_svg(points: Sequence[tuple[datetime, float]], width: int = 240, height: int = 48,
                  threshold: float | None = None) -> str:
    """A small accessible SVG line chart of the points (threshold dashed)."""
    if not points:
        return ""
    t0, t1 = points[0][0].timestamp(), points[-1][0].timestamp()
    vals = [p[1] for p in points] + ([threshold] if threshold is not None else [])
    lo, hi = min(vals), max(vals)
    span_t, span_v = max(t1 - t0, 1.0), max(hi - lo, 1e-9)

    def xy(t: float, v: float) -> str:
        x = 4 + (t - t0) / span_t * (width - 8)
        y = height - 4 - (v - lo) / span_v * (height - 8)
        return f"{x:.1f},{y:.1f}"

    path = " ".join(xy(p[0].timestamp(), p[1]) for p in points)
    th = ""
    if threshold is not None:
        y = xy(t0, threshold).split(",")[1]
        th = (f'<line x1="4" x2="{width - 4}" y1="{y}" y2="{y}" stroke="#b00020" '
              'stroke-dasharray="4 3"/>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'role="img" aria-label="trend chart">{th}<polyline fill="none" stroke="#1a5fb4" '
            f'stroke-width="2" points="{path}"/></svg>')


# -- CLI -------------------------------------------------------------------------
def callprep_from_store(store: Any, patient: Patient, *, days: int,
                        now: datetime) -> CallPrep:
    """The call-prep page of ``patient`` for the last ``days`` days, from the store."""
    try:
        enrollment: Enrollment | None = store.get_enrollment(patient.id)
    except NotFound:
        enrollment = None
    readings = store.get_readings(patient.id, start=now - timedelta(days=90), end=now,
                                  practice_id=patient.practice_id, limit=100_000)
    escalations = store.list_escalations(patient.practice_id, patient_id=patient.id,
                                         status=list(Status), limit=1000)
    entries = [e.to_billing() for e in store.list_time_entries(
        patient.practice_id, now - timedelta(days=62), now, patient_id=patient.id)]
    device_days = store.device_days(patient.practice_id, now.date() - timedelta(days=400),
                                    now.date(), [patient.id]).get(patient.id, [])
    return build_callprep(patient, enrollment=enrollment, readings=readings,
                          escalations=escalations, time_entries=entries,
                          device_days=device_days, since=now - timedelta(days=days), now=now,
                          practice_tz=store.get_practice(patient.practice_id).timezone,
                          medications=store.list_medications(patient.id, patient.practice_id))


def _cmd(args: argparse.Namespace) -> int:
    from datetime import UTC

    from gateway.commands import fail, store_from

    with store_from(args) as store:
        try:
            patient = store.get_patient(args.patient)
        except NotFound:
            return fail(f"no patient {args.patient!r}")
        prep = callprep_from_store(store, patient, days=args.days, now=datetime.now(UTC))
    print(json.dumps(prep.to_dict(), indent=2) if args.json else prep.to_markdown(), end="")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``callprep``."""
    from gateway.commands import add_database_option

    p = sub.add_parser("callprep", help="CCM call preparation for one patient (markdown)",
                       description="Print the call-prep page for a patient: readings since the "
                                   "last call, trends, escalations, adherence, minutes, "
                                   "talking points.")
    p.add_argument("patient", help="patient id")
    p.add_argument("--days", type=int, default=30, help="window since the last call (days)")
    p.add_argument("--json", action="store_true", help="JSON instead of markdown")
    add_database_option(p)
    p.set_defaults(func=_cmd)
