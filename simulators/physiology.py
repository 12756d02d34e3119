"""Seeded patient physiology: what a monitored patient measures, day after day.

How this works
--------------
A :class:`PatientProfile` names the patient's conditions, time zone, baseline
values, optional scripted *courses* (a CHF decompensation, a COPD
exacerbation, hypertension treated after weeks of poor control, diabetic
hypoglycaemia and post-meal highs) and an :class:`Adherence` behaviour
(skipped days, a week-long pause, measuring twice, an exact number of
measured days).  :func:`simulate_patient` walks the patient's local calendar
days and, for each device the patient has, emits :class:`Sample` values at
realistic local times (weight before breakfast, blood pressure morning and
evening, glucose fasting and after dinner), in canonical units and at the
resolution a real device reports (weight to 0.005 kg, the rest in whole
units).

Everything random comes from one ``numpy`` Generator seeded from
``(seed, crc32(patient_id))``: the same seed gives the same stream, and one
patient's stream does not depend on which other patients are simulated.
Noise is a normal distribution truncated at 2.5 standard deviations, so
stable patients stay inside the clinical plausibility ranges and do not
raise escalations by chance; scripted courses set the clinically relevant
change exactly (a +2.4 lb overnight gain is +2.4 lb between the two first
weights of the day), so scenario expectations hold for every seed.
"""

from __future__ import annotations

import heapq
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from gateway.model import Condition, DeviceKind
from gateway.units import Metric, lb_to_kg

#: Noise is truncated at this many standard deviations (see the module note).
NOISE_CLIP_SD = 2.5
#: Weight resolution of an SI scale (the Weight Measurement characteristic's unit).
WEIGHT_STEP_KG = 0.005

#: Devices a patient gets for each condition (union over the patient's conditions).
DEVICES_FOR_CONDITION: dict[Condition, tuple[DeviceKind, ...]] = {
    Condition.CHF: (DeviceKind.SCALE, DeviceKind.BP_CUFF, DeviceKind.PULSE_OXIMETER),
    Condition.COPD: (DeviceKind.PULSE_OXIMETER,),
    Condition.HTN: (DeviceKind.BP_CUFF,),
    Condition.DM: (DeviceKind.GLUCOMETER,),
}
_DEVICE_ORDER = (DeviceKind.SCALE, DeviceKind.BP_CUFF, DeviceKind.PULSE_OXIMETER,
                 DeviceKind.GLUCOMETER)


@dataclass(frozen=True, slots=True)
class Sample:
    """One measurement a patient takes: UTC time, device kind, canonical values.

    ``context`` says why it was taken: ``morning``, ``evening``, ``fasting``,
    ``post_meal``, ``recheck`` (a re-measure after a worrying value) or
    ``repeat`` (the patient measured twice).
    """

    patient_id: str
    measured_at: datetime
    kind: DeviceKind
    values: Mapping[Metric, float] = field(hash=False)
    context: str = ""


@dataclass(frozen=True, slots=True)
class Baseline:
    """A patient's usual values (canonical units)."""

    weight_kg: float = 85.0
    systolic: float = 128.0
    diastolic: float = 79.0
    pulse: float = 72.0
    spo2: float = 97.0
    glucose_fasting: float = 115.0
    glucose_post_meal: float = 160.0


# --------------------------------------------------------------------------- courses

@dataclass(frozen=True, slots=True)
class ChfDecompensation:
    """Fluid gain: ``overnight_gain_lb`` between ``start_day - 1`` and ``start_day``
    (first weights of the day), then ``daily_gain_lb`` more each day for
    ``gain_days`` days, then a plateau (pulse up, SpO2 slightly down meanwhile).
    """

    start_day: int
    overnight_gain_lb: float = 2.4
    daily_gain_lb: float = 0.8
    gain_days: int = 4

    def weight_offset_lb(self, day: int) -> float:
        """Extra weight (lb) on ``day`` relative to the patient's dry weight."""
        if day < self.start_day:
            return 0.0
        extra_days = min(day - self.start_day, self.gain_days)
        return self.overnight_gain_lb + self.daily_gain_lb * extra_days


