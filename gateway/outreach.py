"""Billing outreach in the queue: at-risk RPM periods and minutes short of a code.

How this works: :func:`outreach_triggers` is pure -- enrolments, device days,
time entries and ``today`` in; routine :class:`Trigger` findings out, using the
same projection as call prep and the month-end report.  The gateway's timer
loop runs :func:`run_outreach` every hour; each finding carries a key (the
period and its status, or the month and minutes bucket), so an unchanged
situation adds nothing and a coordinator's queue gets one item per patient and
period, updated when it worsens, which they resolve like any escalation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from gateway.billing import BillingProfile, TimeEntry, project_at_risk
from gateway.billing.from_store import entries_by_patient
from gateway.escalations import Severity, Trigger
from gateway.model import Enrollment, Patient, Program

RULE_DEVICE_DAYS = "rpm.device_days_at_risk"
RULE_MINUTES = "rpm.minutes_short"
#: Minutes short of the next time code that are worth a nudge in the last week.
MINUTES_NUDGE = 10
#: Days before month end from which minutes-short items appear.
MINUTES_WINDOW_DAYS = 7


def outreach_triggers(patients: Mapping[str, Patient], enrollments: Iterable[Enrollment],
                      device_days: Mapping[str, Sequence[date]],
                      entries: Mapping[str, Sequence[TimeEntry]], *, now: datetime,
                      practice_tz: str) -> list[Trigger]:
    """Routine findings for patients whose period or month is at risk."""
    out: list[Trigger] = []
    for e in enrollments:
        p = patients.get(e.patient_id)
        if p is None or not e.active or Program.RPM not in e.programs:
            continue
        today = now.astimezone(ZoneInfo(p.timezone)).date()
        profile = BillingProfile(p.id, p.timezone, e.programs,
                                 frozenset(c.value for c in e.conditions), e.consent_date,
                                 e.monitoring_start)
        proj = project_at_risk(profile, device_days.get(p.id, ()), entries.get(p.id, ()),
                               today, practice_tz=practice_tz)
        if proj.period is not None and proj.status.value in ("at_risk", "cannot_reach_16"):
            per = proj.period
            words = ("cannot reach 16 device days" if proj.status.value == "cannot_reach_16"
                     else "at risk of missing 16 device days")
            summary = (f"RPM period {per.start.isoformat()}..{per.end.isoformat()}: "
                       f"{proj.days_so_far} device days so far, {proj.days_left} days left, "
                       f"{proj.recent_days} of the last 7 days with readings: {words} (99454); "
                       "reach out about daily readings.")
            out.append(Trigger(
                practice_id=p.practice_id, patient_id=p.id, rule_id=RULE_DEVICE_DAYS,
                rule_version=1, severity=Severity.ROUTINE,
                trigger_at=now, summary=summary, thresholds={"device_days": 16},
                evidence={"projection": proj.to_dict()},
                key=f"{per.start.isoformat()}:{proj.status.value}"))
        month_end = _month_end(now.astimezone(ZoneInfo(practice_tz)).date())
        if (month_end - today).days < MINUTES_WINDOW_DAYS:
            for t in proj.time:
                if t.program is Program.RPM and t.next_code and t.minutes > 0 and \
                        0 < t.minutes_short <= MINUTES_NUDGE:
                    out.append(Trigger(
                        practice_id=p.practice_id, patient_id=p.id, rule_id=RULE_MINUTES,
                        rule_version=1, severity=Severity.ROUTINE, trigger_at=now,
                        summary=(f"{t.minutes} RPM minutes this month: {t.minutes_short} more "
                                 f"reach {t.next_code} before {month_end.isoformat()} "
                                 "(needs an interactive call)."),
                        thresholds={"next_threshold": t.next_threshold},
                        evidence={"time": t.to_dict()},
                        key=f"{today:%Y-%m}:{t.next_code}"))
    return out


def _month_end(day: date) -> date:
    nxt = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return nxt - timedelta(days=1)


def run_outreach(store: Any, now: datetime | None = None) -> int:
    """Compute and record outreach findings for every practice; return how many."""
    now = now or datetime.now(UTC)
    n = 0
    for practice in store.list_practices():
        practice_id = practice.id
        patients = {p.id: p for p in store.list_patients(practice_id)}
        days = store.device_days(practice_id, now.date() - timedelta(days=400),
                                 now.date() + timedelta(days=1))
        entries = entries_by_patient(store, practice_id, now - timedelta(days=40), now)
        for trig in outreach_triggers(patients, store.list_enrollments(practice_id), days,
                                      entries, now=now, practice_tz=practice.timezone):
            _, event = store.record_trigger(trig, now)
            n += event is not None
    return n
