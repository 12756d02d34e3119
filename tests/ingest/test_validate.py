"""Validation: every reason code, flags, units and times (pure, no services)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.model import DeviceKind, Flag
from gateway.units import Metric
from gateway.wire import WireError, decode_readings
from ingest import validate as v
from tests.ingest.helpers import (
    ASSIGNED,
    NOW,
    MemWeights,
    payload,
    reading_doc,
    registry,
    wire,
)


def run(batch, reg=None, weights=None, **kw):
    return v.validate_readings(batch, registry=reg or registry(), weights=weights or MemWeights(),
                               now=NOW, future_tolerance_s=600, **kw)


def only_rejection(out):
    assert not out.readings
    assert len(out.rejections) == 1
    return out.rejections[0]


def test_valid_bp_reading_is_stored_in_canonical_units():
    out = run(wire(reading_doc(values=[
        {"metric": "systolic", "value": 17.0, "unit": "kPa"},
        {"metric": "diastolic", "value": 10.0, "unit": "kPa"}])))
    (r,) = out.readings
    assert r.patient_id == "pat-1" and r.practice_id == "prac-1"
    assert r.value(Metric.SYSTOLIC) == pytest.approx(127.51, abs=0.01)
    m = r.measurement(Metric.SYSTOLIC)
    assert m is not None and m.raw_value == 17.0 and m.raw_unit is not None
    assert r.measured_at == NOW - timedelta(minutes=5)
    assert not out.rejections


@pytest.mark.parametrize(("raw", "code"), [
    (b"not json", "not_json"),
    (b'{"schema": "vitalgate.readings/9", "hub_id": "hub-001"}', "schema_version"),
    (b'{"schema": "vitalgate.readings/1", "hub_id": "hub-001"}', "schema"),
    (payload(hub_id="hub-002"), "hub_mismatch"),
    (b"x" * 2_000_000, "too_large"),
])
def test_schema_codes_from_the_wire_decoder(raw, code):
    err = decode_readings(raw, expected_hub="hub-001")
    assert isinstance(err, WireError) and err.code == code
    assert code in v.SCHEMA_CODES


def test_unknown_hub():
    rej = only_rejection(run(wire(hub_id="hub-xyz")))
    assert rej.code == v.UNKNOWN_HUB and rej.field == "hub_id"


def test_unknown_device():
    rej = only_rejection(run(wire(serial="nope")))
    assert rej.code == v.UNKNOWN_DEVICE


def test_device_kind_mismatch():
    rej = only_rejection(run(wire(reading_doc(values=[
        {"metric": "weight", "value": 80, "unit": "kg"}]), kind="scale")))
    assert rej.code == v.DEVICE_KIND_MISMATCH


def test_device_not_assigned_to_this_hub():
    reg = registry()
    reg.hubs["hub-002"] = reg.hubs["hub-001"].__class__(id="hub-002", practice_id="prac-1")
    rej = only_rejection(run(wire(hub_id="hub-002"), reg))
    assert rej.code == v.DEVICE_NOT_ASSIGNED


def test_assignment_not_active_at_measured_time():
    reg = registry(end=NOW - timedelta(days=1))
    rej = only_rejection(run(wire(), reg))
    assert rej.code == v.ASSIGNMENT_INACTIVE
    assert rej.reading_id == "r1" and rej.payload and '"r1"' in rej.payload


def test_measured_before_assignment_start_goes_to_time_review():
    rej = only_rejection(run(wire(reading_doc(measured_at=ASSIGNED - timedelta(days=3)))))
    assert rej.code == v.TIME_BEFORE_ASSIGNMENT and rej.code in v.TIME_REVIEW_CODES


def test_future_beyond_tolerance_goes_to_time_review():
    ok = run(wire(reading_doc(measured_at=NOW + timedelta(seconds=599))))
    assert ok.readings
    rej = only_rejection(run(wire(reading_doc(measured_at=NOW + timedelta(hours=2)))))
    assert rej.code == v.TIME_FUTURE


def test_unset_clock_without_offset_goes_to_time_review():
    doc = reading_doc(measured_at=None, device_time="1970-01-01T00:05:00")
    rej = only_rejection(run(wire(doc)))
    assert rej.code == v.CLOCK_UNSET and rej.field == "readings[0].device_time"
    doc2 = reading_doc(measured_at=datetime(1970, 1, 1, tzinfo=UTC))
    assert only_rejection(run(wire(doc2))).code == v.CLOCK_UNSET


def test_unset_clock_corrected_by_the_hub_offset():
    true_time = NOW - timedelta(minutes=10)
    device_time = datetime(1970, 1, 2, 3, 4, 5)
    offset = (device_time.replace(tzinfo=UTC) - true_time).total_seconds()
    out = run(wire(reading_doc(measured_at=None, device_time=device_time.isoformat(),
                               clock_offset_s=offset)))
    (r,) = out.readings
    assert r.measured_at == true_time
    assert Flag.CLOCK_CORRECTED in r.flags


def test_device_offset_from_device_block_is_used():
    out = run(wire(reading_doc(measured_at=None, device_time="2026-03-02T11:00:00"),
                   clock_offset_s=-1800.0))
    assert out.readings[0].measured_at == datetime(2026, 3, 2, 11, 30, tzinfo=UTC)


def test_device_without_clock_uses_hub_receive_time():
    out = run(wire(reading_doc(measured_at=None)))
    assert out.readings[0].measured_at == NOW - timedelta(minutes=1)


def test_time_review_can_be_skipped_on_release():
    doc = reading_doc(measured_at=NOW + timedelta(days=2))
    assert run(wire(doc), skip_time_review=True).readings


@pytest.mark.parametrize(("kind", "values", "ok"), [
    ("scale", [{"metric": "weight", "value": 19.9, "unit": "kg"}], False),
    ("scale", [{"metric": "weight", "value": 20, "unit": "kg"}], True),
    ("scale", [{"metric": "weight", "value": 350, "unit": "kg"}], True),
    ("scale", [{"metric": "weight", "value": 772, "unit": "lb"}], False),  # 350.2 kg
    ("bp_cuff", [{"metric": "systolic", "value": 301, "unit": "mmHg"}], False),
    ("bp_cuff", [{"metric": "systolic", "value": 49, "unit": "mmHg"}], False),
    ("bp_cuff", [{"metric": "diastolic", "value": 19, "unit": "mmHg"}], False),
    ("bp_cuff", [{"metric": "diastolic", "value": 201, "unit": "mmHg"}], False),
    ("bp_cuff", [{"metric": "systolic", "value": 90, "unit": "mmHg"},
                 {"metric": "diastolic", "value": 90, "unit": "mmHg"}], False),
    ("pulse_oximeter", [{"metric": "spo2", "value": 49, "unit": "%"}], False),
    ("pulse_oximeter", [{"metric": "spo2", "value": 100, "unit": "%"}], True),
    ("pulse_oximeter", [{"metric": "pulse", "value": 24, "unit": "/min"}], False),
    ("pulse_oximeter", [{"metric": "pulse", "value": 251, "unit": "/min"}], False),
    ("glucometer", [{"metric": "glucose", "value": 9, "unit": "mg/dL"}], False),
    ("glucometer", [{"metric": "glucose", "value": 801, "unit": "mg/dL"}], False),
    ("glucometer", [{"metric": "glucose", "value": 44.4, "unit": "mmol/L"}], True),  # 799.9
])
def test_plausibility(kind, values, ok):
    reg = registry(kind=DeviceKind(kind))
    out = run(wire(reading_doc(values=values), kind=kind), reg)
    if ok:
        assert out.readings and not out.rejections
    else:
        assert only_rejection(out).code == v.IMPLAUSIBLE


def test_low_spo2_is_stored_but_flagged():
    reg = registry(kind=DeviceKind.PULSE_OXIMETER)
    out = run(wire(reading_doc(values=[{"metric": "spo2", "value": 65, "unit": "%"}]),
                   kind="pulse_oximeter"), reg)
    assert Flag.OUTSIDE_VALIDATED_ACCURACY in out.readings[0].flags


@pytest.mark.parametrize(("special", "flag"), [("lo", Flag.GLUCOSE_LO),
                                                ("hi", Flag.GLUCOSE_HI)])
def test_glucose_lo_hi_are_flags_not_numbers(special, flag):
    reg = registry(kind=DeviceKind.GLUCOMETER)
    limit = 20 if special == "lo" else 600
    out = run(wire(reading_doc(values=[{"metric": "glucose", "value": None, "unit": "mg/dL",
                                        "special": special}]), kind="glucometer"), reg)
    (r,) = out.readings
    assert flag in r.flags and r.value(Metric.GLUCOSE) is None
    out2 = run(wire(reading_doc(values=[{"metric": "glucose", "value": limit, "unit": "mg/dL",
                                         "special": special}]), kind="glucometer"), reg)
    m = out2.readings[0].measurement(Metric.GLUCOSE)
    assert m is not None and m.value is None and m.raw_value == limit


def test_failed_measurement_is_stored_flagged():
    out = run(wire(reading_doc(values=[{"metric": "systolic", "value": None, "unit": "mmHg",
                                        "special": "nan"}])))
    assert Flag.MEASUREMENT_UNSUCCESSFUL in out.readings[0].flags


def test_missing_value_and_unit_mismatch():
    out = run(wire(reading_doc(values=[{"metric": "systolic", "value": None, "unit": "mmHg"}])))
    assert only_rejection(out).code == v.MISSING_VALUE
    out = run(wire(reading_doc(values=[{"metric": "systolic", "value": 120, "unit": "kg"}])))
    assert only_rejection(out).code == v.UNIT_MISMATCH


def test_weight_jump_over_ten_percent_is_flagged_not_refused():
    reg = registry(kind=DeviceKind.SCALE)
    weights = MemWeights()
    day1 = reading_doc("w1", [{"metric": "weight", "value": 80, "unit": "kg"}],
                       measured_at=NOW - timedelta(days=1))
    day2 = reading_doc("w2", [{"metric": "weight", "value": 90, "unit": "kg"}])
    day3 = reading_doc("w3", [{"metric": "weight", "value": 81, "unit": "kg"}],
                       measured_at=NOW - timedelta(minutes=1))
    out = run(wire(day1, day2, day3, kind="scale"), reg, weights)
    flags = {r.id: r.flags for r in out.readings}
    assert Flag.POSSIBLY_OTHER_PERSON not in flags["w1"]
    assert Flag.POSSIBLY_OTHER_PERSON in flags["w2"]
    assert Flag.POSSIBLY_OTHER_PERSON not in flags["w3"]  # compared with w1, not the outlier


def test_one_bad_reading_in_a_payload_quarantines_only_that_one():
    good = reading_doc("ok-1")
    bad = reading_doc("bad-1", [{"metric": "systolic", "value": 999, "unit": "mmHg"}])
    out = run(wire(good, bad, reading_doc("ok-2")))
    assert [r.id for r in out.readings] == ["ok-1", "ok-2"]
    (rej,) = out.rejections
    assert rej.reading_id == "bad-1" and rej.field == "readings[1].values[0].value"
    assert rej.payload is not None
    again = decode_readings(rej.payload)
    assert not isinstance(again, WireError) and [r.id for r in again.readings] == ["bad-1"]


def test_late_readings_are_flagged():
    out = run(wire(reading_doc(measured_at=NOW - timedelta(hours=13))))
    assert Flag.LATE in out.readings[0].flags