@dataclass(frozen=True, slots=True)
class CopdExacerbation:
    """SpO2 slides ``drop`` points below baseline over ``ramp_days``, stays low,
    and recovers over ``ramp_days`` after ``duration_days``; the pulse rises.
    """

    start_day: int
    drop: float = 7.0
    ramp_days: int = 3
    duration_days: int = 8

    def spo2_offset(self, day: float) -> float:
        """SpO2 change (points, <= 0) on fractional ``day``."""
        t = day - self.start_day
        if t < 0 or t > self.duration_days + self.ramp_days:
            return 0.0
        if t < self.ramp_days:
            return -self.drop * (t + 1) / (self.ramp_days + 1)
        if t <= self.duration_days:
            return -self.drop
        return -self.drop * (1 - (t - self.duration_days) / self.ramp_days)


@dataclass(frozen=True, slots=True)
class HypertensionTreated:
    """Blood pressure ``systolic_excess``/``diastolic_excess`` above baseline until
    ``treated_day``, then falling back with a time constant of ``response_days / 3``.
    """

    treated_day: int
    systolic_excess: float = 24.0
    diastolic_excess: float = 13.0
    response_days: int = 14

    def factor(self, day: float) -> float:
        """Fraction of the excess still present on ``day`` (1 before treatment)."""
        if day < self.treated_day:
            return 1.0
        return float(np.exp(-(day - self.treated_day) * 3.0 / self.response_days))


@dataclass(frozen=True, slots=True)
class DiabetesEpisodes:
    """Hypoglycaemia and hyperglycaemia on given days.

    * ``hypo_days``: the fasting value is 55-68 mg/dL (ADA level 1), rechecked
      after treatment 15 min later;
    * ``very_low_days``: the fasting value is 40-52 mg/dL (level 2);
    * ``high_days``: the post-dinner value is 262-310 mg/dL and a recheck an
      hour later is still above 250.
    """

    hypo_days: tuple[int, ...] = ()
    very_low_days: tuple[int, ...] = ()
    high_days: tuple[int, ...] = ()


Course = ChfDecompensation | CopdExacerbation | HypertensionTreated | DiabetesEpisodes


@dataclass(frozen=True, slots=True)
class Adherence:
    """How faithfully the patient measures.

    ``skip_prob`` skips a whole day; ``evening_skip_prob`` forgets the evening
    measurements; ``pauses`` are ``(start_day, length)`` spans with no
    measurement at all (a week away); ``twice_prob`` repeats a measurement a
    few minutes later; ``measured_days``, when set, makes the patient measure
    on exactly that many days (chosen at random) and skip the others.
    """

    skip_prob: float = 0.05
    evening_skip_prob: float = 0.1
    pauses: tuple[tuple[int, int], ...] = ()
    twice_prob: float = 0.03
    measured_days: int | None = None


PERFECT = Adherence(skip_prob=0.0, evening_skip_prob=0.0, twice_prob=0.0)


@dataclass(frozen=True, slots=True)
class PatientProfile:
    """Everything the physiology model needs to simulate one patient."""

    patient_id: str
    conditions: frozenset[Condition]
    timezone: str = "America/New_York"
    baseline: Baseline = Baseline()
    courses: tuple[Course, ...] = ()
    adherence: Adherence = Adherence()
    devices: tuple[DeviceKind, ...] | None = None

    @property
    def device_kinds(self) -> tuple[DeviceKind, ...]:
        """The patient's devices (explicit, else derived from the conditions)."""
        if self.devices is not None:
            return self.devices
        kinds = {k for c in self.conditions for k in DEVICES_FOR_CONDITION[c]}
        return tuple(k for k in _DEVICE_ORDER if k in kinds)


# --------------------------------------------------------------------------- profiles

def patient_rng(seed: int, patient_id: str) -> np.random.Generator:
    """The patient's own Generator: depends only on ``seed`` and the patient id."""
    return np.random.default_rng([seed, zlib.crc32(patient_id.encode())])


