"""Byte-level vectors from independent public sources.

Every vector cites its source (repository + path).  Where a source disagrees
with the Bluetooth SIG definition, the expectation follows the SIG and the
comment says what the source gets wrong.  Sources:

* N = NordicSemiconductor/Android-BLE-Common-Library, ble-common/src/test/java/
  no/nordicsemi/android/ble/common/callback/...  (JUnit tests with raw bytes)
* S = StanfordSpezi/SpeziBluetooth, Tests/SpeziBluetoothServicesTests/...
* R = RonanB96/bluetooth-sig-python, tests/gatt/characteristics/...  (this is the
  "excess-8 exponent" library from BLE.md; several of its vectors are wrong)
"""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from edge_agent.gatt import (
    BatteryLevel,
    BloodPressureMeasurement,
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
    WeightMeasurement,
    decode,
    to_json_dict,
)
from gateway.units import Unit

N = (
    "NordicSemiconductor/Android-BLE-Common-Library:"
    "ble-common/src/test/java/no/nordicsemi/android/ble/common/callback/"
)
S = "StanfordSpezi/SpeziBluetooth:Tests/SpeziBluetoothServicesTests/"
R = "RonanB96/bluetooth-sig-python:tests/gatt/characteristics/"


def b(*octets: int) -> bytes:
    return bytes(octets)


# --------------------------------------------------------------------------- Blood pressure


def test_bp_full_nordic() -> None:
    # N + bps/BloodPressureMeasurementDataCallbackTest.java onBloodPressureMeasurementReceived_full
    data = b(
        0x1E,
        0x8A,
        0x00,
        0x58,
        0x00,
        0x78,
        0x00,
        0x00,
        0x00,
        0x04,
        0x11,
        0x14,
        0x29,
        0x3B,
        0x3C,
        0x00,
        0x01,
        0x27,
        0x00,
    )
    m = decode(0x2A35, data)
    assert isinstance(m, BloodPressureMeasurement)
    assert (m.systolic, m.diastolic, m.mean_arterial, m.pulse) == (138, 88, 120, 60)
    assert m.unit is Unit.MMHG and m.user_id == 1
    assert m.status_names == [
        "body_movement",
        "cuff_loose",
        "irregular_pulse",
        "improper_measurement_position",
    ]
    # Year 0 = unknown: Nordic leaves YEAR unset; we must not invent a date.
    assert m.timestamp == DateTime(0, 4, 17, 20, 41, 59)
    assert m.timestamp.unknown == ("year",)
    j = to_json_dict(m)
    assert j["timestamp"] is None and j["timestamp_parts"]["unknown"] == ["year"]


def test_bp_kpa_nordic() -> None:
    # N + bps/BloodPressureMeasurementDataCallbackTest.java onBloodPressureMeasurementReceived_some
    m = decode(0x2A35, b(0x15, 0xBD, 0xF0, 0xB, 0x0, 0x9F, 0xF0, 0x3C, 0x0, 0x12, 0x0))
    assert m.unit is Unit.KPA
    assert (m.systolic, m.diastolic, m.mean_arterial) == (D("18.9"), 11, D("15.9"))
    assert m.pulse == 60 and m.user_id is None and m.timestamp is None
    assert m.status_names == ["cuff_loose", "pulse_rate_below_lower_limit"]
    assert m.canonical()["systolic"] == pytest.approx(141.76, abs=0.01)


def test_bp_minimal_nordic() -> None:
    # N + bps/BloodPressureMeasurementDataCallbackTest.java
    #   onBloodPressureMeasurementReceived_minimal
    m = decode(0x2A35, b(0x00, 0xBD, 0xF0, 0xB, 0x0, 0x9F, 0xF0))
    assert m == BloodPressureMeasurement(Unit.MMHG, D("18.9"), D(11), D("15.9"))


