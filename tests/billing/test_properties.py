"""Property tests: invariants that hold whatever the days and minutes."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.billing import (
    BillingMonth,
    Performer,
    TimeEntry,
    evaluate_month,
    rpm_periods,
)
from gateway.model import Program
from tests.billing.factories import profile

FIRST = date(2025, 10, 1)
LAST = date(2026, 6, 30)
MONTHS = [BillingMonth(2025, m) for m in (10, 11, 12)] + [
    BillingMonth(2026, m) for m in range(1, 7)
]
CCM_CODES = {"99490", "99439", "99487", "99489", "99491", "99437"}
PCM_CODES = {"99424", "99425", "99426", "99427"}

dates = st.dates(min_value=FIRST, max_value=LAST)


@given(start=dates, days=st.sets(dates, max_size=200), through=dates)
def test_periods_are_consecutive_30_day_blocks(start, days, through):
    periods = rpm_periods(start, through, days)
    expected_start = start
    for k, p in enumerate(periods, start=1):
        assert p.index == k
        assert p.start == expected_start
        assert (p.end - p.start).days == 29
        assert 0 <= p.device_days <= 30
        assert all(p.start <= d <= p.end for d in p.days)
        expected_start = p.end + timedelta(days=1)
    if periods:
        assert periods[-1].start <= through <= periods[-1].end
        covered = {d for p in periods for d in p.days}
        assert covered == {d for d in days if start <= d <= periods[-1].end}


entries_st = st.lists(
    st.tuples(
        st.sampled_from(list(Program)),
        st.integers(min_value=1, max_value=130),
        st.booleans(),
        st.sampled_from(list(Performer)),
        st.integers(min_value=0, max_value=(LAST - FIRST).days),
        st.integers(min_value=0, max_value=23),
    ),
    max_size=12,
)


@settings(max_examples=150, deadline=None)
@given(
    programs=st.sets(st.sampled_from(["RPM", "CCM", "PCM"]), min_size=1),
    n_conditions=st.integers(min_value=0, max_value=3),
    consent=st.one_of(st.none(), dates),
    start=st.one_of(st.none(), dates),
    complex_months=st.sets(st.sampled_from([str(m) for m in MONTHS]), max_size=3),
    days=st.sets(dates, max_size=120),
    raw_entries=entries_st,
)
def test_monthly_invariants(programs, n_conditions, consent, start, complex_months, days,
                            raw_entries):
    p = profile(
        programs=" ".join(sorted(programs)),
        conditions=tuple(f"C{i}" for i in range(n_conditions)),
        consent=consent,
        start=start,
        complex_months=tuple(sorted(complex_months)),
    )
    entries = [
        TimeEntry(
            patient_id="p1",
            program=program,
            started_at=datetime.combine(FIRST + timedelta(days=d), datetime.min.time(), UTC)
            + timedelta(hours=h),
            minutes=minutes,
            interactive=interactive,
            performed_by=who,
            id=f"e{i}",
        )
        for i, (program, minutes, interactive, who, d, h) in enumerate(raw_entries)
    ]
    setup_count = 0
    for month in MONTHS:
        report = evaluate_month(p, days, entries, month)
        json.dumps(report.to_dict())
        units = report.code_units()
        codes = set(units)
        for period in report.periods:
            assert period.end in month
            assert period.device_days <= 30
            supply = [c for c in report.codes
                      if c.period == period and c.code in {"99454", "99445"}]
            assert len(supply) <= 1  # one device code per period, never 99454 with 99445
            if supply:
                need = 16 if supply[0].code == "99454" else 2
                assert period.device_days >= need
        assert not {"99470", "99457"} <= codes
        assert "99458" not in codes or "99457" in codes
        assert units.get("99439", 0) <= 2
        assert "99439" not in codes or "99490" in codes
        assert "99489" not in codes or "99487" in codes
        assert not ("99487" in codes and codes & {"99490", "99491"})
        assert not (codes & CCM_CODES and codes & PCM_CODES)
        if codes & (CCM_CODES | PCM_CODES | {"99454", "99445", "99457", "99470"}):
            assert p.consent_date is not None
        if codes & CCM_CODES:
            assert n_conditions >= 2 and Program.CCM in p.programs
        if codes & {"99454", "99445", "99453", "99457", "99470"}:
            assert Program.RPM in p.programs
        setup_count += units.get("99453", 0)
    assert setup_count <= 1
