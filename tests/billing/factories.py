"""Small builders shared by the billing tests."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from gateway.billing import BillingMonth, BillingProfile, MonthReport, Performer, TimeEntry
from gateway.model import Program

NY = "America/New_York"
HONOLULU = "Pacific/Honolulu"
MARCH = BillingMonth(2026, 3)


def profile(
    *,
    programs: str = "RPM CCM PCM",
    conditions: tuple[str, ...] = ("HTN", "DM"),
    consent: date | None = date(2026, 1, 1),
    start: date | None = None,
    tz: str = NY,
    complex_months: tuple[str, ...] = (),
    pid: str = "p1",
) -> BillingProfile:
    return BillingProfile(
        patient_id=pid,
        timezone=tz,
        programs=frozenset(Program(p) for p in programs.split()),
        conditions=frozenset(conditions),
        consent_date=consent,
        monitoring_start=start,
        complex_ccm_months=frozenset(BillingMonth.parse(m) for m in complex_months),
    )


def run_of_days(first: date, n: int, step: int = 1) -> list[date]:
    return [first + timedelta(days=i * step) for i in range(n)]


_counter = 0


def entry(
    program: str,
    minutes: int,
    *,
    interactive: bool = False,
    who: Performer = Performer.CLINICAL_STAFF,
    at: datetime | None = None,
    pid: str = "p1",
    id: str | None = None,
) -> TimeEntry:
    global _counter
    _counter += 1
    # Spread entries a day apart by default so they never overlap.
    when = at or datetime(2026, 3, 2, 15, 0, tzinfo=UTC) + timedelta(days=_counter % 25)
    return TimeEntry(
        patient_id=pid,
        program=Program(program),
        started_at=when,
        minutes=minutes,
        interactive=interactive,
        performed_by=who,
        id=id or f"t{_counter}",
    )


def skipped(report: MonthReport) -> dict[str, str]:
    """code -> reason of the not-billable list (last reason wins)."""
    return {n.code: n.reason for n in report.not_billable}