def test_bp_too_short_nordic() -> None:
    # N + bps/BloodPressureMeasurementDataCallbackTest.java onInvalidDataReceived_toShort
    with pytest.raises(DecodeError) as err:
        decode(0x2A35, b(1, 2, 3, 4, 5, 6))
    assert err.value.characteristic == 0x2A35 and err.value.offset == 5


def test_bp_timestamp_missing_nordic() -> None:
    # N + bps/BloodPressureMeasurementDataCallbackTest.java onInvalidDataReceived_noTimestamp
    with pytest.raises(DecodeError) as err:
        decode(0x2A35, b(3, 2, 3, 4, 5, 6, 7))
    assert err.value.offset == 7


def test_icp_full_nordic() -> None:
    # N + bps/IntermediateCuffPressureDataCallbackTest.java onIntermediateCuffPressureReceived_full
    data = b(
        0x1E,
        0x04,
        0x00,
        0x00,
        0x00,
        0x00,
        0x00,
        0x00,
        0x00,
        0x04,
        0x11,
        0x14,
        0x29,
        0x3B,
        0x3C,
        0x00,
        0x01,
        0x27,
        0x00,
    )
    m = decode(0x2A36, data)
    assert isinstance(m, IntermediateCuffPressure)
    assert m.cuff_pressure == 4 and m.pulse == 60 and m.user_id == 1
    j = to_json_dict(m)
    assert set(j["values"]) == {"cuff_pressure", "pulse"}  # never systolic/diastolic


def test_icp_kpa_nordic() -> None:
    # N + bps/IntermediateCuffPressureDataCallbackTest.java onIntermediateCuffPressureReceived_some
    m = decode(0x2A36, b(0x15, 0x6F, 0xF0, 0x00, 0x00, 0x00, 0x00, 0x3C, 0x0, 0x12, 0x0))
    assert m.unit is Unit.KPA and m.cuff_pressure == D("11.1") and m.status == 0x12


def test_icp_minimal_nordic() -> None:
    # N + bps/IntermediateCuffPressureDataCallbackTest.java
    #   onIntermediateCuffPressureReceived_minimal
    m = decode(0x2A36, b(0x00, 0xD7, 0xF0, 0x00, 0x00, 0x00, 0x00))
    assert m == IntermediateCuffPressure(Unit.MMHG, D("21.5"))


def test_spezi_bp_status_bits() -> None:
    # S + BloodPressureTests.swift uses [.irregularPulse, .bodyMovementDetected]; per the SIG
    # those are status bits 2 and 0 (0x0005).  Bytes built from that description.
    m = decode(0x2A35, b(0x10, 0x78, 0x00, 0x50, 0x00, 0x3C, 0x00, 0x05, 0x00))
    assert m.status_names == ["body_movement", "irregular_pulse"]


# --------------------------------------------------------------------------- Glucose


def test_glucose_nordic_offset_is_added() -> None:
    # N + glucose/GlucoseMeasurementDataCallbackTest.java onGlucoseMeasurementReceived:
    # base 2019-02-27 11:10:30, offset -5 min; Nordic asserts MINUTE == 5 (base PLUS offset).
    data = b(0b011011, 1, 0, 0xE3, 0x07, 2, 27, 11, 10, 30, 0xFB, 0xFF, 30, 0, 0x12, 0b101, 0b1)
    m = decode(0x2A18, data)
    assert isinstance(m, GlucoseMeasurement)
    assert m.sequence == 1 and m.time_offset == -5
    assert m.user_facing_time().isoformat() == "2019-02-27T11:05:30"
    assert m.unit is Unit.KG_L and m.concentration == 30
    assert (m.sample_type, m.sample_location) == (2, 1)
    # Nordic's comment calls 0x0105 "Low battery, Device Fault, Sensor Temp too low"; per the SIG
    # bit 2 is "sample size insufficient" (general device fault is bit 10).
    assert m.status_names == [
        "device_battery_low",
        "sample_size_insufficient",
        "sensor_temperature_too_low",
    ]
    assert m.context_follows
    j = to_json_dict(m)
    assert j["base_time"] == "2019-02-27T11:10:30" and j["timestamp"] == "2019-02-27T11:05:30"
    assert (j["sample_type"], j["sample_location"]) == ("capillary_plasma", "finger")


