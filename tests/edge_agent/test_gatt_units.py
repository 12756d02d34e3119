"""Unit tests of the GATT decoders: number formats, times, special values, conversions."""

from __future__ import annotations

import json
from decimal import Decimal as D

import pytest

from edge_agent.gatt import (
    JSON_KEYS,
    REGISTRY,
    BloodPressureMeasurement,
    BodyCompositionMeasurement,
    CurrentTime,
    DateTime,
    DecodeError,
    DeviceInformationString,
    GlucoseMeasurement,
    PlxSpotCheck,
    Special,
    WeightMeasurement,
    WeightScaleFeature,
    decode,
    float_from_raw,
    lookup,
    report_all_records,
    report_count_all,
    report_count_from,
    report_records_from,
    sfloat_from_raw,
    to_json_dict,
)
from edge_agent.gatt.racp import abort_operation
from edge_agent.gatt.times import add_minutes
from gateway.units import Unit

# --------------------------------------------------------------------------- SFLOAT / FLOAT


@pytest.mark.parametrize(
    ("raw", "special"),
    [
        (0x07FF, Special.NAN),
        (0x0800, Special.NRES),
        (0x07FE, Special.PLUS_INF),
        (0x0802, Special.MINUS_INF),
        (0x0801, Special.RESERVED),
    ],
)
def test_sfloat_specials(raw: int, special: Special) -> None:
    assert sfloat_from_raw(raw) is special


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        (0xF0BD, "18.9"),  # BLE.md
        (0xF201, "51.3"),  # BLE.md: exponent 0xF = -1 (two's complement), not 15 - 8 = 7
        (0x07FD, "2045"),  # ordinary, not special
        (0x17FF, "20470"),  # 0x7FF mantissa with exponent 1 is NOT NaN (whole word checked)
        (0x0FFF, "-1"),
        (0x8001, "1E-8"),
        (0x7001, "1E+7"),
        (0x0000, "0"),
        (0x0078, "120"),
        (0xE37A, "8.90"),
    ],
)
def test_sfloat_values_exact(raw: int, value: str) -> None:
    got = sfloat_from_raw(raw)
    assert isinstance(got, D) and got == D(value)


@pytest.mark.parametrize(
    ("raw", "special"),
    [
        (0x007FFFFF, Special.NAN),
        (0x00800000, Special.NRES),
        (0x007FFFFE, Special.PLUS_INF),
        (0x00800002, Special.MINUS_INF),
        (0x00800001, Special.RESERVED),
    ],
)
def test_float_specials(raw: int, special: Special) -> None:
    assert float_from_raw(raw) is special


def test_float_values() -> None:
    assert float_from_raw(0xFF00016C) == D("36.4")  # typical thermometer value
    assert float_from_raw(0x01FFFFFF) == D("-10")
    assert float_from_raw(0x807FFFFF) == D("8388607E-128")
    assert float_from_raw(0x017FFFFF) == D("83886070")  # not NaN: whole word checked


# --------------------------------------------------------------------------- Date Time


def test_date_time_invalid_parts() -> None:
    assert DateTime(2023, 13, 1, 0, 0, 0).invalid == ("month",)
    assert DateTime(2023, 2, 30, 0, 0, 0).invalid == ("day",)
    assert DateTime(2023, 1, 32, 24, 60, 60).invalid == ("day", "hour", "minute", "second")
    assert DateTime(1000, 1, 1, 0, 0, 0).invalid == ("year",)
    assert DateTime(2023, 2, 30, 0, 0, 0).to_datetime() is None
    parts = DateTime(2023, 0, 5, 1, 2, 3).parts()
    assert parts["unknown"] == ["month"] and parts["invalid"] == []


def test_add_minutes_overflow_and_unknown() -> None:
    assert add_minutes(DateTime(9999, 12, 31, 23, 59, 0), 5) is None
    assert add_minutes(DateTime(0, 1, 1, 0, 0, 0), 5) is None
    assert add_minutes(DateTime(2024, 1, 1, 0, 0, 0), -1).isoformat() == "2023-12-31T23:59:00"