def stable_profile(patient_id: str, conditions: Iterable[Condition | str], *, seed: int,
                   timezone: str = "America/New_York", courses: Sequence[Course] = (),
                   adherence: Adherence | None = None) -> PatientProfile:
    """A profile with a realistic random baseline for the conditions (seeded)."""
    conds = frozenset(Condition(c) for c in conditions)
    rng = np.random.default_rng([seed, zlib.crc32(patient_id.encode()), 1])
    weight = float(rng.uniform(62, 112))
    if Condition.CHF in conds:
        weight = float(rng.uniform(72, 118))
    spo2 = float(rng.integers(92, 95)) if Condition.COPD in conds else float(rng.integers(96, 99))
    base = Baseline(
        weight_kg=weight,
        systolic=float(rng.uniform(118, 132)),
        diastolic=float(rng.uniform(70, 82)),
        pulse=float(rng.uniform(62, 80)),
        spo2=spo2,
        glucose_fasting=float(rng.uniform(100, 130)) if Condition.DM in conds else 92.0,
        glucose_post_meal=float(rng.uniform(145, 170)) if Condition.DM in conds else 120.0,
    )
    if adherence is None:
        adherence = Adherence(skip_prob=float(rng.uniform(0.0, 0.12)),
                              twice_prob=float(rng.uniform(0.0, 0.08)))
    return PatientProfile(patient_id, conds, timezone, base, tuple(courses), adherence)


# --------------------------------------------------------------------------- simulation

def _noise(rng: np.random.Generator, sd: float) -> float:
    return float(np.clip(rng.normal(0.0, sd), -NOISE_CLIP_SD * sd, NOISE_CLIP_SD * sd))


def _at(day: date, hour: float, tz: ZoneInfo) -> datetime:
    seconds = round(hour * 3600)
    local = datetime.combine(day, time(0), tzinfo=tz) + timedelta(seconds=seconds)
    # combine + timedelta keeps wall-clock arithmetic; normalise through UTC
    return datetime.fromtimestamp(local.timestamp(), UTC).replace(microsecond=0)


def _weight_kg(kg: float) -> float:
    return round(round(kg / WEIGHT_STEP_KG) * WEIGHT_STEP_KG, 3)


_Make = Callable[[], Mapping[Metric, float]]
_Add = Callable[[DeviceKind, float, Mapping[Metric, float], str], None]
_Twice = Callable[[DeviceKind, float, _Make], None]


