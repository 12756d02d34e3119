"""Domain model: frozen value objects shared by every package.

Inside Vitalgate these are plain frozen, slotted dataclasses; validation
happens at the edges (wire decoder, API schemas, settings).  All instants are
timezone-aware UTC ``datetime`` objects; local calendar days are ``date``
objects computed with the patient's IANA time zone.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from gateway.units import CANONICAL_UNIT, PHYSIOLOGIC, Metric, Unit


class Program(StrEnum):
    """Care-management programs a patient can be enrolled in."""

    RPM = "RPM"
    CCM = "CCM"
    PCM = "PCM"


class Condition(StrEnum):
    """Chronic conditions that select rule protocols."""

    CHF = "CHF"
    COPD = "COPD"
    HTN = "HTN"
    DM = "DM"


class DeviceKind(StrEnum):
    """Kinds of home device; each maps to one BLE profile."""

    SCALE = "scale"
    BP_CUFF = "bp_cuff"
    PULSE_OXIMETER = "pulse_oximeter"
    GLUCOMETER = "glucometer"


class ReadingSource(StrEnum):
    """Whether a reading was transmitted by a device or typed in by a person."""

    DEVICE = "device"
    MANUAL = "manual"


class Flag(StrEnum):
    """Flags a reading can carry.  Flags never change a stored value."""

    DEVICE_INVALID = "device_invalid"  # device says the measurement is invalid
    QUESTIONABLE = "questionable"  # device says the measurement is questionable
    UNAVAILABLE = "unavailable"
    MEASUREMENT_UNSUCCESSFUL = "measurement_unsuccessful"  # NaN / 0xFFFF
    GLUCOSE_LO = "glucose_lo"  # meter reported LO (below its range)
    GLUCOSE_HI = "glucose_hi"  # meter reported HI (above its range)
    CLOCK_CORRECTED = "clock_corrected"  # measured time corrected by hub offset
    POSSIBLY_OTHER_PERSON = "possibly_other_person"  # weight jump > 10 % day to day
    OUTSIDE_VALIDATED_ACCURACY = "outside_validated_accuracy"  # SpO2 < 70 %
    BODY_MOVEMENT = "body_movement"
    CUFF_LOOSE = "cuff_loose"
    IRREGULAR_PULSE = "irregular_pulse"
    LATE = "late"  # arrived long after it was measured


#: Flags that mean "store it, but it must not drive an alert".
NON_ALERTING_FLAGS: frozenset[Flag] = frozenset(
    {Flag.DEVICE_INVALID, Flag.QUESTIONABLE, Flag.UNAVAILABLE, Flag.MEASUREMENT_UNSUCCESSFUL}
)


def utc(dt: datetime) -> datetime:
    """Return ``dt`` as an aware UTC datetime; naive datetimes are refused."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError("naive datetime: every instant in Vitalgate carries a zone")
    return dt.astimezone(ZoneInfo("UTC"))


def local_day(instant: datetime, tz: str | ZoneInfo) -> date:
    """The local calendar day of ``instant`` in time zone ``tz``."""
    zone = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
    return instant.astimezone(zone).date()


@dataclass(frozen=True, slots=True)
class Measurement:
    """One metric's value inside a reading.

    ``value`` is in the metric's canonical unit, or ``None`` when the device
    sent no number (NaN, NRes, failed measurement, glucose LO/HI).
    ``raw_value``/``raw_unit`` keep what the device sent.
    """

    metric: Metric
    value: float | None
    raw_value: float | None = None
    raw_unit: Unit | None = None
    special: str | None = None  # "nan", "nres", "+inf", "-inf", "reserved", "lo", "hi"

    def __post_init__(self) -> None:
        if self.value is not None and not math.isfinite(self.value):
            raise ValueError(f"{self.metric}: non-finite value is never stored as a number")

    @property
    def unit(self) -> Unit:
        """Canonical unit of this measurement."""
        return CANONICAL_UNIT[self.metric]


