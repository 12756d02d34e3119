"""Device-supply codes (99454 / 99445) and set-up (99453) by period."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from gateway.billing import (
    BillingMonth,
    BillingRules,
    evaluate_month,
    local_device_days,
    rpm_periods,
)
from gateway.model import ReadingSource
from tests.billing.factories import HONOLULU, MARCH, NY, profile, run_of_days, skipped

START = date(2026, 3, 2)  # period 1 = 2026-03-02..2026-03-31, ends in March


@pytest.mark.parametrize(
    ("n_days", "codes", "reason_code", "reason"),
    [
        (0, {}, "99454", "0 device days in period 2026-03-02..2026-03-31: no device code"),
        (1, {}, "99454", "1 device day in period 2026-03-02..2026-03-31: no device code"),
        (2, {"99445": 1, "99453": 1}, "99454",
         "2 device days in period 2026-03-02..2026-03-31: 99445 not 99454"),
        (15, {"99445": 1, "99453": 1}, "99454",
         "15 device days in period 2026-03-02..2026-03-31: 99445 not 99454"),
        (16, {"99454": 1, "99453": 1}, None, None),
        (30, {"99454": 1, "99453": 1}, None, None),
    ],
)
def test_device_day_boundaries(n_days, codes, reason_code, reason):
    days = run_of_days(START, n_days)
    report = evaluate_month(profile(start=START), days, [], MARCH)
    assert report.code_units() == codes
    assert [p.device_days for p in report.periods] == [n_days]
    if reason_code:
        assert skipped(report)[reason_code] == reason
    assert not {"99454", "99445"} <= set(report.code_units())


@pytest.mark.parametrize(
    ("n_days", "codes", "skip"),
    [
        # Before 2026: 99453 needs 16 days and 99445 does not exist.
        (15, {}, {"99453", "99445", "99454"}),
        (16, {"99454": 1, "99453": 1}, set()),
    ],
)
def test_99453_before_2026(n_days, codes, skip):
    start = date(2025, 11, 1)  # period 2025-11-01..2025-11-30
    report = evaluate_month(
        profile(start=start, consent=date(2025, 10, 1)),
        run_of_days(start, n_days),
        [],
        BillingMonth(2025, 11),
    )
    assert report.code_units() == codes
    assert skip <= set(skipped(report))
    if "99445" in skip:
        assert "does not exist for dates of service before 2026-01-01" in skipped(report)["99445"]
        assert "99453 needs 16" in skipped(report)["99453"]


@pytest.mark.parametrize(("n_days", "billed"), [(1, False), (2, True)])
def test_99453_from_2026_needs_two_days(n_days, billed):
    report = evaluate_month(profile(start=START), run_of_days(START, n_days), [], MARCH)
    assert ("99453" in report.code_units()) is billed


def test_period_straddling_new_year_uses_its_last_day_as_date_of_service():
    start = date(2025, 12, 10)  # period 2025-12-10..2026-01-08
    report = evaluate_month(
        profile(start=start, consent=date(2025, 12, 1)),
        run_of_days(start, 5),
        [],
        BillingMonth(2026, 1),
    )
    assert report.code_units() == {"99445": 1, "99453": 1}


def test_99453_once_per_episode():
    start = date(2026, 1, 1)
    days = run_of_days(start, 90)  # every day of periods 1, 2 and 3
    jan = evaluate_month(profile(start=start), days, [], BillingMonth(2026, 1))
    # February 2026 has no period end (01-30, then 03-01): nothing there.
    feb = evaluate_month(profile(start=start), days, [], BillingMonth(2026, 2))
    mar = evaluate_month(profile(start=start), days, [], MARCH)
    assert jan.code_units() == {"99454": 1, "99453": 1}
    assert feb.code_units() == {}
    assert "no RPM period ends in 2026-02" in skipped(feb)["99454"]
    assert [c.code for c in mar.codes] == ["99454", "99454"]
    assert skipped(mar)["99453"] == (
        "already billed for period 2026-01-01..2026-01-30 (once per episode)"
    )


def test_99453_goes_to_first_period_that_reaches_the_minimum():
    start = date(2026, 1, 1)
    days = [start, *run_of_days(date(2026, 2, 1), 3)]  # period 1: 1 day, period 2: 3 days
    jan = evaluate_month(profile(start=start), days, [], BillingMonth(2026, 1))
    mar = evaluate_month(profile(start=start), days, [], MARCH)  # period 2 ends 03-01
    assert "99453" not in jan.code_units()
    assert "99453 needs 2" in skipped(jan)["99453"]
    assert mar.code_units() == {"99445": 1, "99453": 1}


def test_period_crossing_month_end_is_billed_in_the_month_it_ends():
    start = date(2026, 3, 15)  # period 1 = 2026-03-15..2026-04-13
    days = run_of_days(start, 20)  # 03-15 .. 04-03
    march = evaluate_month(profile(start=start), days, [], MARCH)
    april = evaluate_month(profile(start=start), days, [], BillingMonth(2026, 4))
    assert march.code_units() == {}
    assert march.periods == ()
    assert "no RPM period ends in 2026-03" in skipped(march)["99454"]
    assert march.evidence["open_period"]["start"] == "2026-03-15"
    assert april.code_units() == {"99454": 1, "99453": 1}
    assert [(p.start, p.end, p.device_days) for p in april.periods] == [
        (date(2026, 3, 15), date(2026, 4, 13), 20)
    ]


def test_two_periods_can_end_in_one_month_each_gets_its_own_code():
    start = date(2026, 1, 1)  # periods end 01-30, 03-01, 03-31
    days = run_of_days(start, 90)
    report = evaluate_month(profile(start=start), days, [], MARCH)
    assert [(p.start.isoformat(), p.end.isoformat()) for p in report.periods] == [
        ("2026-01-31", "2026-03-01"),
        ("2026-03-02", "2026-03-31"),
    ]
    assert [(c.code, c.period.label) for c in report.codes if c.code == "99454"] == [
        ("99454", "2026-01-31..2026-03-01"),
        ("99454", "2026-03-02..2026-03-31"),
    ]


def test_periods_are_never_shifted_to_reach_sixteen():
    # 10 days at the end of period 1 and 10 at the start of period 2: neither reaches 16.
    start = date(2026, 2, 1)  # periods 02-01..03-02 and 03-03..04-01
    days = run_of_days(date(2026, 2, 21), 20)
    periods = rpm_periods(start, date(2026, 4, 1), days)
    assert [p.device_days for p in periods] == [10, 10]


def test_default_monitoring_start_is_first_device_day_on_or_after_consent():
    days = [date(2026, 2, 20), date(2026, 3, 2), date(2026, 3, 3)]
    p = profile(consent=date(2026, 3, 1))
    report = evaluate_month(p, days, [], BillingMonth(2026, 3))
    assert report.evidence["monitoring_start"] == "2026-03-02"
    assert report.evidence["device_days_before_consent"] == ["2026-02-20"]


def test_consent_after_date_of_service():
    p = profile(start=START, consent=date(2026, 4, 5))
    report = evaluate_month(p, run_of_days(START, 20), [], MARCH)
    assert report.code_units() == {}
    assert "consent 2026-04-05 after date of service 2026-03-31" in skipped(report)["99454"]


def test_days_before_consent_do_not_count_inside_a_period():
    # Explicit start before consent: only days from consent on count.
    p = profile(start=START, consent=date(2026, 3, 17))
    report = evaluate_month(p, run_of_days(START, 30), [], MARCH)
    assert report.periods[0].device_days == 15  # 03-17..03-31
    assert report.code_units() == {"99445": 1, "99453": 1}
    assert any("before consent" in w for w in report.warnings)


def test_no_consent_no_codes():
    report = evaluate_month(profile(consent=None), run_of_days(START, 20), [], MARCH)
    assert report.code_units() == {}
    assert "no consent on file" in skipped(report)["99454"]


def test_not_enrolled_in_rpm():
    report = evaluate_month(profile(programs="CCM", start=START), run_of_days(START, 20), [], MARCH)
    assert report.code_units() == {}
    assert "not enrolled in RPM" in skipped(report)["99454"]


def test_one_device_code_per_period_whatever_the_number_of_devices():
    readings = []
    for i in range(16):
        day = datetime(2026, 3, 2, 14, tzinfo=UTC) + timedelta(days=i)
        for device_minute in (0, 5, 10):  # scale, cuff, oximeter on the same day
            readings.append((day + timedelta(minutes=device_minute), ReadingSource.DEVICE, True))
    days = local_device_days(readings, NY)
    assert len(days) == 16
    report = evaluate_month(profile(start=START), days, [], MARCH)
    assert report.code_units() == {"99454": 1, "99453": 1}


def test_manual_and_valueless_readings_are_not_device_days():
    at = datetime(2026, 3, 2, 14, tzinfo=UTC)
    readings = [
        (at, ReadingSource.MANUAL, True),
        (at + timedelta(days=1), ReadingSource.DEVICE, False),
        (at + timedelta(days=2), ReadingSource.DEVICE, True),
    ]
    assert local_device_days(readings, NY) == (date(2026, 3, 4),)


def test_naive_instant_refused():
    with pytest.raises(ValueError, match="naive"):
        local_device_days([(datetime(2026, 3, 2, 14), ReadingSource.DEVICE, True)], NY)


@pytest.mark.parametrize(
    ("instant", "tz", "day"),
    [
        # DST ends 2026-11-01 02:00 EDT: 00:30 EDT is 04:30Z, still Nov 1 locally.
        ("2026-11-01T04:30:00+00:00", NY, date(2026, 11, 1)),
        ("2026-11-01T03:30:00+00:00", NY, date(2026, 10, 31)),
        # DST starts 2026-03-08 02:00 EST: 00:30 EST is 05:30Z.
        ("2026-03-08T05:30:00+00:00", NY, date(2026, 3, 8)),
        ("2026-03-08T04:30:00+00:00", NY, date(2026, 3, 7)),
        # Honolulu (UTC-10, no DST): evening there is the next day in UTC and New York.
        ("2026-04-01T06:00:00+00:00", HONOLULU, date(2026, 3, 31)),
        ("2026-04-01T06:00:00+00:00", NY, date(2026, 4, 1)),
    ],
)
def test_local_day_across_dst_and_far_zones(instant, tz, day):
    readings = [(datetime.fromisoformat(instant), ReadingSource.DEVICE, True)]
    assert local_device_days(readings, tz) == (day,)


def test_honolulu_patient_last_evening_counts_in_the_period_ending_that_day():
    start = date(2026, 3, 2)
    readings = [
        (datetime(2026, 3, 2, 20, tzinfo=UTC) + timedelta(days=i), ReadingSource.DEVICE, True)
        for i in range(15)
    ]
    # 2026-03-31 20:00 HST = 2026-04-01 06:00Z: day 16, inside period 1 for the patient.
    readings.append((datetime(2026, 4, 1, 6, tzinfo=UTC), ReadingSource.DEVICE, True))
    p = profile(start=start, tz=HONOLULU)
    days = local_device_days(readings, HONOLULU)
    report = evaluate_month(p, days, [], MARCH, practice_tz=NY)
    assert report.periods[0].device_days == 16
    assert report.code_units() == {"99454": 1, "99453": 1}


def test_rules_schedule():
    rules = BillingRules()
    assert rules.setup_min_days_on(date(2025, 12, 31)) == 16
    assert rules.setup_min_days_on(date(2026, 1, 1)) == 2
    with pytest.raises(ValueError):
        BillingRules(setup_min_days=((date(2026, 1, 1), 2), (date(2025, 1, 1), 16)))
    custom = BillingRules(setup_min_days=((date.min, 16), (date(2027, 1, 1), 2)))
    report = evaluate_month(profile(start=START), run_of_days(START, 5), [], MARCH, rules=custom)
    assert report.code_units() == {"99445": 1}


def test_open_period_shows_days_up_to_month_end_only():
    start = date(2026, 3, 15)
    report = evaluate_month(profile(start=start), run_of_days(start, 25), [], MARCH)
    assert report.evidence["open_period"]["device_days"] == 17  # 03-15..03-31
    assert "(17 device days by 2026-03-31) ends after 2026-03" in skipped(report)["99454"]