def test_current_time() -> None:
    # 2024-06-06 12:04:44, Thursday, 128/256 s, manual update (Spezi CurrentTimeTests values)
    ct = decode(0x2A2B, bytes([0xE8, 0x07, 6, 6, 12, 4, 44, 4, 128, 0x01]))
    assert ct == CurrentTime(DateTime(2024, 6, 6, 12, 4, 44), 4, 128, 1)
    j = to_json_dict(ct)
    assert j["timestamp"] == "2024-06-06T12:04:44" and j["day_of_week"] == "thursday"
    assert j["status"] == ["manual_time_update"] and j["fractions256"] == 128
    assert to_json_dict(decode(0x2A2B, bytes(7) + bytes([9, 0, 0])))["day_of_week"] == (
        "reserved_9"
    )
    with pytest.raises(DecodeError):
        decode(0x2A2B, bytes(9))


# --------------------------------------------------------------------------- Weight


def test_weight_unsuccessful_is_not_a_number() -> None:
    m = decode(0x2A9D, bytes([0x00, 0xFF, 0xFF]))
    assert m == WeightMeasurement(Unit.KG, None)
    j = to_json_dict(m)
    assert j["measurement_unsuccessful"] is True and j["values"]["weight"] is None
    assert j["canonical"]["weight"] is None


def test_weight_unknown_user_and_imperial_canonical() -> None:
    m = decode(0x2A9D, bytes([0x0D, 0x54, 0x3D, 0xFF, 0xF5, 0x00, 0xA8, 0x02]))
    assert m.user_id == 0xFF and m.height_unit == "in"
    j = to_json_dict(m)
    assert j["status"] == ["user_unknown"] and j["unit"] == "lb"
    assert j["canonical"]["weight"] == pytest.approx(71.21400209)
    assert j["canonical"]["height"] == pytest.approx(1.7272)
    assert WeightMeasurement(Unit.KG, D(1), height=D("1.8"), bmi=D(20)).height_unit == "m"


def test_weight_scale_feature() -> None:
    # timestamp + multi-user + BMI, weight resolution 7 (0.005 kg), height resolution 3 (1 mm)
    raw = 0b111 | (7 << 3) | (3 << 7)
    f = decode(0x2A9E, raw.to_bytes(4, "little"))
    assert isinstance(f, WeightScaleFeature)
    assert f.timestamp_supported and f.multiple_users_supported and f.bmi_supported
    feats = to_json_dict(f)["features"]
    assert feats["weight_resolution_kg"] == 0.005 and feats["height_resolution_in"] == 0.1
    assert to_json_dict(decode(0x2A9E, bytes(4)))["features"]["weight_resolution_kg"] is None


def test_body_composition_all_fields_and_unsuccessful() -> None:
    flags = 0x1FFF  # every field, imperial, multiple packet
    data = flags.to_bytes(2, "little") + (0xFFFF).to_bytes(2, "little")
    data += bytes([0xE8, 0x07, 1, 2, 3, 4, 5, 7]) + bytes(2 * 9)
    m = decode(0x2A9C, data)
    assert isinstance(m, BodyCompositionMeasurement)
    assert m.measurement_unsuccessful and m.multiple_packet and m.unit is Unit.LB
    assert m.user_id == 7 and m.height == 0
    j = to_json_dict(m)
    assert j["status"] == ["multiple_packet_measurement"]
    assert j["canonical"]["weight"] == 0.0 and j["canonical"]["body_fat"] is None
    assert j["timestamp"] == "2024-01-02T03:04:05"


# --------------------------------------------------------------------------- Blood pressure


def test_bp_all_nan_is_unsuccessful() -> None:
    m = decode(0x2A35, bytes([0x04, 0xFF, 0x07, 0xFF, 0x07, 0xFF, 0x07, 0xFF, 0x07]))
    assert isinstance(m, BloodPressureMeasurement) and m.measurement_unsuccessful
    j = to_json_dict(m)
    assert j["values"] == {
        "systolic": None,
        "diastolic": None,
        "mean_arterial": None,
        "pulse": None,
    }
    assert j["special"] == dict.fromkeys(j["values"], "nan")
    assert j["measurement_unsuccessful"] is True


