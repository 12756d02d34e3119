"""Monthly billing evaluation for one patient: pure, no I/O, no clock.

How this works
--------------
1. **Device days** come in as local dates (patient's time zone); the caller
   derives them from the day rollup (or :func:`local_device_days`).  Only days
   on or after the consent date count.
2. **RPM periods** are consecutive 30-day blocks from the monitoring start
   (the enrolment's, else the first device day on or after consent).  They
   are never stretched, shifted or gapped to reach a threshold.
3. **Month attribution.**  A device-supply code (99454 / 99445, and the
   one-time 99453) belongs to the month in which its period *ends* (the
   period's last day is its date of service, and date-keyed settings are
   looked up on that day).  Time codes belong to the calendar month, in the
   practice's time zone, in which each time entry *started*.
4. **Time** is summed per program and, for CCM and PCM, per performer.  An
   entry belongs to exactly one program, so a minute is never counted twice;
   entries overlapping in time are reported as warnings for review.  Entries
   dated before consent are excluded and listed.

Conservative choices (Vitalgate bills less when the rules leave a choice):

- 99453 is billed once per episode, for the first period that reaches the
  minimum device days in force on that period's last day.
- Physician minutes are never added to clinical-staff minutes, or the
  reverse.  One CCM family per month: complex (99487/99489) when the care plan
  was established or revised this month and staff time reaches 60; else the
  physician family (99491/99437) when physician time reaches 30; else the
  clinical-staff family (99490/99439).  PCM likewise prefers the physician
  family (99424/99425) over the staff family (99426/99427).
- CCM and PCM are not billed in one month: when both reach a threshold, CCM
  (the patient has the two or more conditions it needs, and its care plan
  covers the PCM condition) is billed and PCM is not; PCM minutes are not
  moved to CCM.  A warning asks for review.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date

from gateway.billing.model import (
    BilledCode,
    BillingInputError,
    BillingProfile,
    JSONDict,
    JSONValue,
    MonthReport,
    NotBillable,
    Performer,
    RpmPeriod,
    TimeEntry,
    zone,
)
from gateway.billing.periods import monitoring_start, rpm_periods
from gateway.billing.rules import DEFAULT_RULES, BillingMonth, BillingRules
from gateway.model import Program


@dataclass(slots=True)
class _Out:
    """Accumulates one report's codes, refusals and warnings (internal)."""

    codes: list[BilledCode] = field(default_factory=list)
    skipped: list[NotBillable] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def bill(self, code: str, units: int, reason: str, period: RpmPeriod | None = None) -> None:
        self.codes.append(BilledCode(code, units, reason, period))

    def skip(self, code: str, reason: str) -> None:
        self.skipped.append(NotBillable(code, reason))


def _n_days(n: int) -> str:
    return f"{n} device day" if n == 1 else f"{n} device days"


def _units(n: int) -> str:
    return f"{n} unit" if n == 1 else f"{n} units"


