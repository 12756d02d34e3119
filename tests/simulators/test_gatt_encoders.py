"""Tests of the GATT encoders used by the device simulators."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from edge_agent.gatt import (
    BatteryLevel,
    BloodPressureMeasurement,
    DateTime,
    DeviceInformationString,
    GlucoseMeasurement,
    GlucoseMeasurementContext,
    IntermediateCuffPressure,
    PlxContinuous,
    PlxFeatures,
    RacpNumberOfRecords,
    Special,
    WeightMeasurement,
    decode,
)
from gateway.units import Unit
from simulators.gatt_encoders import (
    encode,
    encode_battery_level,
    encode_device_information_string,
    encode_float,
    encode_glucose_measurement,
    encode_intermediate_cuff_pressure,
    encode_racp_number_of_records,
    encode_racp_response_code,
    encode_sfloat,
    encode_weight_measurement,
    float_word,
    sfloat_word,
)


def test_acceptance_bytes_re_encode_exactly() -> None:
    data = bytes.fromhex("167d0050006600e10701100c273640000000")
    assert encode(decode(0x2A35, data)) == data


@pytest.mark.parametrize(
    ("value", "exponent", "word"),
    [
        (D("18.9"), None, 0xF0BD),
        (D("51.3"), None, 0xF201),
        (D(120), None, 0x0078),  # exponent 0, as cuffs send it
        (D(120), -1, 0xF4B0),
        (D(0), None, 0x0000),
        (D(2045), None, 0x07FD),
        (D(20460), None, 0x17FE),  # 2046 x 10^1: fine, only the exponent-0 word is special
        (D("-0.5"), None, 0xFFFB),
        (Special.NAN, None, 0x07FF),
        (Special.NRES, None, 0x0800),
        (Special.PLUS_INF, None, 0x07FE),
        (Special.MINUS_INF, None, 0x0802),
        (Special.RESERVED, None, 0x0801),
    ],
)
def test_sfloat_words(value: D | Special, exponent: int | None, word: int) -> None:
    assert sfloat_word(value, exponent) == word
    assert encode_sfloat(value, exponent) == word.to_bytes(2, "little")


@pytest.mark.parametrize(
    ("value", "exponent"),
    [
        (D(2046), None),  # would be the +INF word
        (D(2047), None),  # would be the NaN word
        (D(-2048), None),  # would be the NRes word
        (D("0.123456789"), None),  # too many digits
        (D("18.95"), -1),  # not a multiple of 10^-1
        (D(1), 9),  # exponent out of range
    ],
)
def test_sfloat_unrepresentable(value: D, exponent: int | None) -> None:
    with pytest.raises(ValueError, match="cannot be represented"):
        sfloat_word(value, exponent)


def test_float_words() -> None:
    assert float_word(D("36.4")) == 0xFF00016C
    assert float_word(Special.NAN) == 0x007FFFFF
    assert encode_float(D(-10)) == (0x00FFFFF6).to_bytes(4, "little")
    with pytest.raises(ValueError):
        float_word(D(0x7FFFFF))


def test_weight_encoding_rules() -> None:
    assert encode_weight_measurement(WeightMeasurement(Unit.KG, None)) == bytes([0, 0xFF, 0xFF])
    assert encode(WeightMeasurement(Unit.LB, D(157))) == bytes([0x01, 0x54, 0x3D])
    with pytest.raises(ValueError, match=r"multiple of 0\.005"):
        encode(WeightMeasurement(Unit.KG, D("70.001")))
    with pytest.raises(ValueError, match="together"):
        encode(WeightMeasurement(Unit.KG, D(70), bmi=D(20)))
    with pytest.raises(ValueError):
        encode(WeightMeasurement(Unit.KG, D("327.675")))  # raw 0xFFFF is reserved for failure


def test_icp_sends_nan_in_unused_fields() -> None:
    data = encode_intermediate_cuff_pressure(IntermediateCuffPressure(Unit.MMHG, D(56)))
    assert data == bytes([0x00, 0x38, 0x00, 0xFF, 0x07, 0xFF, 0x07])


def test_bp_with_everything() -> None:
    m = BloodPressureMeasurement(
        Unit.KPA, D("18.9"), D(11), D("15.9"), DateTime(2024, 1, 2, 3, 4, 5), D(60), 0xFF, 0x22
    )
    data = encode(m)
    assert data[0] == 0x1F and decode(0x2A35, data) == m


def test_glucose_encoding() -> None:
    m = GlucoseMeasurement(
        sequence=7,
        base_time=DateTime(2024, 3, 1, 8, 0, 0),
        unit=Unit.KG_L,
        time_offset=-5,
        concentration=D("0.00090"),
        sample_type=1,
        sample_location=1,
        sensor_status=0x0040,
        context_follows=True,
    )
    data = encode_glucose_measurement(m)
    assert data[0] == 0x1B and data[10:12] == (-5).to_bytes(2, "little", signed=True)
    assert data[12:15] == bytes([0x09, 0xC0, 0x11])  # 9 x 10^-4 kg/L, exponent nearest 0
    assert decode(0x2A18, data) == m


def test_glucose_context_encoding() -> None:
    c = GlucoseMeasurementContext(sequence=3, meal=1, hba1c=D("6.5"), medication_unit="L")
    data = encode(c)
    assert data == bytes([0x62, 3, 0, 1, 0x41, 0xF0])
    assert decode(0x2A34, data) == c


def test_plx_pairs_must_be_complete() -> None:
    with pytest.raises(ValueError, match="fast"):
        encode(PlxContinuous(D(97), D(60), spo2_fast=D(97)))
    assert encode(PlxFeatures(0x0003)) == bytes([3, 0, 0, 0, 0, 0, 0])


def test_racp_and_misc() -> None:
    assert encode_racp_number_of_records(258) == bytes([5, 0, 2, 1])
    assert encode(RacpNumberOfRecords(16909060)) == bytes([5, 0, 4, 3, 2, 1])
    assert encode_racp_response_code(1, 6) == bytes([6, 0, 1, 6])
    assert encode_battery_level(90) == b"\x5a" == encode(BatteryLevel(90))
    with pytest.raises(ValueError):
        encode_battery_level(101)
    assert encode_device_information_string("Omron") == b"Omron"
    assert encode(DeviceInformationString(0x2A29, "x", b"x\x00")) == b"x\x00"
    with pytest.raises(TypeError):
        encode(object())