def test_glucose_truncated_nordic() -> None:
    # N + glucose/GlucoseMeasurementDataCallbackTest.java
    #   onInvalidDataReceived ("time offset missing")
    data = b(0b011011, 0, 0, 0xE2, 0x07, 4, 26, 11, 9, 30, 30, 0, 0x12, 0b101, 0b1)
    with pytest.raises(DecodeError) as err:
        decode(0x2A18, data)
    assert err.value.offset == 15


def test_glucose_r_basic_flags_follow_sig() -> None:
    # R + test_glucose_measurement.py test 1: flags 0x00 with 12 bytes.  R reads a concentration
    # "120.0" (0x8078, excess-8).  Per the SIG flags 0x00 means no concentration field at all;
    # the trailing bytes are ignored.
    data = b(0x00, 0x2A, 0x00, 0xE8, 0x07, 0x03, 0x0F, 0x0E, 0x1E, 0x2D, 0x78, 0x80)
    m = decode(0x2A18, data)
    assert m.sequence == 42 and m.concentration is None and m.measurement_unsuccessful
    assert m.base_time.to_datetime().isoformat() == "2024-03-15T14:30:45"


def test_glucose_r_complex_per_sig() -> None:
    # R + test_glucose_measurement.py test 5 (flags 0x0F).  R maps bit 1 to mmol/L and bit 2 to
    # type/location and decodes 0x8073 as 115 (excess-8).  Per the SIG: bit 1 = concentration +
    # type/location, bit 2 = mol/L, bit 3 = status; 0x8073 = 115 x 10^-8 mol/L.
    data = b(
        0x0F,
        0xFF,
        0x00,
        0xE8,
        0x07,
        0x07,
        0x04,
        0x10,
        0x2D,
        0x14,
        0xEC,
        0xFF,
        0x73,
        0x80,
        0x33,
        0x20,
        0x00,
    )
    m = decode(0x2A18, data)
    assert m.sequence == 255 and m.time_offset == -20
    assert m.user_facing_time().isoformat() == "2024-07-04T16:25:20"
    assert m.unit is Unit.MOL_L and m.concentration == D("115E-8")
    assert (m.sample_type, m.sample_location) == (3, 3)
    assert m.status_names == ["result_too_high"]  # 0x0020 = bit 5 = too HIGH per SIG
    assert m.lo_hi == "hi"


def test_glucose_r_too_short() -> None:
    # R + test_glucose_measurement.py test_glucose_measurement_invalid_data
    with pytest.raises(DecodeError):
        decode(0x2A18, b(0x00, 0x01))


def test_glucose_context_full_nordic() -> None:
    # N + glucose/GlucoseMeasurementContextDataCallbackTest.java
    #   onGlucoseMeasurementContextReceived_full
    # Layout from the test (flags 0xFF, ext flags 0xB3, dinner, 100 g, casual, HCP/minor issues,
    # 60 s at 50 %, long-acting insulin, HbA1c 34.5 %).  SFLOAT bytes written out by hand:
    # 100 = 0x0064; "123.45 ml" cannot be an exact SFLOAT, 0xF4D3 = 123.5; 34.5 = 0xF159.
    data = b(
        0xFF,
        0x00,
        0x00,
        0xB3,
        0x03,
        0x64,
        0x00,
        0x04,
        0x12,
        0x3C,
        0x00,
        0x32,
        0x04,
        0xD3,
        0xF4,
        0x59,
        0xF1,
    )
    c = decode(0x2A34, data)
    assert isinstance(c, GlucoseMeasurementContext)
    assert c.sequence == 0 and c.extended_flags == 0xB3
    assert (c.carbohydrate_id, c.carbohydrate, c.meal) == (3, 100, 4)
    assert (c.tester, c.health) == (2, 1)
    assert (c.exercise_duration, c.exercise_intensity) == (60, 50)
    assert (c.medication_id, c.medication, c.medication_unit) == (4, D("123.5"), "L")
    assert c.hba1c == D("34.5")
    ctx = to_json_dict(c)["context"]
    assert ctx["carbohydrate_id"] == "dinner" and ctx["meal"] == "casual"
    assert ctx["tester"] == "health_care_professional" and ctx["health"] == "minor_health_issues"
    assert ctx["medication_id"] == "long_acting_insulin"


