"""Glucose Measurement (0x2A18) and Glucose Measurement Context (0x2A34).

The user-facing time is the base time PLUS the signed offset in minutes (some
public parsers subtract it; the SIG adds).  Concentration is kg/L or mol/L as
sent: kg/L x 100000 = mg/dL, mol/L x 1000 = mmol/L.  Type is the low nibble,
sample location the high nibble.  Sensor status bit 5 = result too HIGH for
the device, bit 6 = too LOW (some libraries swap them; the SIG does not).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from edge_agent.gatt._common import bit_names, canonical, code_name, numeric, split_values
from edge_agent.gatt.numbers import Number, Reader
from edge_agent.gatt.times import DateTime, add_minutes, iso, read_date_time
from gateway.units import MG_DL_PER_MMOL_L, Metric, Unit

GLUCOSE_MEASUREMENT = 0x2A18
GLUCOSE_MEASUREMENT_CONTEXT = 0x2A34

FLAG_TIME_OFFSET = 0x01
FLAG_CONCENTRATION = 0x02
FLAG_MOL_L = 0x04
FLAG_STATUS = 0x08
FLAG_CONTEXT_FOLLOWS = 0x10

SENSOR_STATUS_BITS = (
    (0, "device_battery_low"),
    (1, "sensor_malfunction"),
    (2, "sample_size_insufficient"),
    (3, "strip_insertion_error"),
    (4, "strip_type_incorrect"),
    (5, "result_too_high"),
    (6, "result_too_low"),
    (7, "sensor_temperature_too_high"),
    (8, "sensor_temperature_too_low"),
    (9, "sensor_read_interrupted"),
    (10, "general_device_fault"),
    (11, "time_fault"),
)
STATUS_TOO_HIGH = 1 << 5
STATUS_TOO_LOW = 1 << 6

SAMPLE_TYPES = {
    1: "capillary_whole_blood",
    2: "capillary_plasma",
    3: "venous_whole_blood",
    4: "venous_plasma",
    5: "arterial_whole_blood",
    6: "arterial_plasma",
    7: "undetermined_whole_blood",
    8: "undetermined_plasma",
    9: "interstitial_fluid",
    10: "control_solution",
}
SAMPLE_LOCATIONS = {
    1: "finger",
    2: "alternate_site_test",
    3: "earlobe",
    4: "control_solution",
    15: "not_available",
}


@dataclass(frozen=True, slots=True)
class GlucoseMeasurement:
    """Glucose Measurement (0x2A18); concentration in ``unit`` (kg/L or mol/L) as sent."""

    characteristic: ClassVar[int] = GLUCOSE_MEASUREMENT

    sequence: int
    base_time: DateTime
    unit: Unit = Unit.KG_L  # from flag bit 2, kept even without a concentration
    time_offset: int | None = None  # minutes, signed
    concentration: Number | None = None
    sample_type: int | None = None  # low nibble
    sample_location: int | None = None  # high nibble
    sensor_status: int | None = None
    context_follows: bool = False

    def user_facing_time(self) -> datetime | None:
        """Base time plus the time offset, or ``None`` if the base time is unusable."""
        return add_minutes(self.base_time, self.time_offset or 0)

    @property
    def status_names(self) -> list[str]:
        """Snake-case names of the sensor status bits set."""
        return bit_names(self.sensor_status, SENSOR_STATUS_BITS)

    @property
    def lo_hi(self) -> str | None:
        """``"hi"`` if the meter reported above its range (bit 5), ``"lo"`` if below (bit 6)."""
        status = self.sensor_status or 0
        if status & STATUS_TOO_HIGH:
            return "hi"
        if status & STATUS_TOO_LOW:
            return "lo"
        return None

    @property
    def measurement_unsuccessful(self) -> bool:
        """True when there is no numeric concentration (absent or a special value)."""
        return numeric(self.concentration) is None

    def mg_dl(self) -> float | None:
        """Concentration in mg/dL."""
        return canonical(self.concentration, Metric.GLUCOSE, self.unit)

    def mmol_l(self) -> float | None:
        """Concentration in mmol/L, exactly: mol/L x 1000; kg/L x 100000 / 18.016."""
        v = numeric(self.concentration)
        if v is None:
            return None
        if self.unit is Unit.MOL_L:
            return float(v * 1000)
        return float(v * 100000 / MG_DL_PER_MMOL_L)

    def canonical(self) -> dict[str, float | None]:
        """Glucose in mg/dL."""
        return {"glucose": self.mg_dl()}

    def json_fields(self) -> dict[str, object]:
        """Fields for :func:`edge_agent.gatt.to_json_dict`."""
        values, special = split_values({"glucose": self.concentration})
        return {
            "unit": self.unit.value,
            "values": values,
            "special": special,
            "timestamp": iso(self.user_facing_time()),
            "timestamp_parts": self.base_time.parts(),
            "base_time": iso(self.base_time.to_datetime()),
            "sequence": self.sequence,
            "time_offset_minutes": self.time_offset,
            "status": self.status_names,
            "sample_type": code_name(self.sample_type, SAMPLE_TYPES),
            "sample_location": code_name(self.sample_location, SAMPLE_LOCATIONS),
            "measurement_unsuccessful": self.measurement_unsuccessful,
            "canonical": self.canonical(),
        }


def decode_glucose_measurement(data: bytes) -> GlucoseMeasurement:
    """Decode Glucose Measurement (0x2A18)."""
    r = Reader(GLUCOSE_MEASUREMENT, data)
    flags = r.u8("flags")
    sequence = r.u16("sequence")
    base = read_date_time(r, "base_time")
    offset = r.s16("time_offset") if flags & FLAG_TIME_OFFSET else None
    unit = Unit.MOL_L if flags & FLAG_MOL_L else Unit.KG_L
    conc = stype = sloc = None
    if flags & FLAG_CONCENTRATION:
        conc = r.sfloat("concentration")
        type_location = r.u8("type_sample_location")
        stype, sloc = type_location & 0x0F, type_location >> 4
    status = r.u16("sensor_status") if flags & FLAG_STATUS else None
    return GlucoseMeasurement(
        sequence, base, unit, offset, conc, stype, sloc, status, bool(flags & FLAG_CONTEXT_FOLLOWS)
    )


CARBOHYDRATES = {
    1: "breakfast",
    2: "lunch",
    3: "dinner",
    4: "snack",
    5: "drink",
    6: "supper",
    7: "brunch",
}
MEALS = {1: "preprandial", 2: "postprandial", 3: "fasting", 4: "casual", 5: "bedtime"}
TESTERS = {1: "self", 2: "health_care_professional", 3: "lab_test", 15: "not_available"}
HEALTH = {
    1: "minor_health_issues",
    2: "major_health_issues",
    3: "during_menses",
    4: "under_stress",
    5: "no_health_issues",
    15: "not_available",
}
MEDICATIONS = {
    1: "rapid_acting_insulin",
    2: "short_acting_insulin",
    3: "intermediate_acting_insulin",
    4: "long_acting_insulin",
    5: "pre_mixed_insulin",
}


@dataclass(frozen=True, slots=True)
class GlucoseMeasurementContext:
    """Glucose Measurement Context (0x2A34); optional fields are ``None`` when absent.

    Carbohydrate is in grams-as-kg (SFLOAT kg), medication in kg or litres
    (``medication_unit``), HbA1c in %.
    """

    characteristic: ClassVar[int] = GLUCOSE_MEASUREMENT_CONTEXT

    sequence: int
    extended_flags: int | None = None
    carbohydrate_id: int | None = None
    carbohydrate: Number | None = None  # kg
    meal: int | None = None
    tester: int | None = None
    health: int | None = None
    exercise_duration: int | None = None  # seconds, 0xFFFF = overrun
    exercise_intensity: int | None = None  # percent
    medication_id: int | None = None
    medication: Number | None = None
    medication_unit: str = "kg"  # "kg" or "L" (flag bit 5)
    hba1c: Number | None = None

    def json_fields(self) -> dict[str, object]:
        """Fields for :func:`edge_agent.gatt.to_json_dict`."""
        values, special = split_values(
            {
                "carbohydrate": self.carbohydrate,
                "medication": self.medication,
                "hba1c": self.hba1c,
            }
        )
        return {
            "values": values,
            "special": special,
            "sequence": self.sequence,
            "context": {
                "extended_flags": self.extended_flags,
                "carbohydrate_id": code_name(self.carbohydrate_id, CARBOHYDRATES),
                "carbohydrate_unit": "kg",
                "meal": code_name(self.meal, MEALS),
                "tester": code_name(self.tester, TESTERS),
                "health": code_name(self.health, HEALTH),
                "exercise_duration_s": self.exercise_duration,
                "exercise_intensity_percent": self.exercise_intensity,
                "medication_id": code_name(self.medication_id, MEDICATIONS),
                "medication_unit": self.medication_unit,
            },
        }


def decode_glucose_measurement_context(data: bytes) -> GlucoseMeasurementContext:
    """Decode Glucose Measurement Context (0x2A34)."""
    r = Reader(GLUCOSE_MEASUREMENT_CONTEXT, data)
    flags = r.u8("flags")
    sequence = r.u16("sequence")
    ext = r.u8("extended_flags") if flags & 0x80 else None
    carb_id = carb = meal = tester = health = None
    duration = intensity = med_id = med = hba1c = None
    if flags & 0x01:
        carb_id = r.u8("carbohydrate_id")
        carb = r.sfloat("carbohydrate")
    if flags & 0x02:
        meal = r.u8("meal")
    if flags & 0x04:
        th = r.u8("tester_health")
        tester, health = th & 0x0F, th >> 4
    if flags & 0x08:
        duration = r.u16("exercise_duration")
        intensity = r.u8("exercise_intensity")
    if flags & 0x10:
        med_id = r.u8("medication_id")
        med = r.sfloat("medication")
    if flags & 0x40:
        hba1c = r.sfloat("hba1c")
    return GlucoseMeasurementContext(
        sequence,
        ext,
        carb_id,
        carb,
        meal,
        tester,
        health,
        duration,
        intensity,
        med_id,
        med,
        "L" if flags & 0x20 else "kg",
        hba1c,
    )