def test_bp_pulse_range_codes() -> None:
    def names(status: int) -> list[str]:
        data = bytes([0x10, 0x78, 0, 0x50, 0, 0x5A, 0]) + status.to_bytes(2, "little")
        return decode(0x2A35, data).status_names

    assert names(0x0008) == ["pulse_rate_exceeds_upper_limit"]
    assert names(0x0018) == ["pulse_rate_range_reserved"]
    assert names(0xFFC0) == []  # reserved bits are ignored


# --------------------------------------------------------------------------- Glucose


def _glucose(flags: int, tail: bytes, base: bytes = bytes([0xE8, 0x07, 3, 1, 8, 0, 0])) -> object:
    return decode(0x2A18, bytes([flags, 7, 0]) + base + tail)


def test_glucose_kg_per_l_to_mg_dl() -> None:
    # 90 x 10^-5 kg/L (0xB05A) = 90 mg/dL; type 1 capillary whole blood, finger
    m = _glucose(0x02, bytes([0x5A, 0xB0, 0x11]))
    assert isinstance(m, GlucoseMeasurement) and m.concentration == D("0.00090")
    assert m.mg_dl() == 90.0 and m.mmol_l() == pytest.approx(4.9956, abs=1e-4)
    j = to_json_dict(m)
    assert j["unit"] == "kg/L" and j["canonical"] == {"glucose": 90.0}
    assert j["timestamp"] == j["base_time"] == "2024-03-01T08:00:00"
    assert j["time_offset_minutes"] is None


def test_glucose_mol_per_l() -> None:
    # 55 x 10^-4 mol/L (0xC037) = 5.5 mmol/L = 99.088 mg/dL
    m = _glucose(0x06, bytes([0x37, 0xC0, 0xF9]))
    assert m.mmol_l() == 5.5 and m.mg_dl() == pytest.approx(99.088)
    j = to_json_dict(m)
    assert j["unit"] == "mol/L" and j["sample_type"] == "interstitial_fluid"
    assert j["sample_location"] == "not_available"


def test_glucose_lo_hi_per_sig() -> None:
    lo = _glucose(0x0A, bytes([0x5A, 0xB0, 0x11, 0x40, 0x00]))
    hi = _glucose(0x0A, bytes([0x5A, 0xB0, 0x11, 0x20, 0x00]))
    assert lo.lo_hi == "lo" and lo.status_names == ["result_too_low"]
    assert hi.lo_hi == "hi" and hi.status_names == ["result_too_high"]
    assert _glucose(0x02, bytes([0x5A, 0xB0, 0x11])).lo_hi is None


def test_glucose_special_and_unknown_base_time() -> None:
    m = _glucose(0x03, bytes([0x3C, 0x00, 0xFF, 0x07, 0xBB]), base=bytes(7))
    assert m.concentration is Special.NAN and m.measurement_unsuccessful
    assert m.mg_dl() is None and m.mmol_l() is None
    j = to_json_dict(m)
    assert j["timestamp"] is None and j["base_time"] is None
    assert j["special"] == {"glucose": "nan"} and j["time_offset_minutes"] == 60
    assert j["sample_type"] == "reserved_11" and j["sample_location"] == "reserved_11"


# --------------------------------------------------------------------------- PLX


def test_plx_invalid_and_clock_not_set() -> None:
    data = bytes([0x12, 0x62, 0x00, 0x48, 0x00, 0x00, 0x80])
    m = decode(0x2A5E, data)
    assert isinstance(m, PlxSpotCheck) and m.device_clock_not_set
    assert not m.drives_alerts
    assert to_json_dict(m)["status"] == ["invalid_measurement", "device_clock_not_set"]
    cont = decode(0x2A5F, bytes([0x04, 0xFF, 0x07, 0xFF, 0x07, 0x00, 0x20]))
    assert cont.measurement_unsuccessful and not cont.drives_alerts
    assert cont.canonical()["spo2"] is None


# --------------------------------------------------------------------------- Device info


