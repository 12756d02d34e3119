"""Device simulators: their GATT bytes round-trip through the edge decoders.

Every characteristic the devices expose is decoded by :mod:`edge_agent.gatt`
here, with every option (units, failed measurements, LO/HI, clocks, RACP
operators, body composition, BMI, intermediate cuff pressure, continuous
PLX), so these tests exercise the decoders from realistic devices.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from edge_agent.gatt import (
    BatteryLevel,
    BloodPressureMeasurement,
    BodyCompositionMeasurement,
    CurrentTime,
    DateTime,
    DecodeError,
    DeviceInformationString,
    GlucoseMeasurement,
    GlucoseMeasurementContext,
    IntermediateCuffPressure,
    PlxContinuous,
    PlxFeatures,
    PlxSpotCheck,
    RacpNumberOfRecords,
    RacpResponseCode,
    Special,
    WeightMeasurement,
    WeightScaleFeature,
    decode,
    lookup,
    report_all_records,
    report_count_all,
    report_count_from,
    report_records_from,
    to_json_dict,
)
from edge_agent.gatt import racp as racp_mod
from edge_agent.gatt import times as times_mod
from gateway.model import DeviceKind
from gateway.units import Metric, Unit
from simulators import gatt_encoders as enc
from simulators.devices import (
    DeviceClock,
    DeviceSet,
    DeviceSimulationError,
    SimulatedBpCuff,
    SimulatedDevice,
    SimulatedGlucometer,
    SimulatedOximeter,
    SimulatedScale,
    make_device,
)
from simulators.physiology import PERFECT, Sample, simulate_patient, stable_profile

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # 07:00 in New York
NY = "America/New_York"


def sample(kind: DeviceKind, at: datetime = T0, context: str = "morning",
           **values: float) -> Sample:
    return Sample("pt", at, kind, {Metric(k): v for k, v in values.items()}, context)


def decoded(notes: list[tuple[int, bytes]]) -> list[object]:
    return [decode(u, b) for u, b in notes]


def measurements(notes: list[tuple[int, bytes]], typ: type) -> list:
    return [d for d in decoded(notes) if isinstance(d, typ)]


# --------------------------------------------------------------------------- common


@pytest.mark.parametrize("kind", list(DeviceKind))
def test_every_readable_characteristic_decodes(kind: DeviceKind) -> None:
    d = make_device(kind, f"SER-{kind}", timezone=NY, battery=57)
    seen = set()
    for uuid in d.characteristics():
        try:
            data = d.read(uuid, T0)
        except DeviceSimulationError:
            continue
        value = decode(uuid, data)
        to_json_dict(value)
        seen.add(type(value))
    assert {DeviceInformationString, BatteryLevel, CurrentTime} <= seen
    assert decode(0x2A25, d.read(0x2A25)).text == f"SER-{kind}"
    assert decode(0x2A19, d.read(0x2A19)) == BatteryLevel(57)
    ct = decode(0x2A2B, d.read(0x2A2B, T0))
    assert ct.date_time == DateTime(2026, 3, 2, 7, 0, 0)
    with pytest.raises(DeviceSimulationError):
        d.read(0x2A2B)  # the clock needs the true time
    with pytest.raises(DeviceSimulationError):
        d.read(0x1234)
    with pytest.raises(DeviceSimulationError):
        d.write(0x1234, b"\x00", T0)


def test_feature_characteristics() -> None:
    scale = SimulatedScale("S", user_id=1, height_m=1.75)
    f = decode(0x2A9E, scale.read(0x2A9E))
    assert isinstance(f, WeightScaleFeature)
    assert f.timestamp_supported and f.multiple_users_supported and f.bmi_supported
    to_json_dict(f)
    ox = SimulatedOximeter("O")
    pf = decode(0x2A60, ox.read(0x2A60))
    assert isinstance(pf, PlxFeatures) and pf.measurement_status_support == 0xFFE0
    to_json_dict(pf)


def test_address_is_stable_and_mac_shaped() -> None:
    a = SimulatedScale("SC-1").address
    assert a == SimulatedScale("SC-1").address != SimulatedScale("SC-2").address
    assert len(a.split(":")) == 6


# --------------------------------------------------------------------------- scale


@pytest.mark.parametrize(("unit", "kg", "expected"), [
    (Unit.KG, 92.735, Decimal("92.735")),
    (Unit.LB, 92.735, Decimal("204.45")),
])
def test_scale_round_trip(unit: Unit, kg: float, expected: Decimal) -> None:
    scale = SimulatedScale("SC-1", unit=unit, timezone=NY)
    notes = scale.measure(sample(DeviceKind.SCALE, weight=kg), connected=True)
    (m,) = measurements(notes, WeightMeasurement)
    assert m.unit is unit and m.weight == expected
    assert m.timestamp == DateTime(2026, 3, 2, 7, 0, 0)
    assert to_json_dict(m)["canonical"]["weight"] == pytest.approx(kg, abs=0.003)


def test_scale_failed_measurement_is_0xffff() -> None:
    scale = SimulatedScale("SC-1", unit=Unit.KG)
    scale.measure(None, at=T0, failed=True)
    (u, data), = scale.connect()
    assert data[1:3] == b"\xff\xff"
    m = decode(u, data)
    assert m.weight is None and m.measurement_unsuccessful


def test_scale_bmi_height_user_and_body_composition() -> None:
    for unit in (Unit.KG, Unit.LB):
        scale = SimulatedScale("SC-1", unit=unit, user_id=2, height_m=1.8,
                               body_composition=True)
        notes = scale.measure(sample(DeviceKind.SCALE, weight=81.0), connected=True)
        (w,) = measurements(notes, WeightMeasurement)
        assert w.user_id == 2 and w.bmi == Decimal("25.0")
        assert w.height == (Decimal("1.800") if unit is Unit.KG else Decimal("70.9"))
        (bc,) = measurements(notes, BodyCompositionMeasurement)
        assert bc.weight == w.weight and bc.body_fat is not None and bc.impedance is not None
        to_json_dict(bc)
        to_json_dict(w)
        scale.measure(None, at=T0 + timedelta(days=1), failed=True)
        failed = measurements(scale.connect(), BodyCompositionMeasurement)
        assert failed[-1].body_fat is None


def test_backlog_with_repeat_of_last_record() -> None:
    scale = SimulatedScale("SC-1", unit=Unit.KG)
    for i in range(3):
        scale.measure(sample(DeviceKind.SCALE, T0 + timedelta(days=i), weight=80 + i))
    first = measurements(scale.connect(), WeightMeasurement)
    assert [m.weight for m in first] == [80, 81, 82]
    assert scale.connect() == []  # nothing new: nothing sent
    scale.measure(sample(DeviceKind.SCALE, T0 + timedelta(days=3), weight=83))
    second = measurements(scale.connect(), WeightMeasurement)
    assert [m.weight for m in second] == [82, 83]  # the burst starts with the last one again
    scale.repeat_last = False
    scale.measure(sample(DeviceKind.SCALE, T0 + timedelta(days=4), weight=84))
    assert [m.weight for m in measurements(scale.connect(), WeightMeasurement)] == [84]


def test_memory_capacity_drops_oldest() -> None:
    scale = SimulatedScale("SC-1", unit=Unit.KG, capacity=5)
    for i in range(8):
        scale.measure(sample(DeviceKind.SCALE, T0 + timedelta(days=i), weight=70 + i))
    assert [m.weight for m in measurements(scale.connect(), WeightMeasurement)] == [
        73, 74, 75, 76, 77]


def test_battery_drains_per_measurement() -> None:
    scale = SimulatedScale("SC-1", battery=16.1, drain=0.5)
    for i in range(3):
        scale.measure(sample(DeviceKind.SCALE, T0 + timedelta(hours=i), weight=80))
    assert decode(0x2A19, scale.read(0x2A19)).level == 14


# --------------------------------------------------------------------------- clocks


def test_clock_offset_and_drift() -> None:
    clock = DeviceClock(offset_s=600, drift_ppm=100, set_at=T0)
    scale = SimulatedScale("SC-1", unit=Unit.KG, clock=clock, timezone=NY)
    scale.measure(sample(DeviceKind.SCALE, T0, weight=80))
    scale.measure(sample(DeviceKind.SCALE, T0 + timedelta(days=10), weight=80))
    a, b = measurements(scale.connect(), WeightMeasurement)
    assert a.timestamp == DateTime(2026, 3, 2, 7, 10, 0)
    # 10 days at 100 ppm = 86.4 s more; New York is still on EST on 12 March 07:00 local? no:
    # DST starts 8 March, so 12:00 UTC is 08:00 EDT
    assert b.timestamp == DateTime(2026, 3, 12, 8, 11, 26)


def test_writing_current_time_sets_the_clock() -> None:
    bp = SimulatedBpCuff("BP-1", clock=DeviceClock(offset_s=-3600), timezone=NY)
    before = decode(0x2A2B, bp.read(0x2A2B, T0)).date_time
    assert before == DateTime(2026, 3, 2, 6, 0, 0)
    ct = CurrentTime(DateTime(2026, 3, 2, 7, 0, 0), 1, 0, 1)
    bp.write(0x2A2B, enc.encode_current_time(ct), T0)
    assert decode(0x2A2B, bp.read(0x2A2B, T0)).date_time == DateTime(2026, 3, 2, 7, 0, 0)
    bp.write(0x2A08, enc.encode_date_time(DateTime(2026, 3, 2, 7, 5, 0)), T0)
    assert bp.clock.offset_s == 300
    bp.write(0x2A08, enc.encode_date_time(DateTime(0, 0, 0, 0, 0, 0)), T0)  # unusable: ignored
    assert bp.clock.offset_s == 300


def test_unset_clock_epoch_2000_and_unknown_date() -> None:
    ox = SimulatedOximeter("OX-1", clock=DeviceClock(unset=True, power_on=T0 - timedelta(hours=2)))
    ox.measure(sample(DeviceKind.PULSE_OXIMETER, spo2=95, pulse=70))
    (m,) = measurements(ox.connect(), PlxSpotCheck)
    assert m.timestamp == DateTime(2000, 1, 1, 2, 0, 0)
    assert m.device_clock_not_set
    ox2 = SimulatedBpCuff("BP-2", clock=DeviceClock(unset=True, unset_style="unknown"))
    ox2.measure(sample(DeviceKind.BP_CUFF, systolic=120, diastolic=80, pulse=60))
    (b,) = measurements(ox2.connect(), BloodPressureMeasurement)
    assert b.timestamp is not None and b.timestamp.year == 0 and b.timestamp.to_datetime() is None
    assert "year" in b.timestamp.unknown
    ct = decode(0x2A2B, ox2.read(0x2A2B, T0))
    assert ct.day_of_week == 0


# --------------------------------------------------------------------------- BP cuff


def test_bp_round_trip_with_live_cuff_pressure() -> None:
    bp = SimulatedBpCuff("BP-1", timezone=NY)
    notes = bp.measure(sample(DeviceKind.BP_CUFF, systolic=141, diastolic=88, pulse=72),
                       connected=True)
    icp = measurements(notes, IntermediateCuffPressure)
    assert len(icp) >= 4 and all(isinstance(i.cuff_pressure, Decimal) for i in icp)
    for i in icp:
        to_json_dict(i)
    (m,) = measurements(notes, BloodPressureMeasurement)
    assert (m.systolic, m.diastolic, m.mean_arterial, m.pulse) == (141, 88, 106, 72)
    assert m.user_id == 1 and m.status == 0 and m.unit is Unit.MMHG
    assert to_json_dict(m)["canonical"]["systolic"] == 141.0
    assert bp.pending == 0


def test_bp_kpa_and_failed_and_status_bits() -> None:
    bp = SimulatedBpCuff("BP-1", unit=Unit.KPA, artefact_prob=1.0, user_id=None)
    notes = bp.measure(sample(DeviceKind.BP_CUFF, systolic=150, diastolic=90, pulse=104),
                       connected=True)
    (m,) = measurements(notes, BloodPressureMeasurement)
    assert m.unit is Unit.KPA and m.systolic == Decimal("20.0")
    assert to_json_dict(m)["canonical"]["systolic"] == pytest.approx(150, abs=0.5)
    assert m.status is not None and m.status & 0x08  # pulse above the upper limit
    assert m.status & 0x27  # an artefact bit
    assert m.user_id is None
    to_json_dict(m)
    bp.measure(None, at=T0 + timedelta(hours=1), failed=True)
    (f,) = measurements(bp.connect(), BloodPressureMeasurement)[-1:]
    assert f.systolic is Special.NAN and f.pulse is Special.NAN
    assert to_json_dict(f)["measurement_unsuccessful"]
    assert bp._live(bp.records[-1]) != []  # a failed attempt still pumps the cuff


# --------------------------------------------------------------------------- oximeter


def test_oximeter_spot_check_and_continuous() -> None:
    ox = SimulatedOximeter("OX-1", timezone=NY)
    notes = ox.measure(sample(DeviceKind.PULSE_OXIMETER, spo2=86, pulse=101), connected=True)
    cont = measurements(notes, PlxContinuous)
    assert len(cont) == 3 and all(c.spo2_fast == 86 for c in cont)
    for c in cont:
        to_json_dict(c)
    (m,) = measurements(notes, PlxSpotCheck)
    assert (m.spo2, m.pulse_rate) == (86, 101) and m.perfusion_index is not None
    assert m.measurement_status == 1 << 7 and m.device_status == 0
    assert m.timestamp == DateTime(2026, 3, 2, 7, 0, 0)
    to_json_dict(m)


def test_oximeter_resend_is_byte_identical() -> None:
    ox = SimulatedOximeter("OX-1")
    ox.measure(sample(DeviceKind.PULSE_OXIMETER, spo2=95, pulse=70))
    first = ox.connect()
    ox.measure(sample(DeviceKind.PULSE_OXIMETER, T0 + timedelta(hours=5), spo2=96, pulse=71))
    second = ox.connect()
    assert second[0] == first[-1]


def test_oximeter_questionable_and_failed() -> None:
    ox = SimulatedOximeter("OX-1", artefact_prob=1.0, continuous=False)
    notes = ox.measure(sample(DeviceKind.PULSE_OXIMETER, spo2=93, pulse=70), connected=True)
    (m,) = measurements(notes, PlxSpotCheck)
    assert m.measurement_status & (1 << 14)
    assert 0x2A5F not in ox.characteristics()
    ox.measure(None, at=T0 + timedelta(hours=1), failed=True)
    (f,) = measurements(ox.connect(), PlxSpotCheck)[-1:]
    assert f.spo2 is Special.NAN and f.perfusion_index is None and f.device_status == 1 << 3
    to_json_dict(f)


# --------------------------------------------------------------------------- glucometer


def gluco(**kw: object) -> SimulatedGlucometer:
    g = SimulatedGlucometer("GL-1", timezone=NY, **kw)  # type: ignore[arg-type]
    for i, (v, ctx) in enumerate([(118, "fasting"), (165, "post_meal"), (62, "fasting"),
                                  (95, "recheck")]):
        g.measure(sample(DeviceKind.GLUCOMETER, T0 + timedelta(hours=6 * i), ctx, glucose=v))
    return g


def racp(g: SimulatedGlucometer, request: bytes) -> list[object]:
    return decoded(g.write(0x2A52, request, T0))


def test_glucose_racp_count_and_report_all() -> None:
    g = gluco()
    assert g.connect() == []  # meters wait for RACP
    assert racp(g, report_count_all()) == [RacpNumberOfRecords(4)]
    out = racp(g, report_all_records())
    ms = [o for o in out if isinstance(o, GlucoseMeasurement)]
    ctx = [o for o in out if isinstance(o, GlucoseMeasurementContext)]
    assert [m.sequence for m in ms] == [0, 1, 2, 3]
    assert [m.mg_dl() for m in ms] == [118, 165, 62, 95]
    assert [c.meal for c in ctx] == [3, 2, 3, 4]
    assert out[-1] == RacpResponseCode(racp_mod.OP_REPORT_RECORDS, racp_mod.RESPONSE_SUCCESS)
    for o in out:
        to_json_dict(o)
    assert ms[0].user_facing_time() == datetime(2026, 3, 2, 7, 0, 0)


def test_glucose_report_from_sequence_repeats_previous() -> None:
    g = gluco()
    out = racp(g, report_records_from(2))
    assert [o.sequence for o in out if isinstance(o, GlucoseMeasurement)] == [1, 2, 3]
    g.repeat_last = False
    out = racp(g, report_records_from(2))
    assert [o.sequence for o in out if isinstance(o, GlucoseMeasurement)] == [2, 3]
    assert racp(g, report_count_from(3)) == [RacpNumberOfRecords(1)]
    out = racp(g, report_records_from(9))
    assert out == [RacpResponseCode(racp_mod.OP_REPORT_RECORDS, racp_mod.RESPONSE_NO_RECORDS)]


def test_glucose_first_last_abort_and_unsupported() -> None:
    g = gluco()
    first = racp(g, bytes((racp_mod.OP_REPORT_RECORDS, racp_mod.OPERATOR_FIRST)))
    last = racp(g, bytes((racp_mod.OP_REPORT_RECORDS, racp_mod.OPERATOR_LAST)))
    assert first[0].sequence == 0 and last[0].sequence == 3
    assert racp(g, bytes((racp_mod.OP_ABORT, racp_mod.OPERATOR_NULL))) == [
        RacpResponseCode(racp_mod.OP_ABORT, racp_mod.RESPONSE_SUCCESS)]
    assert racp(g, bytes((racp_mod.OP_REPORT_RECORDS, racp_mod.OPERATOR_LE))) == [
        RacpResponseCode(racp_mod.OP_REPORT_RECORDS, 3)]
    assert racp(g, bytes((racp_mod.OP_DELETE_RECORDS, racp_mod.OPERATOR_ALL))) == [
        RacpResponseCode(racp_mod.OP_DELETE_RECORDS, 2)]
    with pytest.raises(DeviceSimulationError):
        g.write(0x2A52, enc.encode_racp_number_of_records(3), T0)


def test_glucose_units_offset_lo_hi_failed_battery() -> None:
    g = SimulatedGlucometer("GL-2", unit=Unit.MOL_L, time_offset_minutes=-60, battery=15.2,
                            drain=0.5, with_context=False, next_sequence=0xFFFE)
    g.measure(sample(DeviceKind.GLUCOMETER, glucose=126))
    g.measure(sample(DeviceKind.GLUCOMETER, T0 + timedelta(hours=1), glucose=15))
    g.measure(sample(DeviceKind.GLUCOMETER, T0 + timedelta(hours=2), glucose=650))
    g.measure(None, at=T0 + timedelta(hours=3), failed=True)
    ms = [o for o in racp(g, report_all_records()) if isinstance(o, GlucoseMeasurement)]
    assert [m.sequence for m in ms] == [0xFFFE, 0xFFFF, 0, 1]  # u16 wraps
    a, lo, hi, failed = ms
    assert a.unit is Unit.MOL_L and a.mmol_l() == pytest.approx(7.0)
    assert a.time_offset == -60 and a.user_facing_time() == datetime(2026, 3, 2, 7)
    assert a.sensor_status == 0 and not a.context_follows
    assert lo.lo_hi == "lo" and lo.mg_dl() is None
    assert hi.lo_hi == "hi"
    assert failed.measurement_unsuccessful and failed.sensor_status & (1 << 2)
    assert failed.sensor_status & 1  # battery low by then
    for m in ms:
        to_json_dict(m)


def test_glucose_sequence_reset() -> None:
    g = gluco()
    g.reset_sequence()
    assert racp(g, report_count_all()) == [RacpNumberOfRecords(0)]
    g.measure(sample(DeviceKind.GLUCOMETER, T0 + timedelta(days=2), glucose=110))
    (m,) = [o for o in racp(g, report_all_records()) if isinstance(o, GlucoseMeasurement)]
    assert m.sequence == 0
    g2 = gluco()
    g2.reset_sequence(clear_memory=False)
    g2.measure(sample(DeviceKind.GLUCOMETER, T0 + timedelta(days=2), glucose=110))
    seqs = [o.sequence for o in racp(g2, report_all_records())
            if isinstance(o, GlucoseMeasurement)]
    assert seqs == [0, 1, 2, 3, 0]  # a known sequence number with a different time


def test_device_time_of_each_kind_via_current_time_encoding() -> None:
    # the glucometer's Date Time writes go through the base class as well
    g = gluco()
    g.write(times_mod.DATE_TIME, enc.encode_date_time(DateTime(2026, 3, 2, 8, 0, 0)), T0)
    assert g.clock.offset_s == 3600


# --------------------------------------------------------------------------- link + stream


def test_link_delivers_samples_to_matching_devices() -> None:
    p = stable_profile("pt", ["CHF", "DM"], seed=3, adherence=PERFECT)
    samples = simulate_patient(p, start=date(2026, 3, 2), days=4, seed=3)
    devices: list[SimulatedDevice] = [make_device(k, f"{k}-x") for k in p.device_kinds]
    link = DeviceSet.of(devices)
    assert link.deliver(samples) == len(samples)
    assert link.by_kind(DeviceKind.GLUCOMETER) is not None
    scale = link.by_kind(DeviceKind.SCALE)
    assert scale is not None and link.device(scale.address) is scale
    assert scale.pending == sum(s.kind == DeviceKind.SCALE for s in samples)


def test_simulated_stream_decodes_to_the_same_values() -> None:
    """Physiology -> device bytes -> decoder gives back the canonical values."""
    p = stable_profile("pt", ["CHF", "DM", "HTN"], seed=8, adherence=PERFECT)
    samples = simulate_patient(p, start=date(2026, 3, 2), days=10, seed=8)
    devs = {k: make_device(k, f"{k}-1", timezone=p.timezone) for k in p.device_kinds}
    scale = devs[DeviceKind.SCALE]
    assert isinstance(scale, SimulatedScale)
    scale.unit = Unit.KG
    for s in samples:
        devs[s.kind].measure(s)
    got: dict[DeviceKind, list[dict]] = {}
    for k, d in devs.items():
        notes = d.connect() if k != DeviceKind.GLUCOMETER else d.write(
            0x2A52, report_all_records(), T0)
        for u, b in notes:
            value = decode(u, b)
            if isinstance(value, (WeightMeasurement, BloodPressureMeasurement, PlxSpotCheck,
                                  GlucoseMeasurement)):
                got.setdefault(k, []).append(to_json_dict(value)["canonical"])
    for k in devs:
        expected = [s.values for s in samples if s.kind == k]
        assert len(got[k]) == len(expected)
        for e, g in zip(expected, got[k], strict=True):
            for metric, value in e.items():
                key = {Metric.PULSE: "pulse_rate" if k == DeviceKind.PULSE_OXIMETER
                       else "pulse"}.get(metric, str(metric))
                assert g[key] == pytest.approx(value, abs=1e-6), (k, metric)


# --------------------------------------------------------------------------- faults


@pytest.mark.parametrize("kind", list(DeviceKind))
def test_truncated_notification_is_a_decode_error(kind: DeviceKind) -> None:
    d = make_device(kind, "X-1")
    values = {DeviceKind.SCALE: {"weight": 80.0},
              DeviceKind.BP_CUFF: {"systolic": 120, "diastolic": 80, "pulse": 60},
              DeviceKind.PULSE_OXIMETER: {"spo2": 97, "pulse": 60},
              DeviceKind.GLUCOMETER: {"glucose": 100}}[kind]
    d.measure(sample(kind, **values))
    d.truncate_next = 1
    notes = d.write(0x2A52, report_all_records(), T0) if kind == DeviceKind.GLUCOMETER \
        else d.connect()
    bad = [(u, b) for u, b in notes if u == d.measurement_uuid]
    with pytest.raises(DecodeError) as err:
        decode(*bad[0])
    assert err.value.characteristic == d.measurement_uuid
    assert err.value.offset > 0
    assert d.truncate_next == 0


def test_battery_and_device_information_faults() -> None:
    d = SimulatedScale("SC-1", battery_raw=b"\xff",
                       info_raw={0x2A25: b"SN-77\x00\x00", 0x2A29: b"Acme \xff"})
    with pytest.raises(DecodeError):
        decode(0x2A19, d.read(0x2A19))
    d.battery_raw = b"\x50\x00"
    with pytest.raises(DecodeError):
        decode(0x2A19, d.read(0x2A19))
    serial = decode(0x2A25, d.read(0x2A25))
    assert serial.text == "SN-77" and serial.valid_utf8 and serial.field == "serial_number"
    maker = decode(0x2A29, d.read(0x2A29))
    assert not maker.valid_utf8
    to_json_dict(maker)


def test_unset_clock_styles() -> None:
    power_on = T0 - timedelta(days=1)
    for style, expected in (("epoch1970", DateTime(1970, 1, 2, 0, 0, 0)),
                            ("garbage", DateTime(1000, 13, 32, 24, 60, 60))):
        scale = SimulatedScale("SC-1", unit=Unit.KG,
                               clock=DeviceClock(unset=True, unset_style=style,
                                                 power_on=power_on))
        scale.measure(sample(DeviceKind.SCALE, weight=70.0))
        (m,) = measurements(scale.connect(), WeightMeasurement)
        assert m.timestamp == expected
        parts = to_json_dict(m)["timestamp_parts"]
        if style == "garbage":
            assert set(parts["invalid"]) == {"year", "month", "day", "hour", "minute", "second"}
            assert m.timestamp.to_datetime() is None
        else:
            assert parts["invalid"] == []


def test_glucose_context_carbs_insulin_exercise_hba1c() -> None:
    p = stable_profile("dm", ["DM"], seed=6, adherence=PERFECT)
    g = SimulatedGlucometer("GL-9", unit=Unit.KG_L)
    for x in simulate_patient(p, start=date(2026, 3, 2), days=40, seed=6):
        g.measure(x)
    out = racp(g, report_all_records())
    ctx = [o for o in out if isinstance(o, GlucoseMeasurementContext)]
    assert any(c.carbohydrate_id == 3 and c.carbohydrate for c in ctx)
    assert any(c.medication_id == 4 and c.medication_unit == "L" for c in ctx)
    assert any(c.exercise_duration for c in ctx)
    assert any(c.hba1c for c in ctx)
    for c in ctx:
        j = to_json_dict(c)
        assert j["sequence"] == c.sequence
    ms = [o for o in out if isinstance(o, GlucoseMeasurement)]
    assert ms[0].mmol_l() == pytest.approx(ms[0].mg_dl() / 18.016)
    assert {c.sequence for c in ctx} <= {m.sequence for m in ms}


def test_racp_requests_as_the_meter_saw_them() -> None:
    g = gluco()
    racp(g, report_records_from(2))
    racp(g, report_count_all())
    first, second = g.requests
    assert first.min_sequence == 2 and second.min_sequence is None
    assert to_json_dict(first)["racp"]["min_sequence"] == 2


def test_characteristics_are_registered_by_name() -> None:
    for kind in DeviceKind:
        d = make_device(kind, "X")
        for uuid in d.characteristics():
            entry = lookup(f"0x{uuid:04X}")
            assert lookup(entry.name) is entry is lookup(uuid)
