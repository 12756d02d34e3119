"""Physiology models: determinism, plausibility, daily patterns, courses, adherence."""

from __future__ import annotations

import itertools
import statistics
from collections import Counter
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.model import Condition, DeviceKind
from gateway.units import Metric, kg_to_lb
from simulators.physiology import (
    PERFECT,
    Adherence,
    ChfDecompensation,
    CopdExacerbation,
    DiabetesEpisodes,
    HypertensionTreated,
    device_days,
    simulate_panel,
    simulate_patient,
    stable_profile,
)

START = date(2026, 3, 2)
ALL = [Condition.CHF, Condition.COPD, Condition.HTN, Condition.DM]

#: CLINICAL.md plausibility (ingest accepts) per metric.
PLAUSIBLE = {
    Metric.WEIGHT: (20, 350),
    Metric.SYSTOLIC: (50, 300),
    Metric.DIASTOLIC: (20, 200),
    Metric.SPO2: (70, 100),  # below 70 is accepted but flagged; the models never go there
    Metric.PULSE: (25, 250),
    Metric.GLUCOSE: (10, 800),
    Metric.PERFUSION_INDEX: (0, 20),
}


def test_same_seed_same_stream() -> None:
    p = stable_profile("pt-a", ["CHF", "HTN"], seed=4)
    a = simulate_patient(p, start=START, days=30, seed=4)
    b = simulate_patient(p, start=START, days=30, seed=4)
    assert a == b
    assert len(a) > 60


def test_other_seed_other_stream() -> None:
    p = stable_profile("pt-a", ["DM"], seed=4)
    a = simulate_patient(p, start=START, days=10, seed=4)
    b = simulate_patient(p, start=START, days=10, seed=5)
    assert [s.values for s in a] != [s.values for s in b]


def test_patient_stream_independent_of_panel() -> None:
    ps = [stable_profile(f"pt{i}", [ALL[i % 4]], seed=1) for i in range(6)]
    alone = simulate_patient(ps[3], start=START, days=14, seed=1)
    merged = [s for s in simulate_panel(ps, start=START, days=14, seed=1)
              if s.patient_id == "pt3"]
    assert merged == alone


def test_panel_stream_in_time_order() -> None:
    ps = [stable_profile(f"pt{i}", [ALL[i % 4]], seed=2, timezone=tz)
          for i, tz in enumerate(["America/New_York", "America/Los_Angeles", "Europe/Berlin"])]
    times = [s.measured_at for s in simulate_panel(ps, start=START, days=10, seed=2)]
    assert times == sorted(times)
    assert all(t.utcoffset() == timedelta(0) for t in times)


@given(seed=st.integers(0, 2**31), conds=st.sets(st.sampled_from(ALL), min_size=1))
@settings(max_examples=40, deadline=None)
def test_values_plausible_and_quiet(seed: int, conds: set[Condition]) -> None:
    """Stable patients stay inside the plausibility ranges and below alert thresholds."""
    p = stable_profile("pt-h", conds, seed=seed)
    for s in simulate_patient(p, start=START, days=30, seed=seed):
        for metric, value in s.values.items():
            lo, hi = PLAUSIBLE[metric]
            assert lo <= value <= hi, (metric, value)
        v = s.values
        if Metric.SYSTOLIC in v:
            assert v[Metric.SYSTOLIC] > v[Metric.DIASTOLIC]
            assert v[Metric.SYSTOLIC] <= 180 and v[Metric.SYSTOLIC] >= 80  # bp.severe / bp.low
        if Metric.PULSE in v:
            assert 40 <= v[Metric.PULSE] <= 110  # pulse.abnormal
        if Metric.GLUCOSE in v:
            assert 70 <= v[Metric.GLUCOSE] <= 250  # no lows or very highs without a course
        if Metric.SPO2 in v:
            assert v[Metric.SPO2] >= 88


def test_devices_follow_conditions() -> None:
    chf = stable_profile("a", ["CHF"], seed=1)
    assert chf.device_kinds == (DeviceKind.SCALE, DeviceKind.BP_CUFF, DeviceKind.PULSE_OXIMETER)
    dm_htn = stable_profile("b", ["DM", "HTN"], seed=1)
    assert dm_htn.device_kinds == (DeviceKind.BP_CUFF, DeviceKind.GLUCOMETER)
    kinds = {s.kind for s in simulate_patient(dm_htn, start=START, days=5, seed=1)}
    assert kinds == {DeviceKind.BP_CUFF, DeviceKind.GLUCOMETER}


def test_morning_and_evening_patterns() -> None:
    p = stable_profile("htn", ["HTN", "CHF", "DM"], seed=3, adherence=PERFECT)
    samples = simulate_patient(p, start=START, days=60, seed=3)
    tz = ZoneInfo(p.timezone)
    hours = {k: [s.measured_at.astimezone(tz).hour for s in samples if s.kind == k]
             for k in DeviceKind}
    assert all(6 <= h <= 9 for h in hours[DeviceKind.SCALE])  # weight before breakfast
    morning = [s.values[Metric.SYSTOLIC] for s in samples
               if s.kind == DeviceKind.BP_CUFF and s.context == "morning"]
    evening = [s.values[Metric.SYSTOLIC] for s in samples
               if s.kind == DeviceKind.BP_CUFF and s.context == "evening"]
    assert len(morning) == 60 and len(evening) == 60  # HTN: twice a day
    assert statistics.mean(morning) > statistics.mean(evening) + 3  # morning surge
    fasting = [s.values[Metric.GLUCOSE] for s in samples if s.context == "fasting"]
    post = [s.values[Metric.GLUCOSE] for s in samples if s.context == "post_meal"]
    assert post and statistics.mean(post) > statistics.mean(fasting) + 20