class _Walker:
    """Per-patient generator state (AR(1) weight, courses) for one simulation."""

    def __init__(self, profile: PatientProfile, rng: np.random.Generator) -> None:
        self.p = profile
        self.rng = rng
        self.weight_dev_lb = 0.0  # mean-reverting day-to-day deviation
        self.first_weight_lb: dict[int, float] = {}
        courses = profile.courses
        self.chf = [c for c in courses if isinstance(c, ChfDecompensation)]
        self.copd = [c for c in courses if isinstance(c, CopdExacerbation)]
        self.htn = [c for c in courses if isinstance(c, HypertensionTreated)]
        self.dm = [c for c in courses if isinstance(c, DiabetesEpisodes)]

    # -- metric models ----------------------------------------------------
    def new_day(self) -> None:
        self.weight_dev_lb = 0.7 * self.weight_dev_lb + _noise(self.rng, 0.25)

    def weight(self, day: int, first_of_day: bool) -> float:
        base_lb = self.p.baseline.weight_kg / 0.45359237
        offsets = [c for c in self.chf if day >= c.start_day]
        if offsets and first_of_day:
            # scripted: exact change vs the course's anchor (the last pre-course first weight)
            c = offsets[0]
            anchor = self.first_weight_lb.get(c.start_day - 1)
            if anchor is not None:
                lb = anchor + c.weight_offset_lb(day) + (_noise(self.rng, 0.1)
                                                         if day > c.start_day else 0.0)
                self.first_weight_lb[day] = lb
                return _weight_kg(lb_to_kg(lb))
        extra = sum(c.weight_offset_lb(day) for c in self.chf)
        lb = base_lb + self.weight_dev_lb + extra + _noise(self.rng, 0.15)
        if first_of_day:
            # the kg value the scale reports, kept in lb for the course anchor
            kg = _weight_kg(lb_to_kg(lb))
            self.first_weight_lb[day] = kg / 0.45359237
            return kg
        return _weight_kg(lb_to_kg(lb))

    def bp(self, day: int, evening: bool) -> dict[Metric, float]:
        b = self.p.baseline
        sys_x = sum(c.systolic_excess * c.factor(day) for c in self.htn)
        dia_x = sum(c.diastolic_excess * c.factor(day) for c in self.htn)
        surge = -3.0 if evening else 4.0  # morning surge, evening dip
        systolic = b.systolic + sys_x + surge + _noise(self.rng, 7.0)
        diastolic = b.diastolic + dia_x + surge / 2 + _noise(self.rng, 5.0)
        diastolic = min(diastolic, systolic - 25)
        pulse = b.pulse + self._pulse_extra(day) + (2.0 if not evening else -1.0) \
            + _noise(self.rng, 4.0)
        return {Metric.SYSTOLIC: float(round(systolic)), Metric.DIASTOLIC: float(round(diastolic)),
                Metric.PULSE: float(round(pulse))}

    def _pulse_extra(self, day: float) -> float:
        extra = sum(6.0 for c in self.chf if day >= c.start_day)
        extra += sum(-c.spo2_offset(day) * 1.5 for c in self.copd)
        return extra

    def spo2(self, day: float, evening: bool) -> dict[Metric, float]:
        b = self.p.baseline
        offset = sum(c.spo2_offset(day) for c in self.copd)
        offset -= sum(1.0 for c in self.chf if day >= c.start_day)
        sd = 0.6 if self.copd and offset < -1 else 0.8
        value = b.spo2 + offset + (-0.3 if not evening else 0.0) + _noise(self.rng, sd)
        value = min(100.0, float(round(value)))
        pulse = b.pulse + self._pulse_extra(day) + _noise(self.rng, 4.0)
        return {Metric.SPO2: value, Metric.PULSE: float(round(pulse))}

    def glucose(self, day: int, post_meal: bool) -> float:
        b = self.p.baseline
        if post_meal:
            return float(round(b.glucose_post_meal + _noise(self.rng, 22.0)))
        return float(round(b.glucose_fasting + _noise(self.rng, 12.0)))

    # -- one day ------------------------------------------------------------
    def day(self, index: int, local: date, tz: ZoneInfo, measured: bool) -> list[Sample]:
        self.new_day()
        if not measured:
            return []
        rng = self.rng
        adh = self.p.adherence
        evening_ok = rng.random() >= adh.evening_skip_prob
        out: list[Sample] = []
        pid = self.p.patient_id

        def add(kind: DeviceKind, hour: float, values: Mapping[Metric, float], ctx: str) -> None:
            out.append(Sample(pid, _at(local, hour, tz), kind, dict(values), ctx))

        def maybe_twice(kind: DeviceKind, hour: float, make: _Make) -> None:
            if rng.random() < adh.twice_prob:
                add(kind, hour + float(rng.uniform(2, 6)) / 60, make(), "repeat")

        kinds = self.p.device_kinds
        htn = Condition.HTN in self.p.conditions
        copd = Condition.COPD in self.p.conditions
        dm = Condition.DM in self.p.conditions
        wake = float(rng.uniform(6.3, 8.0))
        if DeviceKind.SCALE in kinds:
            add(DeviceKind.SCALE, wake, {Metric.WEIGHT: self.weight(index, True)}, "morning")
            maybe_twice(DeviceKind.SCALE, wake,
                        lambda: {Metric.WEIGHT: self.weight(index, False)})
        if DeviceKind.BP_CUFF in kinds:
            h = wake + float(rng.uniform(0.2, 0.8))
            add(DeviceKind.BP_CUFF, h, self.bp(index, False), "morning")
            maybe_twice(DeviceKind.BP_CUFF, h, lambda: self.bp(index, False))
            if htn and evening_ok:
                h = float(rng.uniform(19.0, 21.5))
                add(DeviceKind.BP_CUFF, h, self.bp(index, True), "evening")
        if DeviceKind.PULSE_OXIMETER in kinds:
            slots = [(wake + float(rng.uniform(0.3, 1.0)), False)]
            if copd and evening_ok:
                slots.append((float(rng.uniform(18.5, 21.0)), True))
            for h, evening in slots:
                frac = index + h / 24
                values = self.spo2(frac, evening)
                add(DeviceKind.PULSE_OXIMETER, h, values, "evening" if evening else "morning")
                worry = 89 if copd else 93
                if values[Metric.SPO2] <= worry:
                    h2 = h + float(rng.uniform(5, 20)) / 60
                    add(DeviceKind.PULSE_OXIMETER, h2, self.spo2(frac, evening), "recheck")
                else:
                    maybe_twice(DeviceKind.PULSE_OXIMETER, h,
                                lambda f=frac, e=evening: self.spo2(f, e))  # type: ignore[misc]
        if DeviceKind.GLUCOMETER in kinds:
            self._glucose_day(index, wake, evening_ok or not dm, add, maybe_twice)
        return out

    def _glucose_day(self, index: int, wake: float, evening_ok: bool, add: _Add,
                     maybe_twice: _Twice) -> None:
        rng = self.rng
        hypo = any(index in c.hypo_days for c in self.dm)
        very_low = any(index in c.very_low_days for c in self.dm)
        high = any(index in c.high_days for c in self.dm)
        h = wake - 0.2
        if very_low:
            add(DeviceKind.GLUCOMETER, h, {Metric.GLUCOSE: float(rng.integers(40, 53))}, "fasting")
            add(DeviceKind.GLUCOMETER, h + 0.25, {Metric.GLUCOSE: float(rng.integers(78, 96))},
                "recheck")
        elif hypo:
            add(DeviceKind.GLUCOMETER, h, {Metric.GLUCOSE: float(rng.integers(55, 69))}, "fasting")
            add(DeviceKind.GLUCOMETER, h + 0.25, {Metric.GLUCOSE: float(rng.integers(82, 104))},
                "recheck")
        else:
            add(DeviceKind.GLUCOMETER, h, {Metric.GLUCOSE: self.glucose(index, False)}, "fasting")
            maybe_twice(DeviceKind.GLUCOMETER, h,
                        lambda: {Metric.GLUCOSE: self.glucose(index, False)})
        if high:
            h = float(rng.uniform(19.5, 20.5))
            add(DeviceKind.GLUCOMETER, h, {Metric.GLUCOSE: float(rng.integers(262, 311))},
                "post_meal")
            add(DeviceKind.GLUCOMETER, h + 1.0, {Metric.GLUCOSE: float(rng.integers(252, 281))},
                "recheck")
        elif evening_ok and rng.random() < 0.6:
            h = float(rng.uniform(19.5, 21.0))
            add(DeviceKind.GLUCOMETER, h, {Metric.GLUCOSE: self.glucose(index, True)},
                "post_meal")


