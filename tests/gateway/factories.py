"""Small builders of domain objects for tests."""

from __future__ import annotations

from datetime import UTC, date, datetime

from gateway.model import (
    DeviceKind,
    Enrollment,
    Measurement,
    Patient,
    Practice,
    Program,
    Reading,
    ReadingSource,
)
from gateway.store import Store
from gateway.units import Metric

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def seed_patient(store: Store, patient_id: str = "pt1", practice_id: str = "p1",
                 tz: str = "America/New_York") -> Patient:
    """A practice and one patient in it."""
    store.upsert_practice(Practice(practice_id, f"Practice {practice_id}", tz))
    patient = Patient(patient_id, practice_id, f"MRN-{patient_id}", "Ann", "Lee",
                      date(1950, 1, 2), tz)
    store.upsert_patient(patient)
    store.upsert_enrollment(Enrollment(patient_id, practice_id, frozenset({Program.RPM}),
                                       frozenset(), date(2026, 1, 1)))
    return patient


def weight(rid: str, at: datetime, kg: float = 80.0, patient_id: str = "pt1",
           practice_id: str = "p1", source: ReadingSource = ReadingSource.DEVICE) -> Reading:
    """A scale reading."""
    return Reading(id=rid, practice_id=practice_id, patient_id=patient_id,
                   device_serial="SCALE-1", hub_id="hub-1", kind=DeviceKind.SCALE,
                   measured_at=at, received_at=at, source=source,
                   measurements=(Measurement(Metric.WEIGHT, kg, kg * 2.2046226218, None),))


def bp(rid: str, at: datetime, sys_: float, dia: float, pulse: float | None = None,
       patient_id: str = "pt1", practice_id: str = "p1") -> Reading:
    """A blood-pressure reading (with pulse when given)."""
    ms = [Measurement(Metric.SYSTOLIC, sys_), Measurement(Metric.DIASTOLIC, dia)]
    if pulse is not None:
        ms.append(Measurement(Metric.PULSE, pulse))
    return Reading(id=rid, practice_id=practice_id, patient_id=patient_id,
                   device_serial="BP-1", hub_id="hub-1", kind=DeviceKind.BP_CUFF,
                   measured_at=at, received_at=at, measurements=tuple(ms))
