"""Property-based tests: encoder/decoder round trips and a fuzz test of every decoder.

All tests use ``derandomize=True`` so a failure reproduces exactly; hypothesis
prints the falsifying example (and ``print_blob=True`` the blob to replay it).
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.gatt import (
    REGISTRY,
    BatteryLevel,
    BloodPressureMeasurement,
    BodyCompositionMeasurement,
    CurrentTime,
    DateTime,
    DecodeError,
    GlucoseMeasurement,
    GlucoseMeasurementContext,
    IntermediateCuffPressure,
    PlxContinuous,
    PlxFeatures,
    PlxSpotCheck,
    RacpNumberOfRecords,
    RacpRequest,
    RacpResponseCode,
    Special,
    WeightMeasurement,
    WeightScaleFeature,
    decode,
    float_from_raw,
    sfloat_from_raw,
    to_json_dict,
)
from edge_agent.gatt.numbers import FLOAT_SPECIALS, SFLOAT_SPECIALS
from edge_agent.gatt.weight import HEIGHT_RESOLUTION, MASS_RESOLUTION, TENTH
from gateway.units import Unit
from simulators.gatt_encoders import encode, encode_float, encode_sfloat

PROPS = settings(
    derandomize=True,
    max_examples=300,
    print_blob=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u24 = st.integers(0, 0xFFFFFF)
sfloat_number = (
    st.integers(0, 0xFFFF).filter(lambda w: w not in SFLOAT_SPECIALS).map(sfloat_from_raw)
)
number = st.one_of(sfloat_number, st.sampled_from(list(Special)))
date_time = st.builds(DateTime, u16, u8, u8, u8, u8, u8)
mass_unit = st.sampled_from([Unit.KG, Unit.LB])


def opt(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


def scaled(res: Decimal, top: int = 0xFFFF) -> st.SearchStrategy[Decimal]:
    return st.integers(0, top).map(lambda raw: raw * res)


@st.composite
def weight_measurements(draw: st.DrawFn) -> WeightMeasurement:
    unit = draw(mass_unit)
    with_bmi = draw(st.booleans())
    return WeightMeasurement(
        unit=unit,
        weight=draw(opt(scaled(MASS_RESOLUTION[unit], 0xFFFE))),
        timestamp=draw(opt(date_time)),
        user_id=draw(opt(u8)),
        bmi=draw(scaled(TENTH)) if with_bmi else None,
        height=draw(scaled(HEIGHT_RESOLUTION[unit])) if with_bmi else None,
    )


@st.composite
def body_compositions(draw: st.DrawFn) -> BodyCompositionMeasurement:
    unit = draw(mass_unit)
    mass = opt(scaled(MASS_RESOLUTION[unit]))
    return BodyCompositionMeasurement(
        unit=unit,
        body_fat=draw(opt(scaled(TENTH, 0xFFFE))),
        timestamp=draw(opt(date_time)),
        user_id=draw(opt(u8)),
        basal_metabolism=draw(opt(u16)),
        muscle_percentage=draw(opt(scaled(TENTH))),
        muscle_mass=draw(mass),
        fat_free_mass=draw(mass),
        soft_lean_mass=draw(mass),
        body_water_mass=draw(mass),
        impedance=draw(opt(scaled(TENTH))),
        weight=draw(mass),
        height=draw(opt(scaled(HEIGHT_RESOLUTION[unit]))),
        multiple_packet=draw(st.booleans()),
    )


pressure_unit = st.sampled_from([Unit.MMHG, Unit.KPA])
blood_pressures = st.builds(
    BloodPressureMeasurement,
    pressure_unit,
    number,
    number,
    number,
    opt(date_time),
    opt(number),
    opt(u8),
    opt(u16),
)
cuff_pressures = st.builds(
    IntermediateCuffPressure, pressure_unit, number, opt(date_time), opt(number), opt(u8), opt(u16)
)
spot_checks = st.builds(
    PlxSpotCheck, number, number, opt(date_time), opt(u16), opt(u24), opt(number), st.booleans()
)


@st.composite
def continuous(draw: st.DrawFn) -> PlxContinuous:
    fast = draw(st.booleans())
    slow = draw(st.booleans())
    return PlxContinuous(
        draw(number),
        draw(number),
        draw(number) if fast else None,
        draw(number) if fast else None,
        draw(number) if slow else None,
        draw(number) if slow else None,
        draw(opt(u16)),
        draw(opt(u24)),
        draw(opt(number)),
    )


@st.composite
def plx_features(draw: st.DrawFn) -> PlxFeatures:
    supported = draw(u16)
    return PlxFeatures(
        supported,
        draw(u16) if supported & 1 else None,
        draw(u24) if supported & 2 else None,
    )


@st.composite
def glucose_measurements(draw: st.DrawFn) -> GlucoseMeasurement:
    has_conc = draw(st.booleans())
    return GlucoseMeasurement(
        sequence=draw(u16),
        base_time=draw(date_time),
        unit=draw(st.sampled_from([Unit.KG_L, Unit.MOL_L])),
        time_offset=draw(opt(st.integers(-0x8000, 0x7FFF))),
        concentration=draw(number) if has_conc else None,
        sample_type=draw(st.integers(0, 15)) if has_conc else None,
        sample_location=draw(st.integers(0, 15)) if has_conc else None,
        sensor_status=draw(opt(u16)),
        context_follows=draw(st.booleans()),
    )


@st.composite
def glucose_contexts(draw: st.DrawFn) -> GlucoseMeasurementContext:
    carb, tester, exercise, med = (draw(st.booleans()) for _ in range(4))
    return GlucoseMeasurementContext(
        sequence=draw(u16),
        extended_flags=draw(opt(u8)),
        carbohydrate_id=draw(u8) if carb else None,
        carbohydrate=draw(number) if carb else None,
        meal=draw(opt(u8)),
        tester=draw(st.integers(0, 15)) if tester else None,
        health=draw(st.integers(0, 15)) if tester else None,
        exercise_duration=draw(u16) if exercise else None,
        exercise_intensity=draw(u8) if exercise else None,
        medication_id=draw(u8) if med else None,
        medication=draw(number) if med else None,
        medication_unit=draw(st.sampled_from(["kg", "L"])),
        hba1c=draw(opt(number)),
    )


racp_packets = st.one_of(
    st.builds(RacpNumberOfRecords, st.integers(0, 0xFFFFFFFF)),
    st.builds(RacpResponseCode, u8, u8),
    st.builds(RacpRequest, st.integers(1, 4), u8, st.binary(max_size=6)),
)

ROUND_TRIPS: list[tuple[int, st.SearchStrategy[Any]]] = [
    (0x2A08, date_time),
    (0x2A2B, st.builds(CurrentTime, date_time, u8, u8, u8)),
    (0x2A9D, weight_measurements()),
    (0x2A9E, st.builds(WeightScaleFeature, st.integers(0, 0xFFFFFFFF))),
    (0x2A9C, body_compositions()),
    (0x2A35, blood_pressures),
    (0x2A36, cuff_pressures),
    (0x2A5E, spot_checks),
    (0x2A5F, continuous()),
    (0x2A60, plx_features()),
    (0x2A18, glucose_measurements()),
    (0x2A34, glucose_contexts()),
    (0x2A52, racp_packets),
    (0x2A19, st.builds(BatteryLevel, st.integers(0, 100))),
]


def _round_trip_test(uuid: int, strategy: st.SearchStrategy[Any]) -> Any:
    @PROPS
    @given(strategy)
    def run(value: Any) -> None:
        data = encode(value)
        assert decode(uuid, data) == value
        json.dumps(to_json_dict(value), allow_nan=False)

    run.__name__ = f"test_round_trip_{REGISTRY[uuid].name}"
    return run


for _uuid, _strategy in ROUND_TRIPS:
    _test = _round_trip_test(_uuid, _strategy)
    globals()[_test.__name__] = _test


@PROPS
@given(st.sampled_from(sorted(REGISTRY)), st.binary(max_size=40))
def test_fuzz_only_decode_error(uuid: int, data: bytes) -> None:
    """Random bytes never raise anything but DecodeError; what decodes re-encodes stably."""
    try:
        value = decode(uuid, data)
    except DecodeError as exc:
        assert exc.characteristic == uuid and 0 <= exc.offset <= len(data)
        return
    json.dumps(to_json_dict(value), allow_nan=False)
    again = decode(uuid, encode(value))
    assert again == value


@PROPS
@given(st.integers(0, 0xFFFF))
def test_sfloat_word_round_trip(word: int) -> None:
    value = sfloat_from_raw(word)
    assert sfloat_from_raw(int.from_bytes(encode_sfloat(value), "little")) == value


@PROPS
@given(st.integers(0, 0xFFFFFFFF))
def test_float_word_round_trip(word: int) -> None:
    value = float_from_raw(word)
    assert float_from_raw(int.from_bytes(encode_float(value), "little")) == value
    if word not in FLOAT_SPECIALS:
        assert isinstance(value, Decimal)