def test_glucose_context_empty_nordic() -> None:
    # N + glucose/GlucoseMeasurementContextDataCallbackTest.java
    #   onGlucoseMeasurementContextReceived_empty
    c = decode(0x2A34, b(0x00, 0x01, 0x00) + bytes(14))
    assert c == GlucoseMeasurementContext(sequence=1)


def test_glucose_context_truncated_nordic() -> None:
    # N + glucose/GlucoseMeasurementContextDataCallbackTest.java onInvalidDataReceived (5 bytes)
    with pytest.raises(DecodeError):
        decode(0x2A34, b(0xFF, 0x00, 0x00, 0xB3, 0x03))


# --------------------------------------------------------------------------- RACP


@pytest.mark.parametrize(
    ("data", "request_opcode", "response"),
    [
        # N + RecordAccessControlPointDataCallbackTest.java, one vector per test method:
        (b(6, 0, 1, 1), 1, "success"),  # onRecordAccessOperationCompleted
        (b(6, 0, 12, 2), 12, "op_code_not_supported"),  # ..._opCodeNotSupported
        (b(6, 0, 1, 3), 1, "invalid_operator"),  # ..._invalidOperator
        (b(6, 0, 2, 4), 2, "operator_not_supported"),  # ..._operatorNotSupported
        (b(6, 0, 1, 5), 1, "invalid_operand"),  # ..._invalidOperand
        (b(6, 0, 1, 6), 1, "no_records_found"),  # onRecordAccessOperationCompletedWithNoRecords
        (b(6, 0, 3, 7), 3, "abort_unsuccessful"),  # ..._abortUnsuccessful
        (b(6, 0, 2, 8), 2, "procedure_not_completed"),  # ..._procedureNotCompleted
        (b(6, 0, 2, 9), 2, "operand_not_supported"),  # ..._operandNotSupported
        (b(6, 0, 1, 10), 1, "reserved_10"),  # ..._unknownErrorCode
    ],
)
def test_racp_response_codes_nordic(data: bytes, request_opcode: int, response: str) -> None:
    r = decode(0x2A52, data)
    assert isinstance(r, RacpResponseCode) and r.request_opcode == request_opcode
    assert to_json_dict(r)["racp"]["response_code"] == response
    assert r.success == (response == "success")
    assert r.no_records == (response == "no_records_found")


@pytest.mark.parametrize(
    ("data", "count"),
    [
        (b(5, 0, 1), 1),  # N + RecordAccessControlPointDataCallbackTest.java ..._uint8
        (b(5, 0, 2, 1), 258),  # N + ... onNumberOfRecordsReceived_uint16 (the SIG size)
        (b(5, 0, 4, 3, 2, 1), 16909060),  # N + ... onNumberOfRecordsReceived_uint32
    ],
)
def test_racp_number_of_records_nordic(data: bytes, count: int) -> None:
    assert decode(0x2A52, data) == RacpNumberOfRecords(count)


@pytest.mark.parametrize(
    "data",
    [
        b(5, 0, 3, 2, 1),  # N + ... onNumberOfRecordsReceived_unsupportedLength
        b(6, 1, 1),  # N + ... onInvalidDataReceived_invalidOperator
        b(6, 0, 1),  # truncated response code
        b(9, 0),  # unknown opcode
    ],
)
def test_racp_invalid_nordic(data: bytes) -> None:
    with pytest.raises(DecodeError):
        decode(0x2A52, data)


