"""At-risk projection: will the current RPM period reach 16 device days, and
how far is this month's time from the next code?

Pure: ``today`` (a local date) comes from the caller.  A period is
``cannot_reach_16`` when even a reading on every remaining day would not get
it to 16; ``at_risk`` when the recent pace (device days in the last 7 days,
today included) extended over the remaining days falls short; otherwise
``on_track``.  ``not_started`` when there is no monitoring start yet.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from gateway.billing.model import (
    BillingProfile,
    JSONDict,
    Performer,
    RpmPeriod,
    TimeEntry,
    zone,
)
from gateway.billing.periods import monitoring_start, period_bounds, period_index
from gateway.billing.rules import DEFAULT_RULES, BillingMonth, BillingRules
from gateway.model import Program

#: Days looked back for the recent adherence.
RECENT_WINDOW_DAYS = 7


class PeriodStatus(StrEnum):
    """Where the current period stands against the 16-day threshold."""

    CANNOT_REACH_16 = "cannot_reach_16"
    AT_RISK = "at_risk"
    ON_TRACK = "on_track"
    NOT_STARTED = "not_started"


@dataclass(frozen=True, slots=True)
class TimeProgress:
    """This month's minutes of one program (and performer) against its next code."""

    program: Program
    performed_by: Performer | None  # None: every performer counts (RPM)
    minutes: int
    next_threshold: int | None  # None: no further code this month
    next_code: str | None
    minutes_short: int

    def to_dict(self) -> JSONDict:
        """JSON-ready form."""
        return {
            "program": str(self.program),
            "performed_by": str(self.performed_by) if self.performed_by else None,
            "minutes": self.minutes,
            "next_threshold": self.next_threshold,
            "next_code": self.next_code,
            "minutes_short": self.minutes_short,
        }


@dataclass(frozen=True, slots=True)
class AtRiskProjection:
    """One patient's standing on ``today``."""

    patient_id: str
    today: date
    status: PeriodStatus
    period: RpmPeriod | None
    days_so_far: int
    days_left: int  # remaining days, today included when it has no reading yet
    max_reachable: int
    recent_days: int  # device days in the last 7 days, today included
    time: tuple[TimeProgress, ...]

    def to_dict(self) -> JSONDict:
        """JSON-ready form."""
        return {
            "patient_id": self.patient_id,
            "today": self.today.isoformat(),
            "status": str(self.status),
            "period": self.period.to_dict() if self.period else None,
            "days_so_far": self.days_so_far,
            "days_left": self.days_left,
            "max_reachable": self.max_reachable,
            "recent_days": self.recent_days,
            "recent_window_days": RECENT_WINDOW_DAYS,
            "time": [t.to_dict() for t in self.time],
        }


def _ladder(first: int, step: int, codes: tuple[str, str], max_add_on: int | None) -> list[
    tuple[int, str]
]:
    """Thresholds (minutes, code) of a first code and its add-ons, up to 10 add-ons."""
    count = 10 if max_add_on is None else max_add_on
    return [(first, codes[0])] + [(first + step * k, codes[1]) for k in range(1, count + 1)]


def _progress(
    program: Program, who: Performer | None, minutes: int, ladder: list[tuple[int, str]]
) -> TimeProgress:
    for threshold, code in ladder:
        if minutes < threshold:
            return TimeProgress(program, who, minutes, threshold, code, threshold - minutes)
    return TimeProgress(program, who, minutes, None, None, 0)


def project_at_risk(
    profile: BillingProfile,
    device_days: Iterable[date],
    time_entries: Iterable[TimeEntry],
    today: date,
    *,
    practice_tz: str | None = None,
    rules: BillingRules = DEFAULT_RULES,
) -> AtRiskProjection:
    """Project the current RPM period and this month's time for one patient.

    ``today`` is the local date the caller considers current; device days
    after it are ignored.  Time entries are summed for the month of ``today``
    in the practice's time zone (default: the patient's).
    """
    consent = profile.consent_date
    days = sorted({d for d in device_days if d <= today and consent is not None and d >= consent})
    start = monitoring_start(profile, days)
    recent_from = today - timedelta(days=RECENT_WINDOW_DAYS - 1)
    recent = sum(1 for d in days if recent_from <= d <= today)
    need = rules.full_supply_min_days

    period: RpmPeriod | None = None
    so_far = left = reachable = 0
    if start is None or consent is None or today < start:
        status = PeriodStatus.NOT_STARTED
    else:
        k = period_index(start, today, rules.period_days)
        first, last = period_bounds(start, k, rules.period_days)
        in_period = tuple(d for d in days if first <= d <= today)
        period = RpmPeriod(k, first, last, in_period)
        so_far = len(in_period)
        left = (last - today).days + (0 if today in in_period else 1)
        reachable = so_far + left
        if reachable < need:
            status = PeriodStatus.CANNOT_REACH_16
        elif so_far >= need:
            status = PeriodStatus.ON_TRACK
        else:
            # Recent pace, today's slot counted only while still open.
            pace = recent / RECENT_WINDOW_DAYS
            status = PeriodStatus.ON_TRACK if so_far + pace * left >= need else PeriodStatus.AT_RISK

    month = BillingMonth.of(today)
    pz = zone(practice_tz or profile.timezone)
    entries = [
        e for e in time_entries
        if e.started_at.astimezone(pz).date() in month
        and consent is not None
        and e.started_at.astimezone(pz).date() >= consent
    ]

    def mins(program: Program, who: Performer | None) -> int:
        return sum(
            e.minutes for e in entries
            if e.program == program and (who is None or e.performed_by == who)
        )

    r = rules
    rpm_ladder = [(r.rpm_first_10, "99470"), *_ladder(r.rpm_first_20, r.rpm_add_on,
                                                     ("99457", "99458"), None)]
    staff, phys = Performer.CLINICAL_STAFF, Performer.PHYSICIAN
    time = (
        _progress(Program.RPM, None, mins(Program.RPM, None), rpm_ladder),
        _progress(
            Program.CCM, staff, mins(Program.CCM, staff),
            _ladder(r.ccm_staff_first, r.ccm_staff_add_on, ("99490", "99439"),
                    r.ccm_staff_add_on_max_units),
        ),
        _progress(
            Program.CCM, phys, mins(Program.CCM, phys),
            _ladder(r.ccm_physician_first, r.ccm_physician_add_on, ("99491", "99437"), None),
        ),
        _progress(
            Program.PCM, staff, mins(Program.PCM, staff),
            _ladder(r.pcm_first, r.pcm_add_on, ("99426", "99427"), None),
        ),
        _progress(
            Program.PCM, phys, mins(Program.PCM, phys),
            _ladder(r.pcm_first, r.pcm_add_on, ("99424", "99425"), None),
        ),
    )
    enrolled_time = tuple(t for t in time if t.program in profile.programs)
    return AtRiskProjection(
        patient_id=profile.patient_id,
        today=today,
        status=status,
        period=period,
        days_so_far=so_far,
        days_left=left,
        max_reachable=reachable,
        recent_days=recent,
        time=enrolled_time,
    )