def measured_day_mask(adherence: Adherence, days: int, rng: np.random.Generator) -> list[bool]:
    """Which of ``days`` days the patient measures on (pauses, skips, exact count)."""
    if adherence.measured_days is not None:
        n = max(0, min(days, adherence.measured_days))
        chosen = set(rng.choice(days, size=n, replace=False).tolist()) if n else set()
        return [d in chosen for d in range(days)]
    mask = [bool(rng.random() >= adherence.skip_prob) for _ in range(days)]
    for start, length in adherence.pauses:
        for d in range(max(0, start), min(days, start + length)):
            mask[d] = False
    return mask


def simulate_patient(profile: PatientProfile, *, start: date, days: int,
                     seed: int) -> list[Sample]:
    """The samples of one patient over ``days`` local days from ``start``, by time.

    Deterministic: the same ``(profile, start, days, seed)`` gives the same list.
    """
    rng = patient_rng(seed, profile.patient_id)
    tz = ZoneInfo(profile.timezone)
    mask = measured_day_mask(profile.adherence, days, rng)
    walker = _Walker(profile, rng)
    out: list[Sample] = []
    for i in range(days):
        out.extend(walker.day(i, start + timedelta(days=i), tz, mask[i]))
    out.sort(key=lambda s: (s.measured_at, s.kind))
    return out


def simulate_panel(profiles: Iterable[PatientProfile], *, start: date, days: int,
                   seed: int) -> Iterator[Sample]:
    """Samples of many patients merged in measured-time order (lazily per patient)."""
    streams = [simulate_patient(p, start=start, days=days, seed=seed) for p in profiles]
    return heapq.merge(*streams, key=lambda s: (s.measured_at, s.patient_id, s.kind))


def device_days(samples: Iterable[Sample], timezone: str) -> set[date]:
    """Local days (patient time zone) with at least one sample: billing's device days."""
    tz = ZoneInfo(timezone)
    return {s.measured_at.astimezone(tz).date() for s in samples}