def test_day_to_day_weight_noise_is_realistic() -> None:
    p = stable_profile("w", ["CHF"], seed=9, adherence=PERFECT)
    weights = [kg_to_lb(s.values[Metric.WEIGHT])
               for s in simulate_patient(p, start=START, days=90, seed=9)
               if s.kind == DeviceKind.SCALE]
    diffs = [b - a for a, b in itertools.pairwise(weights)]
    assert 0.1 < statistics.pstdev(diffs) < 1.0  # lb, day to day
    assert max(abs(d) for d in diffs) < 2.0  # never a false chf.weight_gain_24h


def test_weights_on_scale_resolution() -> None:
    p = stable_profile("w", ["CHF"], seed=9)
    for s in simulate_patient(p, start=START, days=20, seed=9):
        if Metric.WEIGHT in s.values:
            assert round(s.values[Metric.WEIGHT] / 0.005, 6) % 1 == 0


@pytest.mark.parametrize("seed", range(8))
def test_chf_overnight_gain_is_exact(seed: int) -> None:
    course = ChfDecompensation(start_day=10, overnight_gain_lb=2.4, daily_gain_lb=0.8,
                               gain_days=4)
    p = stable_profile("chf", ["CHF"], seed=seed, courses=[course], adherence=PERFECT)
    w = [kg_to_lb(s.values[Metric.WEIGHT])
         for s in simulate_patient(p, start=START, days=20, seed=seed)
         if s.kind == DeviceKind.SCALE and s.context == "morning"]
    assert w[10] - w[9] == pytest.approx(2.4, abs=0.02)
    assert w[14] - w[9] == pytest.approx(2.4 + 4 * 0.8, abs=0.6)
    assert all(abs(b - a) < 2.0 for a, b in itertools.pairwise(w[10:]))


def test_copd_exacerbation_slides_below_baseline() -> None:
    course = CopdExacerbation(start_day=5, drop=7, ramp_days=3, duration_days=6)
    p = stable_profile("copd", ["COPD"], seed=2, courses=[course], adherence=PERFECT)
    samples = simulate_patient(p, start=START, days=20, seed=2)
    by_day: dict[int, list[float]] = {}
    tz = ZoneInfo(p.timezone)
    for s in samples:
        by_day.setdefault((s.measured_at.astimezone(tz).date() - START).days, []).append(
            s.values[Metric.SPO2])
    base = p.baseline.spo2
    assert min(by_day[2]) >= base - 2
    assert max(by_day[9]) <= base - 5  # at the nadir
    assert min(by_day[19]) >= base - 2  # recovered
    assert any(s.context == "recheck" for s in samples)  # low values are re-measured


def test_hypertension_treated_falls() -> None:
    course = HypertensionTreated(treated_day=14, systolic_excess=24, diastolic_excess=13)
    p = stable_profile("htn", ["HTN"], seed=5, courses=[course], adherence=PERFECT)
    samples = simulate_patient(p, start=START, days=35, seed=5)
    first = [s.values[Metric.SYSTOLIC] for s in samples[:28]]
    last = [s.values[Metric.SYSTOLIC] for s in samples[-14:]]
    assert statistics.mean(first) >= 140
    assert statistics.mean(last) < 135


def test_diabetes_episodes() -> None:
    course = DiabetesEpisodes(hypo_days=(3,), very_low_days=(6,), high_days=(9,))
    p = stable_profile("dm", ["DM"], seed=5, courses=[course], adherence=PERFECT)
    tz = ZoneInfo(p.timezone)
    days: dict[int, list[float]] = {}
    for s in simulate_patient(p, start=START, days=12, seed=5):
        days.setdefault((s.measured_at.astimezone(tz).date() - START).days, []).append(
            s.values[Metric.GLUCOSE])
    assert 54 <= min(days[3]) <= 69
    assert min(days[6]) < 54
    assert sum(v > 250 for v in days[9]) == 2
    assert min(days[2]) >= 70


def test_exact_number_of_measured_days() -> None:
    p = stable_profile("b", ["HTN", "DM"], seed=1, adherence=Adherence(measured_days=15))
    samples = simulate_patient(p, start=START, days=30, seed=1)
    assert len(device_days(samples, p.timezone)) == 15


def test_pause_for_a_week() -> None:
    p = stable_profile("b", ["CHF"], seed=1,
                       adherence=Adherence(skip_prob=0.0, pauses=((10, 7),)))
    samples = simulate_patient(p, start=START, days=30, seed=1)
    days = device_days(samples, p.timezone)
    assert not any(START + timedelta(days=d) in days for d in range(10, 17))
    assert len(days) == 23


def test_skips_and_measuring_twice() -> None:
    p = stable_profile("b", ["HTN"], seed=7,
                       adherence=Adherence(skip_prob=0.3, twice_prob=0.5))
    samples = simulate_patient(p, start=START, days=100, seed=7)
    days = device_days(samples, p.timezone)
    assert 55 <= len(days) <= 85
    contexts = Counter(s.context for s in samples)
    assert contexts["repeat"] > 20
    repeats = [s for s in samples if s.context == "repeat"]
    for r in repeats:  # a repeat follows its first measurement within minutes
        before = [s for s in samples if s.kind == r.kind and s.measured_at < r.measured_at]
        assert r.measured_at - before[-1].measured_at < timedelta(minutes=10)