@dataclass(frozen=True, slots=True)
class Reading:
    """One measurement event from one device (e.g. a BP reading with pulse).

    The four times: ``measured_at`` (device time, corrected by the observed
    offset when known, UTC), ``clock_offset_s`` (device clock minus true time,
    as the hub observed it), ``received_at`` (hub receive time) and
    ``ingested_at`` (server time; ``None`` until stored).
    """

    id: str
    practice_id: str
    patient_id: str
    device_serial: str
    hub_id: str
    kind: DeviceKind
    measured_at: datetime
    received_at: datetime
    measurements: tuple[Measurement, ...]
    device_time: str | None = None  # as the device stated it (ISO, no zone)
    clock_offset_s: float | None = None
    ingested_at: datetime | None = None
    source: ReadingSource = ReadingSource.DEVICE
    flags: frozenset[Flag] = field(default_factory=frozenset)
    sequence: int | None = None

    def value(self, metric: Metric) -> float | None:
        """Canonical value of ``metric`` in this reading, or ``None``."""
        for m in self.measurements:
            if m.metric == metric:
                return m.value
        return None

    def measurement(self, metric: Metric) -> Measurement | None:
        """The measurement of ``metric``, or ``None`` if absent."""
        for m in self.measurements:
            if m.metric == metric:
                return m
        return None

    @property
    def metrics(self) -> frozenset[Metric]:
        """Metrics that carry a numeric value."""
        return frozenset(m.metric for m in self.measurements if m.value is not None)

    @property
    def alerting(self) -> bool:
        """True when the reading may drive a rule (not flagged invalid)."""
        return not (self.flags & NON_ALERTING_FLAGS)

    @property
    def qualifying(self) -> bool:
        """Billing: device-transmitted and carries a physiologic value."""
        return self.source == ReadingSource.DEVICE and bool(self.metrics & PHYSIOLOGIC)


@dataclass(frozen=True, slots=True)
class Practice:
    """A tenant: one physician practice."""

    id: str
    name: str
    timezone: str = "America/New_York"
    display_units: str = "us"  # "us" shows lb; "si" shows kg


@dataclass(frozen=True, slots=True)
class Patient:
    """A monitored patient.  Name and birth date are PHI: never log them."""

    id: str
    practice_id: str
    mrn: str
    given_name: str
    family_name: str
    birth_date: date | None
    timezone: str

    @property
    def initials(self) -> str:
        """Initials for minimal-PHI messages."""
        return f"{self.given_name[:1]}{self.family_name[:1]}".upper()

    @property
    def mrn_last4(self) -> str:
        """Last four characters of the MRN for minimal-PHI messages."""
        return self.mrn[-4:]


@dataclass(frozen=True, slots=True)
class Enrollment:
    """A patient's enrolment: programs, conditions, consent and physician."""

    patient_id: str
    practice_id: str
    programs: frozenset[Program]
    conditions: frozenset[Condition]
    consent_date: date | None
    supervising_physician_id: str | None = None
    monitoring_start: date | None = None
    active: bool = True


@dataclass(frozen=True, slots=True)
class Device:
    """A home device, identified by its serial number."""

    serial: str
    practice_id: str
    kind: DeviceKind
    model: str = ""
    manufacturer: str = ""


@dataclass(frozen=True, slots=True)
class DeviceAssignment:
    """A device lent to a patient (through a hub) for a span of time."""

    device_serial: str
    patient_id: str
    hub_id: str
    practice_id: str
    start: datetime
    end: datetime | None = None

    def active_at(self, instant: datetime) -> bool:
        """True when the assignment covers ``instant``."""
        return self.start <= instant and (self.end is None or instant < self.end)


@dataclass(frozen=True, slots=True)
class Hub:
    """A patient's home hub running the edge agent."""

    id: str
    practice_id: str
    patient_id: str | None = None
    mqtt_username: str | None = None


@dataclass(frozen=True, slots=True)
class DayCount:
    """Rollup row: readings of one metric on one local day of a patient."""

    patient_id: str
    day: date
    metric: Metric
    device_count: int
    manual_count: int


def days_between(start: date, end: date) -> Iterable[date]:
    """Each day from ``start`` to ``end`` inclusive."""
    d = start
    while d <= end:
        yield d
        d += timedelta(days=1)


def measurements_from(values: Mapping[Metric, float | None]) -> tuple[Measurement, ...]:
    """Build canonical measurements from a metric -> canonical value mapping."""
    return tuple(
        Measurement(metric=m, value=v, raw_value=v, raw_unit=CANONICAL_UNIT[m])
        for m, v in values.items()
    )