def test_racp_requests_nordic() -> None:
    # N + ... onInvalidDataReceived_tooShort / _wrongOpCode: Nordic's *response* parser rejects
    # these, but they are well-formed requests (report all; report >= sequence 2), which the
    # device simulator must parse, so we decode them as requests.
    assert decode(0x2A52, b(1, 1)) == RacpRequest(1, 1)
    req = decode(0x2A52, b(1, 3, 1, 2, 0))
    assert isinstance(req, RacpRequest) and req.min_sequence == 2


# --------------------------------------------------------------------------- Date Time


def test_date_time_nordic() -> None:
    # N + DateTimeDataCallbackTest.java onDateTimeReceived_today
    dt = decode(0x2A08, b(0xE2, 0x07, 4, 17, 15, 51, 0))
    assert dt.to_datetime().isoformat() == "2018-04-17T15:51:00"


def test_date_time_unknown_date_nordic() -> None:
    # N + DateTimeDataCallbackTest.java onDateTimeReceived_dateNotKnown
    dt = decode(0x2A08, b(0, 0, 0, 0, 18, 26, 32))
    assert dt.unknown == ("year", "month", "day") and dt.to_datetime() is None
    j = to_json_dict(dt)
    assert j["timestamp"] is None
    assert j["timestamp_parts"]["hour"] == 18 and j["timestamp_parts"]["unknown"] == [
        "year",
        "month",
        "day",
    ]


@pytest.mark.parametrize(
    "data",
    [
        # N + DateTimeDataCallbackTest.java onInvalidDataReceived_dataTooShort
        b(0xE2, 0x07, 4, 17, 15, 51),
        b(),  # N + DateTimeDataCallbackTest.java onInvalidDataReceived_dataTooLong (empty data)
    ],
)
def test_date_time_invalid_nordic(data: bytes) -> None:
    with pytest.raises(DecodeError):
        decode(0x2A08, data)


# --------------------------------------------------------------------------- Battery


@pytest.mark.parametrize(
    ("data", "level"),
    [
        # N + battery/BatteryLevelDataCallbackTest.java onBatteryLevelChanged_full/lowBattery
        (b(0x64), 100),
        (b(0x0F), 15),
    ],
)
def test_battery_nordic(data: bytes, level: int) -> None:
    assert decode(0x2A19, data) == BatteryLevel(level)


@pytest.mark.parametrize(
    "data",
    [
        # N + battery/BatteryLevelDataCallbackTest.java onInvalidDataReceived_dataTooLong
        b(0x64, 0x00),
        b(0x65),  # N + ... onInvalidDataReceived_batteryLevelOutOfRange
    ],
)
def test_battery_invalid_nordic(data: bytes) -> None:
    with pytest.raises(DecodeError):
        decode(0x2A19, data)


# --------------------------------------------------------------------------- Pulse oximeter


def test_plx_continuous_very_simple_spezi() -> None:
    # S + PLXTests.swift testVerySimpleMeasurementCoding: both byte forms mean 100 % / 90 bpm.
    a = decode(0x2A5F, b(0, 232, 243, 132, 243))
    c = decode(0x2A5F, b(0, 100, 0, 90, 0))
    assert a == c == PlxContinuous(D(100), D(90))


def test_plx_continuous_simple_spezi() -> None:
    # S + PLXTests.swift testSimpleMeasurementCoding
    m = decode(0x2A5F, b(28, 95, 0, 90, 0, 32, 0, 0, 0, 0, 87, 240))
    assert m == PlxContinuous(
        D(95), D(90), measurement_status=0x0020, device_status=0, perfusion_index=D("8.7")
    )
    assert m.status_names == ["measurement_ongoing"] and m.drives_alerts


