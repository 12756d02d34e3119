"""Decoded measurement -> wire reading: values, specials, flags, the four times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from edge_agent.gatt import (
    DateTime,
    GlucoseMeasurement,
    IntermediateCuffPressure,
    PlxSpotCheck,
    Special,
    WeightMeasurement,
    decode,
)
from edge_agent.readings import HubTime, to_wire
from gateway.model import DeviceKind, Flag
from gateway.units import Unit
from gateway.wire import WireReadings
from tests.edge_agent.scripted import bp, dt, glucose

TZ = ZoneInfo("Europe/Berlin")
RECV = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
HUB = HubTime(received_at=RECV, tz=TZ)
WALL = datetime(2026, 6, 1, 11, 55)  # Berlin summer time = 09:55 UTC


def test_bp_values_and_times_without_offset() -> None:
    r = to_wire(DeviceKind.BP_CUFF, "S", decode(0x2A35, bp(WALL, 131, 85, 64)), HUB)
    assert r is not None
    assert [(v.metric, v.value, v.unit) for v in r.values] == [
        ("systolic", 131.0, "mmHg"), ("diastolic", 85.0, "mmHg"),
        ("mean_arterial", 100.0, "mmHg"), ("pulse", 64.0, "/min")]
    assert r.device_time == "2026-06-01T11:55:00"
    assert r.measured_at == datetime(2026, 6, 1, 9, 55, tzinfo=UTC)
    assert r.clock_offset_s is None and r.received_at == RECV and r.flags == []


def test_offset_corrects_and_flags_beyond_bound() -> None:
    hub = HubTime(received_at=RECV, tz=TZ, clock_offset_s=-600.0, bound_s=120)
    r = to_wire(DeviceKind.BP_CUFF, "S", decode(0x2A35, bp(WALL)), hub)
    assert r is not None and r.measured_at == datetime(2026, 6, 1, 10, 5, tzinfo=UTC)
    assert Flag.CLOCK_CORRECTED in r.flags and r.clock_offset_s == -600.0
    small = HubTime(received_at=RECV, tz=TZ, clock_offset_s=30.0, bound_s=120)
    r2 = to_wire(DeviceKind.BP_CUFF, "S", decode(0x2A35, bp(WALL)), small)
    assert r2 is not None and Flag.CLOCK_CORRECTED not in r2.flags
    assert r2.id == r.id  # the offset never changes identity


def test_no_timestamp_uses_receive_time() -> None:
    r = to_wire(DeviceKind.BP_CUFF, "S", decode(0x2A35, bp(None)), HUB)
    assert r is not None and r.device_time is None and r.measured_at == RECV


def test_unknown_device_date_is_not_a_date() -> None:
    m = WeightMeasurement(unit=Unit.KG, weight=Decimal("70"), timestamp=DateTime(0, 0, 0, 8, 0, 0))
    r = to_wire(DeviceKind.SCALE, "S", m, HUB)
    assert r is not None and r.device_time is None and r.measured_at is None


def test_plx_clock_not_set_without_offset_has_no_measured_at() -> None:
    m = PlxSpotCheck(spo2=Decimal(95), pulse_rate=Decimal(60), timestamp=dt(WALL),
                     device_clock_not_set=True)
    r = to_wire(DeviceKind.PULSE_OXIMETER, "S", m, HUB)
    assert r is not None and r.measured_at is None and r.device_time is not None


def test_intermediate_cuff_pressure_is_not_a_reading() -> None:
    m = IntermediateCuffPressure(unit=Unit.MMHG, cuff_pressure=Decimal(150))
    assert to_wire(DeviceKind.BP_CUFF, "S", m, HUB) is None
    assert to_wire(DeviceKind.SCALE, "S", decode(0x2A35, bp(WALL)), HUB) is None


def test_glucose_sequence_units_and_hi() -> None:
    r = to_wire(DeviceKind.GLUCOMETER, "G", decode(0x2A18, glucose(7, WALL, 95)), HUB)
    assert r is not None and r.sequence == 7
    assert r.values[0].unit == "kg/L" and r.values[0].value == 0.00095
    hi = GlucoseMeasurement(sequence=8, base_time=dt(WALL), concentration=Special.NAN,
                            sensor_status=1 << 5, time_offset=-30)
    rh = to_wire(DeviceKind.GLUCOMETER, "G", hi, HUB)
    assert rh is not None
    assert rh.flags == [Flag.GLUCOSE_HI]
    assert rh.values[0].value is None and rh.values[0].special == "hi"
    assert rh.device_time == (WALL - timedelta(minutes=30)).isoformat()  # offset is added


def test_failed_measurement_is_an_event_that_survives_the_wire() -> None:
    r = to_wire(DeviceKind.BP_CUFF, "S", decode(0x2A35, bp(WALL, failed=True)), HUB)
    assert r is not None and r.flags == [Flag.MEASUREMENT_UNSUCCESSFUL]
    batch = WireReadings.model_validate({
        "schema": "vitalgate.readings/1", "hub_id": "h", "readings": [r.model_dump()],
        "device": {"serial": "S", "kind": "bp_cuff"}})
    again = WireReadings.model_validate_json(batch.model_dump_json(by_alias=True))
    assert again.readings[0].values[0].value is None


_walls = st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2090, 1, 1)).map(
    lambda d: d.replace(microsecond=0))


@given(_walls, st.integers(40, 260), st.integers(30, 150), st.integers(30, 200),
       st.floats(-86_400, 86_400), st.integers(0, 10**6))
def test_id_stable_across_resends_offsets_and_receive_times(wall, sys_, dia, pulse, offset,
                                                            later_s) -> None:
    """The same bytes give the same id whatever the hub's clock view; other values differ."""
    data = bp(wall, sys_, dia, pulse)
    first = to_wire(DeviceKind.BP_CUFF, "SN", decode(0x2A35, data), HUB)
    resent = to_wire(DeviceKind.BP_CUFF, "SN", decode(0x2A35, data), HubTime(
        received_at=RECV + timedelta(seconds=later_s), tz=ZoneInfo("Asia/Tokyo"),
        clock_offset_s=offset))
    other = to_wire(DeviceKind.BP_CUFF, "SN", decode(0x2A35, bp(wall, sys_ + 1, dia, pulse)), HUB)
    assert first is not None and resent is not None and other is not None
    assert first.id == resent.id != other.id