def evaluate_month(
    profile: BillingProfile,
    device_days: Iterable[date],
    time_entries: Iterable[TimeEntry],
    month: BillingMonth,
    *,
    practice_tz: str | None = None,
    rules: BillingRules = DEFAULT_RULES,
) -> MonthReport:
    """Evaluate one patient's RPM, CCM and PCM codes for ``month``.

    ``device_days`` are the patient's local device days (any order, repeats
    ignored), all of them since enrolment so that periods and the one-time
    99453 can be placed.  ``time_entries`` are this patient's entries (any
    month; those outside ``month`` are ignored).  ``practice_tz`` decides the
    month of each time entry; it defaults to the patient's time zone.
    Raises :class:`BillingInputError` for an entry of another patient.
    """
    days = sorted(set(device_days))
    entries = tuple(time_entries)
    for e in entries:
        if e.patient_id != profile.patient_id:
            raise BillingInputError(
                f"time entry {e.label} is for patient {e.patient_id!r}, "
                f"not {profile.patient_id!r}"
            )
    practice_zone_name = practice_tz or profile.timezone
    practice_zone = zone(practice_zone_name)
    out = _Out()
    evidence: JSONDict = {
        "month": str(month),
        "patient_tz": profile.timezone,
        "practice_tz": practice_zone_name,
        "consent_date": profile.consent_date.isoformat() if profile.consent_date else None,
        "programs": sorted(str(p) for p in profile.programs),
        "conditions": sorted(profile.conditions),
        "complex_care_plan_this_month": month in profile.complex_ccm_months,
    }

    periods = _device_codes(profile, days, month, rules, out, evidence=evidence)

    # --- time entries of the month (practice time zone) -------------------------
    dated = sorted(
        (
            (e, local)
            for e in entries
            if (local := e.started_at.astimezone(practice_zone).date()) in month
        ),
        key=lambda pair: pair[0].started_at,
    )
    in_month = [e for e, _ in dated]
    consent = profile.consent_date
    counted: list[TimeEntry] = []
    entry_evidence: list[JSONValue] = []
    for e, local in dated:
        excluded = None
        if consent is None:
            excluded = "no consent on file"
        elif local < consent:
            excluded = f"before consent {consent.isoformat()}"
        else:
            counted.append(e)
        entry_evidence.append(
            {
                "id": e.label,
                "program": str(e.program),
                "started_at": e.started_at.isoformat(),
                "local_date": local.isoformat(),
                "minutes": e.minutes,
                "interactive": e.interactive,
                "performed_by": str(e.performed_by),
                "counted": excluded is None,
                "excluded_because": excluded,
            }
        )
        if excluded is not None:
            out.warnings.append(f"time entry {e.label} ({e.minutes} min) not counted: {excluded}")
    evidence["time_entries"] = entry_evidence
    out.warnings.extend(_overlap_warnings(in_month))

    evidence["minutes"] = {
        str(program): {
            str(who): sum(
                e.minutes for e in counted if e.program == program and e.performed_by == who
            )
            for who in Performer
        }
        for program in Program
    }
    _rpm_time(profile, counted, month, rules, out)
    ccm_billed = _ccm(profile, counted, month, rules, out)
    _pcm(profile, counted, month, rules, out, ccm_billed=ccm_billed)
    evidence["rules"] = {
        "period_days": rules.period_days,
        "99453_min_days_on_month_end": rules.setup_min_days_on(month.last_day),
        "99445_exists": rules.has_99445(month.last_day),
        "99470_exists": rules.has_99470(month.last_day),
    }

    return MonthReport(
        patient_id=profile.patient_id,
        month=month,
        periods=periods,
        codes=tuple(out.codes),
        not_billable=tuple(out.skipped),
        evidence=evidence,
        warnings=tuple(out.warnings),
    )