def test_plx_continuous_full_spezi() -> None:
    # S + PLXTests.swift testFullMeasurementCoding
    data = b(
        31, 222, 243, 202, 243, 202, 243, 90, 245, 212, 243, 178, 242, 32, 1, 0, 0, 0, 122, 227
    )
    m = decode(0x2A5F, data)
    assert (m.spo2, m.pulse_rate) == (99, 97)
    assert (m.spo2_fast, m.pulse_rate_fast, m.spo2_slow, m.pulse_rate_slow) == (97, 137, 98, 69)
    assert m.status_names == ["measurement_ongoing", "fully_qualified_data"]
    assert m.perfusion_index == D("8.9")


def test_plx_spot_check_spezi() -> None:
    # S + PLXTests.swift testSpotCheckMeasurementCoding
    data = b(15, 172, 243, 190, 245, 232, 7, 11, 29, 23, 8, 57, 32, 64, 34, 0, 0, 102, 227)
    m = decode(0x2A5E, data)
    assert isinstance(m, PlxSpotCheck)
    assert (m.spo2, m.pulse_rate, m.perfusion_index) == (94, 147, D("8.7"))
    assert m.timestamp.to_datetime().isoformat() == "2024-11-29T23:08:57"
    assert m.status_names == [
        "measurement_ongoing",
        "questionable_measurement",
        "equipment_malfunction",
        "low_perfusion",
    ]
    assert not m.drives_alerts  # bit 14 questionable


def test_plx_features_spezi() -> None:
    # S + PLXTests.swift testPLXFeaturesCoding
    f = decode(0x2A60, b(163, 0, 64, 16, 128, 1, 0))
    assert f == PlxFeatures(0x00A3, 0x1040, 0x000180)
    feats = to_json_dict(f)["features"]
    assert feats["supported"] == [
        "measurement_status_support",
        "device_and_sensor_status_support",
        "spo2pr_slow",
        "multiple_bonds",
    ]
    assert feats["measurement_status_support"] == ["early_estimated_data", "calibration_ongoing"]
    assert feats["device_status_support"] == ["nonpulsatile_signal", "questionable_pulse"]


def test_plx_r_excess8_trap() -> None:
    # R + test_plx_spot_check_measurement.py: "integer values have exponent_raw=8 (bias)" and
    # expects [0x62, 0x80] == 98.0.  Wrong: the exponent nibble is two's complement, so
    # 0x8062 = 98 x 10^-8.  A real oximeter sends 98 as 0x0062.
    m = decode(0x2A5E, b(0x00, 0x62, 0x80, 0x48, 0x80))
    assert m.spo2 == D("98E-8") and m.pulse_rate == D("72E-8")


def test_plx_r_measurement_status() -> None:
    # R + test_plx_spot_check_measurement.py vector 2: status 0x0080 = validated data (bit 7)
    m = decode(0x2A5E, b(0x02, 0x5F, 0x80, 0x3C, 0x80, 0x80, 0x00))
    assert m.measurement_status == 0x0080 and m.status_names == ["validated_data"]


