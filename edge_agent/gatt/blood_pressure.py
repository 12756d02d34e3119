"""Blood Pressure Measurement (0x2A35) and Intermediate Cuff Pressure (0x2A36).

Both share one layout.  In an Intermediate Cuff Pressure notification only the
first SFLOAT (the current cuff pressure) means anything; it is progress, not a
reading, so it has its own type and never carries systolic/diastolic values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from edge_agent.gatt._common import bit_names, canonical, split_values
from edge_agent.gatt.numbers import Number, Reader, Special
from edge_agent.gatt.times import DateTime, read_date_time
from gateway.units import Metric, Unit

BLOOD_PRESSURE_MEASUREMENT = 0x2A35
INTERMEDIATE_CUFF_PRESSURE = 0x2A36

FLAG_KPA = 0x01
FLAG_TIMESTAMP = 0x02
FLAG_PULSE = 0x04
FLAG_USER = 0x08
FLAG_STATUS = 0x10

UNKNOWN_USER = 0xFF

_STATUS_BITS = (
    (0, "body_movement"),
    (1, "cuff_loose"),
    (2, "irregular_pulse"),
    (5, "improper_measurement_position"),
)
_PULSE_RANGE = {
    1: "pulse_rate_exceeds_upper_limit",
    2: "pulse_rate_below_lower_limit",
    3: "pulse_rate_range_reserved",
}


def bp_status_names(status: int | None, user_id: int | None = None) -> list[str]:
    """Snake-case names for the BP measurement status bits (and an unknown user)."""
    names = bit_names(status, _STATUS_BITS)
    if status is not None:
        pulse_range = (status >> 3) & 0x3
        if pulse_range:
            names.insert(3, _PULSE_RANGE[pulse_range])
    if user_id == UNKNOWN_USER:
        names.append("user_unknown")
    return names


@dataclass(frozen=True, slots=True)
class BloodPressureMeasurement:
    """Blood Pressure Measurement (0x2A35); pressures in ``unit`` (mmHg or kPa) as sent."""

    characteristic: ClassVar[int] = BLOOD_PRESSURE_MEASUREMENT

    unit: Unit
    systolic: Number
    diastolic: Number
    mean_arterial: Number
    timestamp: DateTime | None = None
    pulse: Number | None = None  # beats per minute
    user_id: int | None = None  # 0xFF = unknown user
    status: int | None = None  # raw measurement status bits

    @property
    def status_names(self) -> list[str]:
        """Snake-case names of the status bits set."""
        return bp_status_names(self.status, self.user_id)

    @property
    def measurement_unsuccessful(self) -> bool:
        """True when no pressure is a number (failed measurements send NaN)."""
        return all(
            isinstance(v, Special) for v in (self.systolic, self.diastolic, self.mean_arterial)
        )

    def canonical(self) -> dict[str, float | None]:
        """Pressures in mmHg and pulse in /min."""
        return {
            "systolic": canonical(self.systolic, Metric.SYSTOLIC, self.unit),
            "diastolic": canonical(self.diastolic, Metric.DIASTOLIC, self.unit),
            "mean_arterial": canonical(self.mean_arterial, Metric.MEAN_ARTERIAL, self.unit),
            "pulse": canonical(self.pulse, Metric.PULSE, Unit.PER_MIN),
        }

    def json_fields(self) -> dict[str, object]:
        """Fields for :func:`edge_agent.gatt.to_json_dict`."""
        values, special = split_values(
            {
                "systolic": self.systolic,
                "diastolic": self.diastolic,
                "mean_arterial": self.mean_arterial,
                "pulse": self.pulse,
            }
        )
        out: dict[str, object] = {
            "unit": self.unit.value,
            "values": values,
            "special": special,
            "user_id": self.user_id,
            "status": self.status_names,
            "measurement_unsuccessful": self.measurement_unsuccessful,
            "canonical": self.canonical(),
        }
        if self.timestamp is not None:
            out.update(self.timestamp.json_fields())
        return out


@dataclass(frozen=True, slots=True)
class IntermediateCuffPressure:
    """Intermediate Cuff Pressure (0x2A36): cuff inflation progress, not a reading."""

    characteristic: ClassVar[int] = INTERMEDIATE_CUFF_PRESSURE

    unit: Unit
    cuff_pressure: Number
    timestamp: DateTime | None = None
    pulse: Number | None = None
    user_id: int | None = None
    status: int | None = None

    @property
    def status_names(self) -> list[str]:
        """Snake-case names of the status bits set."""
        return bp_status_names(self.status, self.user_id)

    def canonical(self) -> dict[str, float | None]:
        """Cuff pressure in mmHg and pulse in /min."""
        return {
            "cuff_pressure": canonical(self.cuff_pressure, Metric.SYSTOLIC, self.unit),
            "pulse": canonical(self.pulse, Metric.PULSE, Unit.PER_MIN),
        }

    def json_fields(self) -> dict[str, object]:
        """Fields for :func:`edge_agent.gatt.to_json_dict`."""
        values, special = split_values({"cuff_pressure": self.cuff_pressure, "pulse": self.pulse})
        out: dict[str, object] = {
            "unit": self.unit.value,
            "values": values,
            "special": special,
            "user_id": self.user_id,
            "status": self.status_names,
            "canonical": self.canonical(),
        }
        if self.timestamp is not None:
            out.update(self.timestamp.json_fields())
        return out


def _decode(
    uuid: int, data: bytes
) -> tuple[Unit, Number, Number, Number, DateTime | None, Number | None, int | None, int | None]:
    r = Reader(uuid, data)
    flags = r.u8("flags")
    unit = Unit.KPA if flags & FLAG_KPA else Unit.MMHG
    first = r.sfloat("systolic" if uuid == BLOOD_PRESSURE_MEASUREMENT else "cuff_pressure")
    second = r.sfloat("diastolic")
    third = r.sfloat("mean_arterial")
    timestamp = read_date_time(r, "timestamp") if flags & FLAG_TIMESTAMP else None
    pulse = r.sfloat("pulse") if flags & FLAG_PULSE else None
    user_id = r.u8("user_id") if flags & FLAG_USER else None
    status = r.u16("status") if flags & FLAG_STATUS else None
    return unit, first, second, third, timestamp, pulse, user_id, status


def decode_blood_pressure_measurement(data: bytes) -> BloodPressureMeasurement:
    """Decode Blood Pressure Measurement (0x2A35)."""
    unit, sys_, dia, mean, ts, pulse, user, status = _decode(BLOOD_PRESSURE_MEASUREMENT, data)
    return BloodPressureMeasurement(unit, sys_, dia, mean, ts, pulse, user, status)


def decode_intermediate_cuff_pressure(data: bytes) -> IntermediateCuffPressure:
    """Decode Intermediate Cuff Pressure (0x2A36); the 2nd and 3rd SFLOATs are ignored."""
    unit, cuff, _, _, ts, pulse, user, status = _decode(INTERMEDIATE_CUFF_PRESSURE, data)
    return IntermediateCuffPressure(unit, cuff, ts, pulse, user, status)
