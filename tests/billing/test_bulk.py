"""The vectorised month-end path bills exactly what the reference bills, patient by
patient, on random panels (programs, conditions, consent, monitoring start, device
days before/inside/after the month, time entries near month edges in several zones,
2025 and 2026 rules)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.billing import BillingMonth, BillingProfile, Performer, TimeEntry, evaluate_month
from gateway.billing.bulk import evaluate_panel, panel_inputs
from gateway.model import Program

ZONES = ["America/New_York", "Pacific/Honolulu", "Asia/Tokyo", "America/St_Johns", "UTC"]
MONTHS = [BillingMonth(2025, 12), BillingMonth(2026, 1), BillingMonth(2026, 3),
          BillingMonth(2026, 11)]
FIRST, LAST = date(2025, 8, 1), date(2027, 1, 31)

dates = st.dates(min_value=FIRST, max_value=LAST)
minutes = st.sampled_from([1, 5, 9, 10, 11, 19, 20, 21, 29, 30, 31, 39, 40, 45, 59, 60, 61, 89,
                           90, 120])


@st.composite
def patient(draw: st.DrawFn, pid: str, month: BillingMonth) -> tuple:
    programs = draw(st.sets(st.sampled_from(list(Program)), max_size=3))
    consent = draw(st.none() | dates)
    prof = BillingProfile(
        patient_id=pid, timezone=draw(st.sampled_from(ZONES)), programs=frozenset(programs),
        conditions=frozenset(draw(st.sets(st.sampled_from(["CHF", "COPD", "HTN", "DM"])))),
        consent_date=consent, monitoring_start=draw(st.none() | dates),
        complex_ccm_months=frozenset([month]) if draw(st.booleans()) else frozenset())
    centre = month.first_day
    near = st.dates(min_value=centre - timedelta(days=70), max_value=centre + timedelta(days=60))
    days = draw(st.lists(near | dates, max_size=45))
    when = st.datetimes(min_value=datetime(2025, 7, 1), max_value=datetime(2027, 2, 1),
                        timezones=st.just(UTC))
    edge = st.builds(lambda d, h: datetime.combine(d, datetime.min.time(), UTC)
                     + timedelta(hours=h),
                     st.sampled_from([month.first_day, month.last_day,
                                      month.last_day + timedelta(days=1)]),
                     st.integers(min_value=-14, max_value=14))
    entries = [TimeEntry(pid, draw(st.sampled_from(list(Program))), draw(when | edge),
                         draw(minutes), draw(st.booleans()),
                         draw(st.sampled_from(list(Performer))), f"{pid}-{k}")
               for k in range(draw(st.integers(min_value=0, max_value=6)))]
    return prof, days, entries


@st.composite
def panels(draw: st.DrawFn) -> tuple:
    month = draw(st.sampled_from(MONTHS))
    n = draw(st.integers(min_value=1, max_value=8))
    return month, draw(st.sampled_from(ZONES)), [draw(patient(f"pt{i}", month))
                                                 for i in range(n)]


@settings(max_examples=300, deadline=None)
@given(panels())
def test_bulk_bills_what_the_reference_bills(panel: tuple) -> None:
    month, practice_tz, patients = panel
    profiles = [p for p, _, _ in patients]
    bulk = evaluate_panel(panel_inputs(profiles, {p.patient_id: d for p, d, _ in patients},
                                       {p.patient_id: e for p, _, e in patients}, month,
                                       practice_tz=practice_tz), month)
    for i, (prof, days, entries) in enumerate(patients):
        ref = evaluate_month(prof, days, entries, month, practice_tz=practice_tz)
        assert bulk.code_units(i) == ref.code_units(), prof
        mine = [(s, e, n) for pi, s, e, n in zip(bulk.period_patient.tolist(),
                                                 bulk.period_start.tolist(),
                                                 bulk.period_end.tolist(),
                                                 bulk.period_days.tolist(), strict=True)
                if pi == i]
        assert sorted(mine) == sorted((p.start.toordinal(), p.end.toordinal(), p.device_days)
                                      for p in ref.periods)


def test_totals_and_rows_of_a_small_panel() -> None:
    month = BillingMonth(2026, 3)
    prof = BillingProfile("a", "UTC", frozenset({Program.RPM}), frozenset({"HTN"}),
                          date(2026, 1, 1), date(2026, 3, 2))
    days = [date(2026, 3, 2) + timedelta(days=k) for k in range(20)]
    entry = TimeEntry("a", Program.RPM, datetime(2026, 3, 10, 12, tzinfo=UTC), 45, True,
                      Performer.CLINICAL_STAFF, "t1")
    idle = BillingProfile("b", "UTC", frozenset({Program.RPM}), frozenset(), None)
    bulk = evaluate_panel(panel_inputs([prof, idle], {"a": days}, {"a": [entry]}, month,
                                       practice_tz="UTC"), month)
    assert bulk.by_patient() == {"a": {"99453": 1, "99454": 1, "99457": 1, "99458": 1}, "b": {}}
    assert bulk.totals() == {"99453": 1, "99454": 1, "99457": 1, "99458": 1}
    assert bulk.patients_billing() == 1