# --------------------------------------------------------------------------- Weight scale


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        # R + test_weight_measurement.py test 1 (kg): 14000 x 0.005 kg
        (b(0x00, 0xB0, 0x36), WeightMeasurement(Unit.KG, D(70))),
        # R + test_weight_measurement.py test 2 (imperial): 15700 x 0.01 lb
        (b(0x01, 0x54, 0x3D), WeightMeasurement(Unit.LB, D(157))),
        # R + test_weight_measurement.py test 3 (timestamp)
        (
            b(0x02, 0xB0, 0x36, 0xE7, 0x07, 0x0C, 0x19, 0x0E, 0x1E, 0x2D),
            WeightMeasurement(Unit.KG, D(70), DateTime(2023, 12, 25, 14, 30, 45)),
        ),
        # R + test_weight_measurement.py test 5: R treats flag bit 4 as "height present"; per
        # the SIG bit 4 is reserved (BMI and height travel together under bit 3), so only the
        # weight is read and the extra bytes are ignored.
        (b(0x10, 0xB0, 0x36, 0xD6, 0x06), WeightMeasurement(Unit.KG, D(70))),
        # R + test_weight_measurement.py test 6 (0x1F): bit 4 reserved; bit 3 -> BMI + height
        (
            b(
                0x1F,
                0x54,
                0x3D,
                0xE7,
                0x07,
                0x0C,
                0x19,
                0x0E,
                0x1E,
                0x2D,
                0x03,
                0xF5,
                0x00,
                0xA8,
                0x02,
            ),
            WeightMeasurement(
                Unit.LB, D(157), DateTime(2023, 12, 25, 14, 30, 45), 3, D("24.5"), D(68)
            ),
        ),
    ],
)
def test_weight_r(data: bytes, expected: WeightMeasurement) -> None:
    assert decode(0x2A9D, data) == expected


@pytest.mark.parametrize(
    "data",
    [
        # R + test_weight_measurement.py test 4 (0x0C): R reads BMI without height; per the SIG
        # bit 3 means BMI AND height, so the value is truncated.
        b(0x0C, 0xB0, 0x36, 0x05, 0xF5, 0x00),
        b(0x00, 0x01),  # R + test_weight_measurement.py test_weight_measurement_invalid_data
        b(0x00),  # R + same test, "missing weight data"
    ],
)
def test_weight_invalid_r(data: bytes) -> None:
    with pytest.raises(DecodeError):
        decode(0x2A9D, data)


# --------------------------------------------------------------------------- Body composition


@pytest.mark.parametrize(
    ("data", "fields"),
    [
        # R + test_body_composition_measurement.py test 1
        (b(0x00, 0x00, 0x32, 0x00), {"body_fat": D(5)}),
        # R + test 2 (imperial + timestamp)
        (
            b(0x03, 0x00, 0x96, 0x00, 0xE8, 0x07, 0x06, 0x14, 0x0A, 0x1E, 0x00),
            {"body_fat": D(15), "unit": Unit.LB, "timestamp": DateTime(2024, 6, 20, 10, 30, 0)},
        ),
        # R + test 3 (user id + basal metabolism 1600 kJ)
        (
            b(0x0C, 0x00, 0x78, 0x00, 0x05, 0x40, 0x06),
            {"body_fat": D(12), "user_id": 5, "basal_metabolism": 1600},
        ),
        # R + test 4: R reads muscle MASS before muscle PERCENTAGE.  The SIG order follows the
        # flag bits (BCS v1.0.0 3.2.1.6 Muscle Percentage, then 3.2.1.7 Muscle Mass), so 0x0BB8
        # is 300.0 % and 0x00C8 is 1 kg.
        (
            b(0x30, 0x00, 0x64, 0x00, 0xB8, 0x0B, 0xC8, 0x00),
            {"body_fat": D(10), "muscle_percentage": D(300), "muscle_mass": D(1)},
        ),
        # R + test 5 (fat free, soft lean, body water masses)
        (
            b(0xC0, 0x01, 0x50, 0x00, 0xE0, 0x2E, 0x10, 0x27, 0x40, 0x1F),
            {
                "body_fat": D(8),
                "fat_free_mass": D(60),
                "soft_lean_mass": D(50),
                "body_water_mass": D(40),
            },
        ),
        # R + test 6 (impedance 800 ohm, weight 70 kg, height 1 m)
        (
            b(0x00, 0x0E, 0x46, 0x00, 0x40, 0x1F, 0xB0, 0x36, 0xE8, 0x03),
            {"body_fat": D(7), "impedance": D(800), "weight": D(70), "height": D(1)},
        ),
    ],
)
def test_body_composition_r(data: bytes, fields: dict[str, object]) -> None:
    m = decode(0x2A9C, data)
    for name, value in fields.items():
        assert getattr(m, name) == value, name