def _device_codes(
    profile: BillingProfile,
    days: Sequence[date],
    month: BillingMonth,
    rules: BillingRules,
    out: _Out,
    *,
    evidence: JSONDict,
) -> tuple[RpmPeriod, ...]:
    """Device-supply codes (and 99453) for the periods ending in ``month``."""
    consent = profile.consent_date
    if Program.RPM not in profile.programs:
        evidence["monitoring_start"] = None
        if days:
            out.skip(
                "99454",
                f"patient not enrolled in RPM: {_n_days(len(days))} on file, no device code",
            )
        return ()
    start = monitoring_start(profile, days)
    evidence["monitoring_start"] = start.isoformat() if start else None
    evidence["monitoring_start_from"] = (
        "enrolment" if profile.monitoring_start is not None
        else "first device day on or after consent" if start is not None
        else None
    )
    before_consent = [d for d in days if consent is None or d < consent]
    evidence["device_days_before_consent"] = [d.isoformat() for d in before_consent]
    if start is None:
        why = (
            "no consent on file" if consent is None
            else f"no device day on or after consent {consent.isoformat()}"
        )
        out.skip("99454", f"{why}: no RPM period, no device code")
        return ()
    if consent is not None and start < consent:
        out.warnings.append(
            f"monitoring start {start.isoformat()} is before consent {consent.isoformat()}: "
            "device days before consent are not counted"
        )
    counted = [d for d in days if consent is not None and d >= consent]
    before_start = [d for d in counted if d < start]
    if before_start:
        evidence["device_days_before_monitoring_start"] = [d.isoformat() for d in before_start]
    all_periods = rpm_periods(start, month.last_day, counted, period_days=rules.period_days)
    ending = tuple(p for p in all_periods if p.end in month)
    open_period = None
    if all_periods and all_periods[-1].end > month.last_day:
        # The period still running at month end (days up to month end): not billed this
        # month, shown so that follow-up can see where it stands.
        last = all_periods[-1]
        shown = tuple(d for d in last.days if d <= month.last_day)
        open_period = RpmPeriod(last.index, last.start, last.end, shown)
        evidence["open_period"] = open_period.to_dict()
    if not ending:
        if open_period is not None:
            p = open_period
            note = (
                f"period {p.label} ({_n_days(p.device_days)} by {month.last_day.isoformat()}) "
                f"ends after {month}"
            )
        else:
            note = f"monitoring starts {start.isoformat()}, after {month}"
        out.skip(
            "99454",
            f"no RPM period ends in {month}: {note}; device codes are reported "
            "in the month a period ends",
        )
        return ending

    setup = next(
        (
            p for p in all_periods
            if consent is not None
            and consent <= p.end
            and p.device_days >= rules.setup_min_days_on(p.end)
        ),
        None,
    )
    evidence["99453_period"] = setup.label if setup else None
    for p in ending:
        dos = p.end
        if consent is None or consent > dos:
            why = "no consent on file" if consent is None else (
                f"consent {consent.isoformat()} after date of service {dos.isoformat()}"
            )
            out.skip("99454", f"{why} (end of period {p.label}): no device code")
            out.skip("99453", f"{why}: no set-up code")
            continue
        n = p.device_days
        head = f"{_n_days(n)} in period {p.label}"
        if n >= rules.full_supply_min_days:
            out.bill("99454", 1, f"{head}: 99454", p)
        elif n >= rules.short_supply_min_days:
            if rules.has_99445(dos):
                out.bill("99445", 1, f"{head}: 99445 not 99454", p)
                out.skip("99454", f"{head}: 99445 not 99454")
            else:
                out.skip("99454", f"{head}: 99454 needs {rules.full_supply_min_days}")
                out.skip(
                    "99445",
                    f"{head}: 99445 does not exist for dates of service before "
                    f"{rules.code_99445_from.isoformat()}",
                )
        else:
            out.skip("99454", f"{head}: no device code")
        need = rules.setup_min_days_on(dos)
        if setup is p:
            out.bill(
                "99453", 1,
                f"{head}, 99453 needs {need} on date of service {dos.isoformat()}: "
                "99453 (once per episode)",
                p,
            )
        elif setup is None or setup.index > p.index:
            out.skip(
                "99453",
                f"{head}: 99453 needs {need} on date of service {dos.isoformat()}",
            )
        else:
            out.skip("99453", f"already billed for period {setup.label} (once per episode)")
    return ending


