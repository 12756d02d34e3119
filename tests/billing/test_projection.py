"""At-risk projection of the current period and this month's time."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from gateway.billing import Performer, PeriodStatus, project_at_risk
from gateway.model import Program
from tests.billing.factories import entry, profile, run_of_days

START = date(2026, 3, 1)  # period 1 = 03-01..03-30
TODAY = date(2026, 3, 20)


@pytest.mark.parametrize(
    ("days", "status", "so_far", "left", "reachable", "recent"),
    [
        # 4 days, 11 days left (today open): at most 15.
        (run_of_days(date(2026, 3, 1), 4), PeriodStatus.CANNOT_REACH_16, 4, 11, 15, 0),
        # 5 recent days: 5 + 5/7*11 = 12.9 < 16.
        (run_of_days(date(2026, 3, 14), 5), PeriodStatus.AT_RISK, 5, 11, 16, 5),
        # 12 days, reading every day lately: 12 + 7/7*10 >= 16.
        (run_of_days(date(2026, 3, 9), 12), PeriodStatus.ON_TRACK, 12, 10, 22, 7),
        # Already 16.
        (run_of_days(date(2026, 3, 1), 16), PeriodStatus.ON_TRACK, 16, 11, 27, 3),
    ],
)
def test_period_status(days, status, so_far, left, reachable, recent):
    p = project_at_risk(profile(start=START), days, [], TODAY)
    assert (p.status, p.days_so_far, p.days_left, p.max_reachable, p.recent_days) == (
        status, so_far, left, reachable, recent,
    )
    assert p.period is not None
    assert (p.period.start, p.period.end) == (START, date(2026, 3, 30))


def test_future_days_are_ignored():
    p = project_at_risk(profile(start=START), run_of_days(date(2026, 3, 21), 5), [], TODAY)
    assert p.days_so_far == 0


def test_second_period():
    p = project_at_risk(profile(start=START), [], [], date(2026, 4, 2))
    assert p.period is not None
    assert (p.period.index, p.period.start) == (2, date(2026, 3, 31))


def test_not_started():
    p = project_at_risk(profile(), [], [], TODAY)
    assert p.status is PeriodStatus.NOT_STARTED
    assert p.period is None
    assert p.to_dict()["status"] == "not_started"


@pytest.mark.parametrize(
    ("program", "who", "minutes", "threshold", "code", "short"),
    [
        ("RPM", Performer.CLINICAL_STAFF, 0, 10, "99470", 10),
        ("RPM", Performer.CLINICAL_STAFF, 15, 20, "99457", 5),
        ("RPM", Performer.CLINICAL_STAFF, 25, 40, "99458", 15),
        ("CCM", Performer.CLINICAL_STAFF, 5, 20, "99490", 15),
        ("CCM", Performer.CLINICAL_STAFF, 45, 60, "99439", 15),
        ("CCM", Performer.CLINICAL_STAFF, 60, None, None, 0),  # 99439 capped
        ("CCM", Performer.PHYSICIAN, 10, 30, "99491", 20),
        ("PCM", Performer.CLINICAL_STAFF, 31, 60, "99427", 29),
    ],
)
def test_time_progress(program, who, minutes, threshold, code, short):
    at = datetime(2026, 3, 5, 15, tzinfo=UTC)
    entries = [entry(program, minutes, who=who, at=at)] if minutes else []
    p = project_at_risk(profile(start=START), [], entries, TODAY)
    rows = {(t.program, t.performed_by): t for t in p.time}
    key = (Program(program), None if program == "RPM" else who)
    t = rows[key]
    assert (t.minutes, t.next_threshold, t.next_code, t.minutes_short) == (
        minutes, threshold, code, short,
    )


def test_time_of_other_months_not_counted_and_to_dict():
    entries = [entry("RPM", 30, at=datetime(2026, 2, 20, 15, tzinfo=UTC))]
    p = project_at_risk(profile(programs="RPM", start=START), [], entries, TODAY)
    assert [t.minutes for t in p.time] == [0]
    d = p.to_dict()
    assert d["time"][0]["program"] == "RPM"
    assert d["period"]["start"] == "2026-03-01"
