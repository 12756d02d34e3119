"""GATT encoders: the exact inverse of :mod:`edge_agent.gatt`, for device simulators.

Each ``encode_*`` takes the dataclass the decoder returns and produces the
bytes a real device would send, so ``decode(encode(x)) == x``.  Optional fields
are written (and their flag bits set) exactly when they are not ``None``.
Values must be representable exactly (an SFLOAT has a 12-bit mantissa and a
4-bit exponent; weights are multiples of 0.005 kg / 0.01 lb): anything else is
a :class:`ValueError`, because silently rounding would make simulator
expectations lie.  Round first with ``Decimal.quantize`` if you need to.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Container
from decimal import Decimal
from typing import Any

from edge_agent.gatt import blood_pressure as bp
from edge_agent.gatt import glucose, racp, weight
from edge_agent.gatt.blood_pressure import BloodPressureMeasurement, IntermediateCuffPressure
from edge_agent.gatt.device import BatteryLevel, DeviceInformationString
from edge_agent.gatt.glucose import GlucoseMeasurement, GlucoseMeasurementContext
from edge_agent.gatt.numbers import FLOAT_SPECIALS, SFLOAT_SPECIALS, Number, Special
from edge_agent.gatt.plx import PlxContinuous, PlxFeatures, PlxSpotCheck
from edge_agent.gatt.racp import RacpNumberOfRecords, RacpRequest, RacpResponseCode
from edge_agent.gatt.times import CurrentTime, DateTime
from edge_agent.gatt.weight import BodyCompositionMeasurement, WeightMeasurement, WeightScaleFeature
from gateway.units import Unit

_U8 = struct.Struct("<B")
_U16 = struct.Struct("<H")
_S16 = struct.Struct("<h")
_U32 = struct.Struct("<I")
_DATE_TIME = struct.Struct("<HBBBBB")

_SFLOAT_CODES = {v: k for k, v in SFLOAT_SPECIALS.items()}
_FLOAT_CODES = {v: k for k, v in FLOAT_SPECIALS.items()}


def _word(
    value: Decimal, exponent: int | None, m_bits: int, e_bits: int, specials: Container[int]
) -> int:
    """Pack ``value`` exactly; by default the exponent closest to 0 that fits (as devices do)."""
    m_max = (1 << (m_bits - 1)) - 1
    e_max = (1 << (e_bits - 1)) - 1
    if exponent is not None:
        exponents: list[int] = [exponent]
    else:
        exponents = sorted(range(-e_max - 1, e_max + 1), key=lambda e: (abs(e), e > 0))
    for exp in exponents:
        if not -e_max - 1 <= exp <= e_max:
            break
        scaled = value.scaleb(-exp)
        if scaled != scaled.to_integral_value() or not -m_max - 1 <= scaled <= m_max:
            continue
        mask = (1 << m_bits) - 1
        word = ((exp & ((1 << e_bits) - 1)) << m_bits) | (int(scaled) & mask)
        if word not in specials:
            return word
    raise ValueError(
        f"{value} cannot be represented exactly as a {m_bits}-bit mantissa"
        + ("" if exponent is None else f" with exponent {exponent}")
    )


def sfloat_word(value: Number, exponent: int | None = None) -> int:
    """The 16-bit SFLOAT word for ``value`` (a Decimal or a :class:`Special`).

    ``exponent`` forces the exponent (e.g. 0 for mmHg, -1 for 18.9); by default
    the exponent closest to 0 that represents the value exactly is used (words
    that would collide with a special value are skipped).
    """
    if isinstance(value, Special):
        return _SFLOAT_CODES[value]
    return _word(Decimal(value), exponent, 12, 4, SFLOAT_SPECIALS)


def float_word(value: Number, exponent: int | None = None) -> int:
    """The 32-bit FLOAT word for ``value`` (a Decimal or a :class:`Special`)."""
    if isinstance(value, Special):
        return _FLOAT_CODES[value]
    return _word(Decimal(value), exponent, 24, 8, FLOAT_SPECIALS)


def encode_sfloat(value: Number, exponent: int | None = None) -> bytes:
    """SFLOAT bytes (little-endian) for ``value``."""
    return _U16.pack(sfloat_word(value, exponent))


def encode_float(value: Number, exponent: int | None = None) -> bytes:
    """FLOAT bytes (little-endian) for ``value``."""
    return _U32.pack(float_word(value, exponent))


def _scaled(value: Decimal, resolution: Decimal, field: str, limit: int = 0xFFFF) -> int:
    raw = value / resolution
    if raw != raw.to_integral_value() or not 0 <= raw <= limit:
        raise ValueError(f"{field} {value} is not a multiple of {resolution} in 0..{limit}")
    return int(raw)


def encode_date_time(dt: DateTime) -> bytes:
    """Date Time (0x2A08) bytes."""
    return _DATE_TIME.pack(dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second)


def encode_current_time(ct: CurrentTime) -> bytes:
    """Current Time (0x2A2B) bytes."""
    tail = bytes((ct.day_of_week, ct.fractions256, ct.adjust_reason))
    return encode_date_time(ct.date_time) + tail


def encode_weight_measurement(m: WeightMeasurement) -> bytes:
    """Weight Measurement (0x2A9D) bytes; ``weight=None`` is sent as 0xFFFF."""
    flags = 0x01 if m.unit is Unit.LB else 0
    res = weight.MASS_RESOLUTION[m.unit]
    raw = weight.UNSUCCESSFUL if m.weight is None else _scaled(m.weight, res, "weight", 0xFFFE)
    body = _U16.pack(raw)
    if m.timestamp is not None:
        flags |= 0x02
        body += encode_date_time(m.timestamp)
    if m.user_id is not None:
        flags |= 0x04
        body += _U8.pack(m.user_id)
    if m.bmi is not None or m.height is not None:
        if m.bmi is None or m.height is None:
            raise ValueError("BMI and height are sent together")
        flags |= 0x08
        body += _U16.pack(_scaled(m.bmi, weight.TENTH, "bmi"))
        body += _U16.pack(_scaled(m.height, weight.HEIGHT_RESOLUTION[m.unit], "height"))
    return _U8.pack(flags) + body


def encode_weight_scale_feature(f: WeightScaleFeature) -> bytes:
    """Weight Scale Feature (0x2A9E) bytes."""
    return _U32.pack(f.raw)


def encode_body_composition_measurement(m: BodyCompositionMeasurement) -> bytes:
    """Body Composition Measurement (0x2A9C) bytes; optional fields in flag-bit order."""
    flags = weight.BC_IMPERIAL if m.unit is Unit.LB else 0
    mass_res = weight.MASS_RESOLUTION[m.unit]
    fat = (
        weight.UNSUCCESSFUL
        if m.body_fat is None
        else _scaled(m.body_fat, weight.TENTH, "body_fat", 0xFFFE)
    )
    body = _U16.pack(fat)
    if m.timestamp is not None:
        flags |= weight.BC_TIMESTAMP
        body += encode_date_time(m.timestamp)
    if m.user_id is not None:
        flags |= weight.BC_USER
        body += _U8.pack(m.user_id)
    optional: list[tuple[int, Decimal | None, Decimal, str]] = [
        (
            weight.BC_BASAL_METABOLISM,
            None if m.basal_metabolism is None else Decimal(m.basal_metabolism),
            Decimal(1),
            "basal_metabolism",
        ),
        (weight.BC_MUSCLE_PERCENTAGE, m.muscle_percentage, weight.TENTH, "muscle_percentage"),
        (weight.BC_MUSCLE_MASS, m.muscle_mass, mass_res, "muscle_mass"),
        (weight.BC_FAT_FREE_MASS, m.fat_free_mass, mass_res, "fat_free_mass"),
        (weight.BC_SOFT_LEAN_MASS, m.soft_lean_mass, mass_res, "soft_lean_mass"),
        (weight.BC_BODY_WATER_MASS, m.body_water_mass, mass_res, "body_water_mass"),
        (weight.BC_IMPEDANCE, m.impedance, weight.TENTH, "impedance"),
        (weight.BC_WEIGHT, m.weight, mass_res, "weight"),
        (weight.BC_HEIGHT, m.height, weight.HEIGHT_RESOLUTION[m.unit], "height"),
    ]
    for bit, value, res, name in optional:
        if value is not None:
            flags |= bit
            body += _U16.pack(_scaled(value, res, name))
    if m.multiple_packet:
        flags |= weight.BC_MULTIPLE_PACKET
    return _U16.pack(flags) + body


def _bp_common(
    unit: Unit,
    *,
    first: Number,
    second: Number,
    third: Number,
    timestamp: DateTime | None,
    pulse: Number | None,
    user_id: int | None,
    status: int | None,
) -> bytes:
    flags = bp.FLAG_KPA if unit is Unit.KPA else 0
    body = encode_sfloat(first) + encode_sfloat(second) + encode_sfloat(third)
    if timestamp is not None:
        flags |= bp.FLAG_TIMESTAMP
        body += encode_date_time(timestamp)
    if pulse is not None:
        flags |= bp.FLAG_PULSE
        body += encode_sfloat(pulse)
    if user_id is not None:
        flags |= bp.FLAG_USER
        body += _U8.pack(user_id)
    if status is not None:
        flags |= bp.FLAG_STATUS
        body += _U16.pack(status)
    return _U8.pack(flags) + body


def encode_blood_pressure_measurement(m: BloodPressureMeasurement) -> bytes:
    """Blood Pressure Measurement (0x2A35) bytes."""
    return _bp_common(
        m.unit,
        first=m.systolic,
        second=m.diastolic,
        third=m.mean_arterial,
        timestamp=m.timestamp,
        pulse=m.pulse,
        user_id=m.user_id,
        status=m.status,
    )


def encode_intermediate_cuff_pressure(m: IntermediateCuffPressure) -> bytes:
    """Intermediate Cuff Pressure (0x2A36) bytes; unused pressures are sent as NaN."""
    return _bp_common(
        m.unit,
        first=m.cuff_pressure,
        second=Special.NAN,
        third=Special.NAN,
        timestamp=m.timestamp,
        pulse=m.pulse,
        user_id=m.user_id,
        status=m.status,
    )


def encode_plx_spot_check(m: PlxSpotCheck) -> bytes:
    """PLX Spot-Check Measurement (0x2A5E) bytes."""
    flags = 0x10 if m.device_clock_not_set else 0
    body = encode_sfloat(m.spo2) + encode_sfloat(m.pulse_rate)
    if m.timestamp is not None:
        flags |= 0x01
        body += encode_date_time(m.timestamp)
    if m.measurement_status is not None:
        flags |= 0x02
        body += _U16.pack(m.measurement_status)
    if m.device_status is not None:
        flags |= 0x04
        body += m.device_status.to_bytes(3, "little")
    if m.perfusion_index is not None:
        flags |= 0x08
        body += encode_sfloat(m.perfusion_index)
    return _U8.pack(flags) + body


def _pair(a: Number | None, b: Number | None, name: str) -> bytes | None:
    if a is None and b is None:
        return None
    if a is None or b is None:
        raise ValueError(f"{name} SpO2 and pulse rate are sent together")
    return encode_sfloat(a) + encode_sfloat(b)


def encode_plx_continuous(m: PlxContinuous) -> bytes:
    """PLX Continuous Measurement (0x2A5F) bytes."""
    flags = 0
    body = encode_sfloat(m.spo2) + encode_sfloat(m.pulse_rate)
    fast = _pair(m.spo2_fast, m.pulse_rate_fast, "fast")
    if fast is not None:
        flags |= 0x01
        body += fast
    slow = _pair(m.spo2_slow, m.pulse_rate_slow, "slow")
    if slow is not None:
        flags |= 0x02
        body += slow
    if m.measurement_status is not None:
        flags |= 0x04
        body += _U16.pack(m.measurement_status)
    if m.device_status is not None:
        flags |= 0x08
        body += m.device_status.to_bytes(3, "little")
    if m.perfusion_index is not None:
        flags |= 0x10
        body += encode_sfloat(m.perfusion_index)
    return _U8.pack(flags) + body


def encode_plx_features(f: PlxFeatures) -> bytes:
    """PLX Features (0x2A60) bytes; support masks follow when their bits are set."""
    out = _U16.pack(f.supported)
    if f.supported & 0x01:
        out += _U16.pack(f.measurement_status_support or 0)
    if f.supported & 0x02:
        out += (f.device_status_support or 0).to_bytes(3, "little")
    return out


def encode_glucose_measurement(m: GlucoseMeasurement) -> bytes:
    """Glucose Measurement (0x2A18) bytes."""
    flags = glucose.FLAG_MOL_L if m.unit is Unit.MOL_L else 0
    if m.context_follows:
        flags |= glucose.FLAG_CONTEXT_FOLLOWS
    body = _U16.pack(m.sequence) + encode_date_time(m.base_time)
    if m.time_offset is not None:
        flags |= glucose.FLAG_TIME_OFFSET
        body += _S16.pack(m.time_offset)
    if m.concentration is not None:
        flags |= glucose.FLAG_CONCENTRATION
        type_location = ((m.sample_location or 0) << 4) | (m.sample_type or 0)
        body += encode_sfloat(m.concentration) + _U8.pack(type_location)
    if m.sensor_status is not None:
        flags |= glucose.FLAG_STATUS
        body += _U16.pack(m.sensor_status)
    return _U8.pack(flags) + body


def encode_glucose_measurement_context(c: GlucoseMeasurementContext) -> bytes:
    """Glucose Measurement Context (0x2A34) bytes."""
    flags = 0x20 if c.medication_unit == "L" else 0
    body = b""
    if c.extended_flags is not None:
        flags |= 0x80
        body += _U8.pack(c.extended_flags)
    if c.carbohydrate_id is not None or c.carbohydrate is not None:
        flags |= 0x01
        body += _U8.pack(c.carbohydrate_id or 0) + encode_sfloat(c.carbohydrate or Decimal(0))
    if c.meal is not None:
        flags |= 0x02
        body += _U8.pack(c.meal)
    if c.tester is not None or c.health is not None:
        flags |= 0x04
        body += _U8.pack(((c.health or 0) << 4) | (c.tester or 0))
    if c.exercise_duration is not None or c.exercise_intensity is not None:
        flags |= 0x08
        body += _U16.pack(c.exercise_duration or 0) + _U8.pack(c.exercise_intensity or 0)
    if c.medication_id is not None or c.medication is not None:
        flags |= 0x10
        body += _U8.pack(c.medication_id or 0) + encode_sfloat(c.medication or Decimal(0))
    if c.hba1c is not None:
        flags |= 0x40
        body += encode_sfloat(c.hba1c)
    return _U8.pack(flags) + _U16.pack(c.sequence) + body


def encode_racp_number_of_records(count: int) -> bytes:
    """RACP number-of-stored-records response (opcode 5, u16 count per the Glucose profile).

    Counts above 65535 are written as u32, as some devices do (the decoder accepts both).
    """
    head = bytes((racp.OP_COUNT_RESPONSE, racp.OPERATOR_NULL))
    return head + (_U16.pack(count) if count <= 0xFFFF else _U32.pack(count))


def encode_racp_response_code(request_opcode: int, response_code: int) -> bytes:
    """RACP response code (opcode 6) for ``request_opcode``."""
    return bytes((racp.OP_RESPONSE_CODE, racp.OPERATOR_NULL, request_opcode, response_code))


def encode_racp(packet: RacpNumberOfRecords | RacpResponseCode | RacpRequest) -> bytes:
    """Any RACP packet as bytes."""
    if isinstance(packet, RacpNumberOfRecords):
        return encode_racp_number_of_records(packet.count)
    if isinstance(packet, RacpResponseCode):
        return encode_racp_response_code(packet.request_opcode, packet.response_code)
    return bytes((packet.opcode, packet.operator)) + packet.operand


def encode_battery_level(level: BatteryLevel | int) -> bytes:
    """Battery Level (0x2A19) bytes."""
    value = level.level if isinstance(level, BatteryLevel) else level
    if not 0 <= value <= 100:
        raise ValueError(f"battery level {value} is outside 0..100")
    return _U8.pack(value)


def encode_device_information_string(value: DeviceInformationString | str) -> bytes:
    """A Device Information string as UTF-8 bytes."""
    if isinstance(value, DeviceInformationString):
        return value.raw
    return value.encode("utf-8")


_ENCODERS: dict[type, Callable[[Any], bytes]] = {
    DateTime: encode_date_time,
    CurrentTime: encode_current_time,
    WeightMeasurement: encode_weight_measurement,
    WeightScaleFeature: encode_weight_scale_feature,
    BodyCompositionMeasurement: encode_body_composition_measurement,
    BloodPressureMeasurement: encode_blood_pressure_measurement,
    IntermediateCuffPressure: encode_intermediate_cuff_pressure,
    PlxSpotCheck: encode_plx_spot_check,
    PlxContinuous: encode_plx_continuous,
    PlxFeatures: encode_plx_features,
    GlucoseMeasurement: encode_glucose_measurement,
    GlucoseMeasurementContext: encode_glucose_measurement_context,
    RacpNumberOfRecords: encode_racp,
    RacpResponseCode: encode_racp,
    RacpRequest: encode_racp,
    BatteryLevel: encode_battery_level,
    DeviceInformationString: encode_device_information_string,
}


def encode(value: Any) -> bytes:
    """Encode any decoded dataclass back to bytes (dispatch on its type)."""
    try:
        encoder = _ENCODERS[type(value)]
    except KeyError:
        raise TypeError(f"no encoder for {type(value).__name__}") from None
    return encoder(value)


__all__ = [
    "encode",
    "encode_battery_level",
    "encode_blood_pressure_measurement",
    "encode_body_composition_measurement",
    "encode_current_time",
    "encode_date_time",
    "encode_device_information_string",
    "encode_float",
    "encode_glucose_measurement",
    "encode_glucose_measurement_context",
    "encode_intermediate_cuff_pressure",
    "encode_plx_continuous",
    "encode_plx_features",
    "encode_plx_spot_check",
    "encode_racp",
    "encode_racp_number_of_records",
    "encode_racp_response_code",
    "encode_sfloat",
    "encode_weight_measurement",
    "encode_weight_scale_feature",
    "float_word",
    "sfloat_word",
]
