"""Time-based codes: RPM treatment management, CCM, PCM; month attribution."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from gateway.billing import BillingInputError, BillingMonth, Performer, evaluate_month
from tests.billing.factories import HONOLULU, MARCH, NY, entry, profile, skipped

PHYS = Performer.PHYSICIAN


def rpm_report(minutes: int, interactive: bool, month: BillingMonth = MARCH):
    at = datetime(month.year, month.month, 10, 15, tzinfo=UTC)
    consent = date(2025, 1, 1)
    return evaluate_month(
        profile(programs="RPM", consent=consent),
        [],
        [entry("RPM", minutes, interactive=interactive, at=at)],
        month,
    )


@pytest.mark.parametrize(
    ("minutes", "interactive", "codes"),
    [
        (9, True, {}),
        (10, True, {"99470": 1}),
        (19, True, {"99470": 1}),
        (20, True, {"99457": 1}),
        (39, True, {"99457": 1}),
        (40, True, {"99457": 1, "99458": 1}),
        (59, True, {"99457": 1, "99458": 1}),
        (60, True, {"99457": 1, "99458": 2}),
        (10, False, {}),
        (25, False, {}),
        (60, False, {}),
    ],
)
def test_rpm_minutes_boundaries(minutes, interactive, codes):
    report = rpm_report(minutes, interactive)
    time_codes = {k: v for k, v in report.code_units().items() if k not in {"99454", "99445"}}
    assert time_codes == codes
    assert not {"99470", "99457"} <= set(time_codes)


@pytest.mark.parametrize(
    ("minutes", "interactive", "code", "reason"),
    [
        (18, True, "99457", "18 RPM minutes, interactive: 99470"),
        (25, False, "99457",
         "25 RPM minutes, no interactive communication: no treatment-management code"),
        (9, True, "99457", "9 RPM minutes: under 10, no treatment-management code"),
        (39, True, "99458", "39 RPM minutes: 99458 needs 40"),
        (25, True, "99470", "25 RPM minutes: 99457 billed, 99470 is never billed with 99457"),
    ],
)
def test_rpm_reasons(minutes, interactive, code, reason):
    assert skipped(rpm_report(minutes, interactive))[code] == reason


def test_99470_does_not_exist_before_2026():
    report = rpm_report(15, True, BillingMonth(2025, 11))
    assert report.code_units() == {}
    assert "does not exist for dates of service before 2026-01-01" in skipped(report)["99470"]
    assert rpm_report(25, True, BillingMonth(2025, 11)).code_units() == {"99457": 1}


def test_one_interactive_entry_makes_the_month_interactive():
    entries = [entry("RPM", 15), entry("RPM", 5, interactive=True)]
    report = evaluate_month(profile(programs="RPM"), [], entries, MARCH)
    assert report.code_units() == {"99457": 1}


def test_interactive_ccm_call_does_not_make_rpm_interactive():
    entries = [entry("RPM", 25), entry("CCM", 5, interactive=True)]
    report = evaluate_month(profile(programs="RPM CCM"), [], entries, MARCH)
    assert "99457" not in report.code_units()


def ccm(minutes_staff=0, minutes_phys=0, *, complex_month=False, conditions=("HTN", "DM")):
    entries = []
    if minutes_staff:
        entries.append(entry("CCM", minutes_staff))
    if minutes_phys:
        entries.append(entry("CCM", minutes_phys, who=PHYS))
    return evaluate_month(
        profile(
            programs="CCM",
            conditions=conditions,
            complex_months=("2026-03",) if complex_month else (),
        ),
        [],
        entries,
        MARCH,
    )


@pytest.mark.parametrize(
    ("staff", "codes"),
    [
        (19, {}),
        (20, {"99490": 1}),
        (39, {"99490": 1}),
        (40, {"99490": 1, "99439": 1}),
        (59, {"99490": 1, "99439": 1}),
        (60, {"99490": 1, "99439": 2}),
        (79, {"99490": 1, "99439": 2}),
        (100, {"99490": 1, "99439": 2}),  # capped at 2 units
    ],
)
def test_ccm_staff_boundaries_and_cap(staff, codes):
    assert ccm(staff).code_units() == codes


def test_ccm_cap_is_explained():
    assert "capped at 2 units" in skipped(ccm(100))["99439"]


@pytest.mark.parametrize(
    ("staff", "codes"),
    [
        (59, {"99490": 1, "99439": 1}),  # complex not reached: non-complex instead
        (60, {"99487": 1}),
        (89, {"99487": 1}),
        (90, {"99487": 1, "99489": 1}),
        (120, {"99487": 1, "99489": 2}),
    ],
)
def test_complex_ccm_boundaries(staff, codes):
    report = ccm(staff, complex_month=True)
    assert report.code_units() == codes
    assert not {"99487", "99490"} <= set(report.code_units())


def test_complex_needs_the_care_plan_flag_this_month():
    report = ccm(60, complex_month=False)
    assert report.code_units() == {"99490": 1, "99439": 2}
    assert "no complex care plan" in skipped(report)["99487"]
    flagged_other_month = evaluate_month(
        profile(programs="CCM", complex_months=("2026-02",)), [], [entry("CCM", 60)], MARCH
    )
    assert "99487" not in flagged_other_month.code_units()


def test_complex_and_non_complex_never_together():
    report = ccm(95, complex_month=True)
    assert report.code_units() == {"99487": 1, "99489": 1}
    assert "not billed in one month" in skipped(report)["99490"]


@pytest.mark.parametrize(
    ("phys", "codes"),
    [
        (29, {}),
        (30, {"99491": 1}),
        (59, {"99491": 1}),
        (60, {"99491": 1, "99437": 1}),
        (90, {"99491": 1, "99437": 2}),
    ],
)
def test_ccm_physician_boundaries(phys, codes):
    assert ccm(0, phys).code_units() == codes


def test_physician_and_staff_minutes_are_not_added_together():
    # 15 + 15: neither 99490 (staff 20) nor 99491 (physician 30).
    assert ccm(15, 15).code_units() == {}
    report = ccm(25, 30)
    assert report.code_units() == {"99491": 1}
    assert "99490 and 99491 are not billed in one month" in skipped(report)["99490"]


def test_ccm_needs_two_conditions():
    report = ccm(40, conditions=("HTN",))
    assert report.code_units() == {}
    assert "CCM needs at least 2" in skipped(report)["99490"]


def pcm(staff=0, phys=0, *, programs="PCM", ccm_minutes=0, conditions=("CHF",)):
    entries = []
    if staff:
        entries.append(entry("PCM", staff))
    if phys:
        entries.append(entry("PCM", phys, who=PHYS))
    if ccm_minutes:
        entries.append(entry("CCM", ccm_minutes))
    return evaluate_month(profile(programs=programs, conditions=conditions), [], entries, MARCH)


@pytest.mark.parametrize(
    ("staff", "phys", "codes"),
    [
        (29, 0, {}),
        (30, 0, {"99426": 1}),
        (59, 0, {"99426": 1}),
        (60, 0, {"99426": 1, "99427": 1}),
        (0, 29, {}),
        (0, 30, {"99424": 1}),
        (0, 60, {"99424": 1, "99425": 1}),
        (40, 30, {"99424": 1}),
    ],
)
def test_pcm_boundaries(staff, phys, codes):
    assert pcm(staff, phys).code_units() == codes


def test_pcm_needs_a_condition():
    assert pcm(40, conditions=()).code_units() == {}


def test_ccm_and_pcm_not_in_one_month_ccm_kept():
    report = pcm(30, programs="CCM PCM", ccm_minutes=20, conditions=("CHF", "DM"))
    assert report.code_units() == {"99490": 1}
    assert "CCM and PCM are not billed in one month" in skipped(report)["99426"]
    assert any("CCM and PCM" in w for w in report.warnings)


def test_pcm_billed_when_ccm_does_not_reach_its_threshold():
    report = pcm(30, programs="CCM PCM", ccm_minutes=10, conditions=("CHF", "DM"))
    assert report.code_units() == {"99426": 1}


def test_minutes_of_one_program_never_count_toward_another():
    # 15 RPM + 15 CCM: neither reaches 20.
    entries = [entry("RPM", 15, interactive=True), entry("CCM", 15)]
    report = evaluate_month(profile(programs="RPM CCM"), [], entries, MARCH)
    assert report.code_units() == {"99470": 1}


def test_overlapping_entries_across_programs_warn():
    at = datetime(2026, 3, 5, 15, tzinfo=UTC)
    entries = [
        entry("RPM", 20, interactive=True, at=at, id="a"),
        entry("CCM", 20, at=at.replace(minute=10), id="b"),
        entry("CCM", 5, at=at.replace(hour=16), id="c"),  # after both: no overlap
    ]
    report = evaluate_month(profile(programs="RPM CCM"), [], entries, MARCH)
    assert report.warnings == (
        "time entries a and b overlap by 10 min across programs RPM and CCM: a minute "
        "counts toward one program only; review",
    )


def test_adjacent_entries_do_not_warn():
    at = datetime(2026, 3, 5, 15, tzinfo=UTC)
    entries = [entry("RPM", 20, at=at), entry("CCM", 20, at=at.replace(minute=20))]
    assert evaluate_month(profile(), [], entries, MARCH).warnings == ()


def test_time_before_consent_is_excluded_and_listed():
    entries = [
        entry("RPM", 20, interactive=True, at=datetime(2026, 3, 3, 15, tzinfo=UTC), id="early"),
        entry("RPM", 15, interactive=True, at=datetime(2026, 3, 20, 15, tzinfo=UTC), id="late"),
    ]
    report = evaluate_month(profile(consent=date(2026, 3, 10)), [], entries, MARCH)
    assert report.code_units() == {"99470": 1}
    listed = {e["id"]: e["counted"] for e in report.evidence["time_entries"]}
    assert listed == {"early": False, "late": True}
    assert any("early" in w and "before consent" in w for w in report.warnings)


def test_month_of_time_is_the_practice_month():
    # 2026-04-01 05:00Z is 01:00 April 1 in New York but 19:00 March 31 in Honolulu.
    e = entry("RPM", 25, interactive=True, at=datetime(2026, 4, 1, 5, tzinfo=UTC))
    p = profile(programs="RPM", tz=HONOLULU)
    in_practice_march = evaluate_month(p, [], [e], MARCH, practice_tz=NY)
    in_patient_march = evaluate_month(p, [], [e], MARCH)  # default: patient's zone
    assert "99457" not in in_practice_march.code_units()
    assert in_patient_march.code_units() == {"99457": 1}
    april = evaluate_month(p, [], [e], BillingMonth(2026, 4), practice_tz=NY)
    assert april.code_units() == {"99457": 1}


def test_month_edge_in_practice_zone_after_dst():
    # 23:30 EDT on March 31 is 03:30Z on April 1: still March for a New York practice.
    e = entry("RPM", 20, interactive=True, at=datetime(2026, 4, 1, 3, 30, tzinfo=UTC))
    assert evaluate_month(profile(), [], [e], MARCH, practice_tz=NY).code_units() == {
        "99457": 1
    }


def test_entry_of_another_patient_is_refused():
    with pytest.raises(BillingInputError, match="not 'p1'"):
        evaluate_month(profile(), [], [entry("RPM", 20, pid="p2")], MARCH)


def test_report_shape():
    report = rpm_report(18, True).to_dict()
    assert set(report) == {
        "patient_id", "month", "periods", "codes", "not_billable", "evidence", "warnings"
    }
    assert report["codes"] == [
        {"code": "99470", "units": 1, "reason": "18 RPM minutes, interactive: 99470"}
    ]