def test_device_information_strings() -> None:
    s = decode(0x2A29, b"Omron\x00\x00")
    assert s == DeviceInformationString(0x2A29, "Omron", b"Omron\x00\x00")
    j = to_json_dict(s)
    assert (j["field"], j["text"], j["valid_utf8"]) == ("manufacturer_name", "Omron", True)
    bad = decode(0x2A25, b"SN\xff1")
    assert bad.text == "SN\ufffd1" and not bad.valid_utf8 and bad.field == "serial_number"
    assert decode(0x2A24, "Modèl".encode()).text == "Modèl"
    assert decode(0x2A26, b"").text == ""
    assert DeviceInformationString(0x2A00, "x", b"x").field == "string"


# --------------------------------------------------------------------------- RACP builders


def test_racp_builders() -> None:
    assert report_all_records() == bytes([1, 1])
    assert report_records_from(0x1234) == bytes([1, 3, 1, 0x34, 0x12])
    assert report_count_all() == bytes([4, 1])
    assert report_count_from(5) == bytes([4, 3, 1, 5, 0])
    assert abort_operation() == bytes([3, 0])
    req = decode(0x2A52, report_records_from(300))
    assert req.min_sequence == 300
    assert to_json_dict(req)["racp"]["operator"] == "greater_than_or_equal_to"
    assert decode(0x2A52, report_all_records()).min_sequence is None


# --------------------------------------------------------------------------- registry / errors


def test_lookup_forms() -> None:
    for spec in (
        "2a35",
        "0x2A35",
        "2A35",
        "blood_pressure_measurement",
        "Blood Pressure Measurement",
    ):
        assert lookup(spec).uuid == 0x2A35
    assert lookup(0x2A19).name == "battery_level"
    for bad in ("2a99", "nonsense", "0x", "12345"):
        with pytest.raises(KeyError):
            lookup(bad)


def test_decode_unregistered_and_error_fields() -> None:
    with pytest.raises(DecodeError) as err:
        decode(0x2A99, b"\x00")
    assert err.value.characteristic == 0x2A99 and err.value.offset == 0
    with pytest.raises(DecodeError) as err2:
        decode(0x2A9D, b"\x02\x10\x00\xe8")
    e = err2.value
    assert isinstance(e, ValueError) and e.offset == 3
    assert "timestamp.year" in str(e) and "0x2A9D" in str(e)


SAMPLES: dict[int, bytes] = {
    0x2A08: bytes([0xE8, 0x07, 1, 2, 3, 4, 5]),
    0x2A2B: bytes([0xE8, 0x07, 1, 2, 3, 4, 5, 2, 0, 0]),
    0x2A9D: bytes([0x00, 0xB0, 0x36]),
    0x2A9E: bytes(4),
    0x2A9C: bytes([0, 0, 0x32, 0]),
    0x2A35: bytes.fromhex("167d0050006600e10701100c273640000000"),
    0x2A36: bytes(7),
    0x2A5E: bytes(5),
    0x2A5F: bytes(5),
    0x2A60: bytes(2),
    0x2A18: bytes(10),
    0x2A34: bytes(3),
    0x2A52: bytes([6, 0, 1, 1]),
    0x2A19: bytes([50]),
    0x2A29: b"ACME",
    0x2A24: b"M1",
    0x2A25: b"S1",
    0x2A26: b"1.0",
}


@pytest.mark.parametrize("uuid", sorted(REGISTRY))
def test_json_shape_for_every_characteristic(uuid: int) -> None:
    j = to_json_dict(decode(uuid, SAMPLES[uuid]))
    assert list(j)[: len(JSON_KEYS)] == list(JSON_KEYS)
    assert j["characteristic"] == f"{uuid:04x}"
    assert isinstance(j["status"], list) and isinstance(j["values"], dict)
    json.dumps(j, allow_nan=False)


def test_reader_float32_and_bounds() -> None:
    from edge_agent.gatt.numbers import Reader

    r = Reader(0x2A1C, bytes([0x6C, 0x01, 0x00, 0xFF, 0xFF, 0xFF, 0x7F]))
    assert r.float32("temperature") == D("36.4")
    with pytest.raises(DecodeError) as err:
        r.float32("next")
    assert err.value.offset == 4 and "next: needs 4 byte(s)" in str(err.value)


def test_racp_count_response_needs_null_operator() -> None:
    with pytest.raises(DecodeError) as err:
        decode(0x2A52, bytes([5, 1, 2, 0]))
    assert err.value.offset == 1