def _overlap_warnings(entries: Sequence[TimeEntry]) -> list[str]:
    """Warnings for entries (already sorted by start) that overlap in time."""
    warnings = []
    for i, a in enumerate(entries):
        for b in entries[i + 1:]:
            if b.started_at >= a.ended_at:
                break
            overlap = int((min(a.ended_at, b.ended_at) - b.started_at).total_seconds() // 60)
            if a.program != b.program:
                what = (
                    f"across programs {a.program} and {b.program}: a minute counts toward "
                    "one program only"
                )
            else:
                what = f"both {a.program}: possible duplicate"
            warnings.append(
                f"time entries {a.label} and {b.label} overlap by {overlap} min {what}; review"
            )
    return warnings


def _minutes(entries: Iterable[TimeEntry], program: Program, who: Performer | None) -> int:
    return sum(
        e.minutes for e in entries
        if e.program == program and (who is None or e.performed_by == who)
    )


def _rpm_time(
    profile: BillingProfile,
    counted: Sequence[TimeEntry],
    month: BillingMonth,
    rules: BillingRules,
    out: _Out,
) -> None:
    """99470 / 99457 / 99458 from the month's RPM minutes."""
    rpm = [e for e in counted if e.program == Program.RPM]
    m = sum(e.minutes for e in rpm)
    interactive = any(e.interactive for e in rpm)
    head = f"{m} RPM minutes"
    if Program.RPM not in profile.programs:
        if m:
            out.skip(
                "99457", f"{head} but patient not enrolled in RPM: no treatment-management code"
            )
        return
    if m < rules.rpm_first_10:
        out.skip("99457", f"{head}: under {rules.rpm_first_10}, no treatment-management code")
        return
    if not interactive:
        out.skip("99457", f"{head}, no interactive communication: no treatment-management code")
        return
    if m < rules.rpm_first_20:
        if rules.has_99470(month.last_day):
            out.bill("99470", 1, f"{head}, interactive: 99470")
            out.skip("99457", f"{head}, interactive: 99470")
        else:
            out.skip(
                "99470",
                f"{head}, interactive: 99470 does not exist for dates of service before "
                f"{rules.code_99470_from.isoformat()}",
            )
            out.skip("99457", f"{head}: 99457 needs {rules.rpm_first_20}")
        return
    out.bill("99457", 1, f"{head}, interactive: 99457")
    if rules.has_99470(month.last_day):
        out.skip("99470", f"{head}: 99457 billed, 99470 is never billed with 99457")
    extra = (m - rules.rpm_first_20) // rules.rpm_add_on
    if extra:
        out.bill(
            "99458", extra,
            f"{head}: {extra} full {rules.rpm_add_on} min beyond the first "
            f"{rules.rpm_first_20}: 99458 x {_units(extra)}",
        )
    else:
        out.skip(
            "99458", f"{head}: 99458 needs {rules.rpm_first_20 + rules.rpm_add_on}"
        )


def _ccm(
    profile: BillingProfile,
    counted: Sequence[TimeEntry],
    month: BillingMonth,
    rules: BillingRules,
    out: _Out,
) -> bool:
    """CCM codes; returns True when a CCM code was billed."""
    staff = _minutes(counted, Program.CCM, Performer.CLINICAL_STAFF)
    phys = _minutes(counted, Program.CCM, Performer.PHYSICIAN)
    if Program.CCM not in profile.programs:
        if staff + phys:
            out.skip("99490", f"{staff + phys} CCM minutes but patient not enrolled in CCM")
        return False
    n_cond = len(profile.conditions)
    if n_cond < rules.ccm_min_conditions:
        out.skip(
            "99490",
            f"{n_cond} chronic condition{'s' if n_cond != 1 else ''} on file: CCM needs "
            f"at least {rules.ccm_min_conditions} ({staff + phys} CCM minutes not billed)",
        )
        return False
    complex_month = month in profile.complex_ccm_months
    if complex_month and staff >= rules.ccm_complex_first:
        out.bill(
            "99487", 1,
            f"{staff} CCM clinical-staff minutes, complex care plan established or revised "
            f"in {month}: 99487",
        )
        extra = (staff - rules.ccm_complex_first) // rules.ccm_complex_add_on
        if extra:
            out.bill("99489", extra, f"{staff} CCM clinical-staff minutes: 99489 x {_units(extra)}")
        else:
            out.skip(
                "99489",
                f"{staff} CCM clinical-staff minutes: 99489 needs "
                f"{rules.ccm_complex_first + rules.ccm_complex_add_on}",
            )
        out.skip("99490", "99487 billed: complex and non-complex CCM are not billed in one month")
        if phys:
            out.skip(
                "99491",
                f"{phys} physician CCM minutes: 99487 billed, one CCM family per month "
                "(conservative); physician minutes are not added to staff minutes",
            )
        return True
    if complex_month:
        out.skip(
            "99487",
            f"{staff} CCM clinical-staff minutes, complex care plan in {month}: "
            f"99487 needs {rules.ccm_complex_first}",
        )
    elif staff >= rules.ccm_complex_first:
        out.skip(
            "99487",
            f"{staff} CCM clinical-staff minutes but no complex care plan established or "
            f"revised in {month}: non-complex CCM",
        )
    if phys >= rules.ccm_physician_first:
        out.bill("99491", 1, f"{phys} physician CCM minutes: 99491")
        extra = (phys - rules.ccm_physician_first) // rules.ccm_physician_add_on
        if extra:
            out.bill("99437", extra, f"{phys} physician CCM minutes: 99437 x {_units(extra)}")
        if staff >= rules.ccm_staff_first:
            out.skip(
                "99490",
                f"{staff} CCM clinical-staff minutes: 99491 billed, and 99490 and 99491 are "
                "not billed in one month (conservative); staff minutes are not added to "
                "physician minutes",
            )
        return True
    if phys:
        out.skip(
            "99491",
            f"{phys} physician CCM minutes: 99491 needs {rules.ccm_physician_first}; "
            "physician minutes are not added to clinical-staff minutes",
        )
    if staff >= rules.ccm_staff_first:
        out.bill("99490", 1, f"{staff} CCM clinical-staff minutes: 99490")
        full = (staff - rules.ccm_staff_first) // rules.ccm_staff_add_on
        extra = min(full, rules.ccm_staff_add_on_max_units)
        if extra:
            out.bill("99439", extra, f"{staff} CCM clinical-staff minutes: 99439 x {_units(extra)}")
        else:
            out.skip(
                "99439",
                f"{staff} CCM clinical-staff minutes: 99439 needs "
                f"{rules.ccm_staff_first + rules.ccm_staff_add_on}",
            )
        if full > extra:
            out.skip(
                "99439",
                f"{staff} CCM clinical-staff minutes: {full} further full "
                f"{rules.ccm_staff_add_on} min, 99439 capped at "
                f"{_units(rules.ccm_staff_add_on_max_units)}",
            )
        return True
    out.skip(
        "99490", f"{staff} CCM clinical-staff minutes: 99490 needs {rules.ccm_staff_first}"
    )
    return False


def _pcm(
    profile: BillingProfile,
    counted: Sequence[TimeEntry],
    month: BillingMonth,
    rules: BillingRules,
    out: _Out,
    *,
    ccm_billed: bool,
) -> None:
    """PCM codes; never in a month in which CCM is billed."""
    staff = _minutes(counted, Program.PCM, Performer.CLINICAL_STAFF)
    phys = _minutes(counted, Program.PCM, Performer.PHYSICIAN)
    if Program.PCM not in profile.programs:
        if staff + phys:
            out.skip("99426", f"{staff + phys} PCM minutes but patient not enrolled in PCM")
        return
    if len(profile.conditions) < rules.pcm_min_conditions:
        out.skip("99426", "no chronic condition on file: PCM needs one")
        return
    first, add_on = rules.pcm_first, rules.pcm_add_on
    if phys >= first:
        family, who, minutes = ("99424", "99425"), "physician", phys
    elif staff >= first:
        family, who, minutes = ("99426", "99427"), "clinical-staff", staff
    else:
        out.skip("99426", f"{staff} PCM clinical-staff minutes: 99426 needs {first}")
        if phys:
            out.skip("99424", f"{phys} physician PCM minutes: 99424 needs {first}")
        return
    if ccm_billed:
        reason = (
            f"{minutes} {who} PCM minutes but CCM billed in {month}: CCM and PCM are not "
            "billed in one month; CCM kept (conservative: the CCM care plan covers the PCM "
            "condition), PCM minutes not moved to CCM"
        )
        out.skip(family[0], reason)
        out.warnings.append(
            f"CCM and PCM both reached a threshold in {month}: CCM billed, PCM not; review"
        )
        return
    out.bill(family[0], 1, f"{minutes} {who} PCM minutes: {family[0]}")
    extra = (minutes - first) // add_on
    if extra:
        out.bill(family[1], extra, f"{minutes} {who} PCM minutes: {family[1]} x {_units(extra)}")
    if family[0] == "99424" and staff >= first:
        out.skip(
            "99426",
            f"{staff} PCM clinical-staff minutes: 99424 billed, one PCM family per month "
            "(conservative); staff minutes are not added to physician minutes",
        )
    elif family[0] == "99426" and phys:
        out.skip("99424", f"{phys} physician PCM minutes: 99424 needs {first}")

