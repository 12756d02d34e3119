"""The store contract: the same suite against SQLite and PostgreSQL (and TimescaleDB)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from gateway.model import (
    Device,
    DeviceAssignment,
    DeviceKind,
    Flag,
    Hub,
    Measurement,
    Patient,
    Practice,
    ReadingSource,
)
from gateway.store import NewQuarantine, NotFound, Store
from gateway.store.sql import load_migrations, split_sql
from gateway.units import Metric, Unit
from tests.gateway.factories import T0, bp, seed_patient, weight


def test_migrate_is_idempotent(store: Store) -> None:
    assert store.migrate() == []
    versions = [v for v, _, _ in load_migrations(store.dialect)]  # type: ignore[attr-defined]
    assert store.schema_version() == max(versions)  # type: ignore[attr-defined]


def test_registry_round_trip_and_scoping(store: Store) -> None:
    seed_patient(store, "pt1", "p1")
    seed_patient(store, "pt2", "p2")
    assert store.get_practice("p1").name == "Practice p1"
    assert store.get_patient("pt1").mrn == "MRN-pt1"
    assert store.get_patient("pt1", practice_id="p1").given_name == "Ann"
    with pytest.raises(NotFound):
        store.get_patient("pt1", practice_id="p2")
    assert [p.id for p in store.list_patients("p2")] == ["pt2"]
    assert store.get_enrollment("pt1").consent_date == date(2026, 1, 1)
    with pytest.raises(NotFound):
        store.get_practice("nope")


def test_patient_update_keeps_one_row(store: Store) -> None:
    p = seed_patient(store)
    store.upsert_patient(Patient(p.id, p.practice_id, p.mrn, "Bea", "Lee", None, "UTC"))
    assert store.get_patient(p.id).given_name == "Bea"
    assert store.get_patient(p.id).birth_date is None
    assert len(store.list_patients(p.practice_id)) == 1


def test_device_assignment_is_time_bounded(store: Store) -> None:
    seed_patient(store, "pt1")
    seed_patient(store, "pt2")
    store.upsert_device(Device("SN1", "p1", DeviceKind.SCALE, "A&D UC-352", "A&D"))
    store.upsert_hub(Hub("hub-1", "p1", "pt1"))
    store.upsert_hub(Hub("hub-2", "p1", "pt2"))
    store.assign_device(DeviceAssignment("SN1", "pt1", "hub-1", "p1", T0))
    later = T0 + timedelta(days=10)
    store.assign_device(DeviceAssignment("SN1", "pt2", "hub-2", "p1", later))
    assert store.get_device("SN1").kind == DeviceKind.SCALE
    assert store.get_hub("hub-2").patient_id == "pt2"
    a1 = store.active_assignment("SN1", T0 + timedelta(days=1))
    a2 = store.active_assignment("SN1", later + timedelta(hours=1))
    assert a1 is not None and a1.patient_id == "pt1"
    assert a2 is not None and a2.patient_id == "pt2"
    assert store.active_assignment("SN1", T0 - timedelta(seconds=1)) is None
    first = store.device_assignments("SN1")[0]
    assert first.end == later  # closed when the device moved


def test_same_reading_twice_is_stored_once(store: Store) -> None:
    seed_patient(store)
    r = weight("r1", T0)
    first = store.add_readings([r, r], T0)
    assert first.stored == ("r1",) and first.duplicates == ("r1",)
    second = store.add_readings([r], T0 + timedelta(minutes=1))
    assert second.stored == () and second.duplicates == ("r1",)
    assert store.count_readings() == 1
    assert store.reading_ids() == ["r1"]
    days = store.day_counts("pt1", date(2026, 3, 1), date(2026, 3, 1))
    assert [(d.metric, d.device_count) for d in days] == [(Metric.WEIGHT, 1)]


def test_mixed_batch_reports_new_and_duplicates(store: Store) -> None:
    seed_patient(store)
    store.add_readings([weight("a", T0), weight("b", T0)], T0)
    res = store.add_readings([weight("b", T0), weight("c", T0), weight("a", T0)], T0)
    assert res.stored == ("c",)
    assert sorted(res.duplicates) == ["a", "b"]
    assert store.count_readings("pt1") == 3


def test_reading_round_trip_keeps_everything(store: Store) -> None:
    seed_patient(store)
    at = datetime(2026, 3, 1, 7, 5, 3, 250000, tzinfo=UTC)
    r = bp("bp1", at, 125.0, 80.0, 64.0)
    r = type(r)(**{**{f: getattr(r, f) for f in r.__dataclass_fields__},  # type: ignore[arg-type]
                   "flags": frozenset({Flag.IRREGULAR_PULSE}), "device_time": "2026-03-01T02:05:03",
                   "clock_offset_s": -12.5, "sequence": 7,
                   "measurements": (Measurement(Metric.SYSTOLIC, 125.0, 16.665, Unit.KPA),
                                    Measurement(Metric.DIASTOLIC, 80.0),
                                    Measurement(Metric.PULSE, None, None, Unit.PER_MIN, "nan"))})
    store.add_readings([r], at + timedelta(seconds=3))
    [back] = store.get_readings("pt1")
    assert back.measured_at == at
    assert back.ingested_at == at + timedelta(seconds=3)
    assert back.flags == {Flag.IRREGULAR_PULSE}
    assert back.device_time == "2026-03-01T02:05:03" and back.clock_offset_s == -12.5
    assert back.sequence == 7
    sys_m = back.measurement(Metric.SYSTOLIC)
    assert sys_m is not None and sys_m.raw_value == 16.665 and sys_m.raw_unit == Unit.KPA
    pulse = back.measurement(Metric.PULSE)
    assert pulse is not None and pulse.value is None and pulse.special == "nan"
    assert back.metrics == {Metric.SYSTOLIC, Metric.DIASTOLIC}


def test_get_readings_filters(store: Store) -> None:
    seed_patient(store)
    store.add_readings([weight("w1", T0), bp("b1", T0 + timedelta(hours=1), 120, 80),
                        weight("w2", T0 + timedelta(hours=2))], T0)
    assert [r.id for r in store.get_readings("pt1", metric=Metric.WEIGHT)] == ["w1", "w2"]
    assert [r.id for r in store.get_readings("pt1", start=T0 + timedelta(minutes=1))] == [
        "b1", "w2"]
    assert [r.id for r in store.get_readings("pt1", end=T0 + timedelta(hours=1))] == ["w1"]
    assert [r.id for r in store.get_readings("pt1", limit=1)] == ["w1"]
    assert store.get_readings("pt1", practice_id="other") == []


def test_manual_readings_count_separately(store: Store) -> None:
    seed_patient(store)
    store.add_readings([weight("w1", T0), weight("w2", T0, source=ReadingSource.MANUAL)], T0)
    [day] = store.day_counts("pt1", date(2026, 3, 1), date(2026, 3, 1))
    assert (day.device_count, day.manual_count) == (1, 1)


def test_readings_for_unknown_patient_are_refused(store: Store) -> None:
    with pytest.raises(Exception, match="unknown patient"):
        store.add_readings([weight("x", T0, patient_id="ghost")], T0)
    assert store.count_readings() == 0


# Instants around the 2026 US spring-forward (Mar 8) and fall-back (Nov 1) days.
_DST_WINDOWS = [datetime(2026, 3, 7, 0, tzinfo=UTC), datetime(2026, 10, 31, 0, tzinfo=UTC)]


@hsettings(max_examples=15, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(window=st.sampled_from(_DST_WINDOWS),
       offsets=st.lists(st.integers(min_value=0, max_value=4 * 24 * 60), min_size=1,
                        max_size=40))
def test_day_rollup_matches_raw_count_across_dst(store: Store, window: datetime,
                                                 offsets: list[int]) -> None:
    tz = ZoneInfo("America/New_York")
    seed_patient(store, tz="America/New_York")
    base = store.count_readings()
    readings = [weight(f"dst-{window.month}-{m}", window + timedelta(minutes=m)) for m in offsets]
    store.add_readings(readings, window)
    stored = store.get_readings("pt1", start=window, end=window + timedelta(days=5), limit=10000)
    expected = Counter(r.measured_at.astimezone(tz).date() for r in stored)
    first, last = window.date() - timedelta(days=1), window.date() + timedelta(days=5)
    got = {d.day: d.device_count for d in store.day_counts("pt1", first, last)
           if d.metric == Metric.WEIGHT}
    assert got == dict(expected)
    assert store.count_readings() >= base


def test_rollup_on_the_dst_day_itself(store: Store) -> None:
    seed_patient(store, tz="America/New_York")
    # 2026-03-08 04:30 UTC is 23:30 EST on Mar 7; 07:30 UTC is 03:30 EDT on Mar 8.
    store.add_readings([weight("a", datetime(2026, 3, 8, 4, 30, tzinfo=UTC)),
                        weight("b", datetime(2026, 3, 8, 7, 30, tzinfo=UTC)),
                        weight("c", datetime(2026, 3, 9, 3, 59, tzinfo=UTC))], T0)
    days = {d.day: d.device_count for d in store.day_counts("pt1", date(2026, 3, 7),
                                                             date(2026, 3, 9))}
    assert days == {date(2026, 3, 7): 1, date(2026, 3, 8): 2}


def test_quarantine_lifecycle(store: Store) -> None:
    item = NewQuarantine(topic="vitalgate/v1/hubs/h1/readings", reason_code="not_json",
                         reason="not JSON", payload="{oops", payload_size=5,
                         received_at=T0, hub_id="h1", field="$")
    qid = store.add_quarantine(item)
    [listed] = store.list_quarantine()
    assert listed.id == qid and listed.reason_code == "not_json" and listed.payload == "{oops"
    store.resolve_quarantine(qid, "discarded", "user-1", T0 + timedelta(hours=1))
    assert store.list_quarantine() == []
    done = store.get_quarantine(qid)
    assert done.status == "discarded" and done.resolved_by == "user-1"
    with pytest.raises(NotFound):
        store.resolve_quarantine(qid, "released", "user-1", T0)


def test_sql_looking_text_is_data(store: Store) -> None:
    evil = "Robert'); DROP TABLE patients;--"
    store.upsert_practice(Practice("p1", evil, "UTC"))
    store.upsert_patient(Patient("pt1", "p1", evil, evil, evil, None, "UTC"))
    assert store.get_patient("pt1").given_name == evil
    assert store.get_practice("p1").name == evil


def test_metric_series_by_local_day(store: Store) -> None:
    seed_patient(store, tz="America/Chicago")
    # 2026-03-02 05:30 UTC is 23:30 on Mar 1 in Chicago (CST).
    store.add_readings([weight("a", datetime(2026, 3, 1, 15, tzinfo=UTC), 80.0),
                        weight("b", datetime(2026, 3, 2, 5, 30, tzinfo=UTC), 82.0),
                        weight("c", datetime(2026, 3, 2, 15, tzinfo=UTC), 81.0),
                        bp("d", datetime(2026, 3, 2, 15, 5, tzinfo=UTC), 120, 80)], T0)
    series = store.metric_series(  # type: ignore[attr-defined]
        "pt1", Metric.WEIGHT, datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 4, tzinfo=UTC),
        "America/Chicago")
    got = [(p.day, p.count, p.min, p.max, p.mean) for p in series]
    assert got == [(date(2026, 3, 1), 2, 80.0, 82.0, 81.0), (date(2026, 3, 2), 1, 81.0, 81.0, 81.0)]


def test_retention_keeps_rollup_and_dedupe(store: Store) -> None:
    seed_patient(store)
    old, new = datetime(2025, 1, 1, 15, tzinfo=UTC), datetime(2026, 3, 1, 15, tzinfo=UTC)
    store.add_readings([weight("old", old), weight("new", new)], new)
    store.drop_readings_before(new - timedelta(days=60))  # type: ignore[attr-defined]
    assert store.reading_ids() == ["new"]
    assert store.day_counts("pt1", old.date(), old.date())[0].device_count == 1
    assert store.add_readings([weight("old", old)], new).duplicates == ("old",)


def _days_from_rollup(store: Store, first: date, last: date) -> list[date]:
    return sorted({d.day for d in store.day_counts("pt1", first, last) if d.device_count > 0})


@hsettings(max_examples=15, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(offsets=st.lists(st.tuples(st.integers(min_value=0, max_value=75 * 24 * 60),
                                  st.booleans()), min_size=1, max_size=40))
def test_device_day_masks_match_the_rollup(store: Store, offsets: list[tuple[int, bool]]) -> None:
    """Billing's per-month day masks hold exactly the rollup's device days (local days,
    month ends, DST, manual readings excluded), batch after batch."""
    seed_patient(store, tz="America/New_York")
    start = datetime(2026, 1, 25, 3, tzinfo=UTC)  # across Jan/Feb/Mar/Apr and Mar 8 DST
    readings = [weight(f"m-{m}-{manual}", start + timedelta(minutes=m),
                       source=ReadingSource.MANUAL if manual else ReadingSource.DEVICE)
                for m, manual in offsets]
    half = len(readings) // 2
    store.add_readings(readings[:half], start)
    store.add_readings(readings[half:], start)
    first, last = date(2026, 1, 1), date(2026, 4, 30)
    expected = _days_from_rollup(store, first, last)
    assert store.device_days("p1", first, last).get("pt1", []) == expected  # type: ignore[attr-defined]
    inner = (date(2026, 2, 10), date(2026, 3, 20))
    assert store.device_days("p1", *inner).get("pt1", []) == [  # type: ignore[attr-defined]
        d for d in expected if inner[0] <= d <= inner[1]]


def test_device_day_masks_backfill_from_the_rollup(store: Store) -> None:
    """Migration 0007 derives the masks of data stored before it from reading_days."""
    seed_patient(store, tz="America/New_York")
    store.add_readings([weight("a", datetime(2026, 1, 31, 15, tzinfo=UTC)),
                        weight("b", datetime(2026, 2, 1, 4, 59, tzinfo=UTC)),  # Jan 31 local
                        weight("c", datetime(2026, 2, 28, 15, tzinfo=UTC)),
                        bp("d", datetime(2026, 2, 28, 16, tzinfo=UTC), 120, 80),
                        weight("e", datetime(2026, 3, 2, 15, tzinfo=UTC),
                               source=ReadingSource.MANUAL)], T0)
    before = store.device_day_masks("p1", date(2026, 1, 1), date(2026, 3, 31))  # type: ignore[attr-defined]
    assert sorted(before) == [("pt1", date(2026, 1, 1), 1 << 30),
                              ("pt1", date(2026, 2, 1), 1 << 27)]
    [(_, _, script)] = [m for m in load_migrations(store.dialect)  # type: ignore[attr-defined]
                        if m[1].startswith("0007_")]
    backfill = [s for s in split_sql(script) if s.startswith("INSERT")]
    assert len(backfill) == 1
    with store._tx() as cur:  # type: ignore[attr-defined]
        cur.execute("DELETE FROM device_day_months")
        cur.execute(backfill[0])
    after = store.device_day_masks("p1", date(2026, 1, 1), date(2026, 3, 31))  # type: ignore[attr-defined]
    assert sorted(after) == sorted(before)


def test_medications_history(store: Store) -> None:
    from gateway.store.api_store import Medication

    seed_patient(store)
    seed_patient(store, "pt2", "p2")
    mid = store.add_medication(Medication(  # type: ignore[attr-defined]
        "p1", "pt1", "Furosemide", "u1", T0, dose="40 mg", frequency="once daily",
        started_on=date(2026, 2, 1), note="from discharge summary"))
    store.add_medication(Medication("p2", "pt2", "Other", "u9", T0))  # type: ignore[attr-defined]
    [m] = store.list_medications("pt1", "p1")  # type: ignore[attr-defined]
    assert (m.id, m.label, m.started_on, m.note) == (
        mid, "Furosemide 40 mg, once daily", date(2026, 2, 1), "from discharge summary")
    assert m.active_at(T0 + timedelta(days=1)) and not m.active_at(T0 - timedelta(days=1))
    with pytest.raises(NotFound):
        store.get_medication(mid, "p2")  # type: ignore[attr-defined]
    with pytest.raises(NotFound):
        store.stop_medication(mid, "p2", "u9", T0, "")  # type: ignore[attr-defined]
    store.stop_medication(mid, "p1", "u2", T0 + timedelta(days=3), "cardiology")  # type: ignore[attr-defined]
    stopped = store.get_medication(mid, "p1")  # type: ignore[attr-defined]
    assert (stopped.stopped_by, stopped.stop_reason) == ("u2", "cardiology")
    assert not stopped.active_at(T0 + timedelta(days=4))
    with pytest.raises(NotFound):
        store.stop_medication(mid, "p1", "u2", T0 + timedelta(days=5), "")  # type: ignore[attr-defined]
    assert [x.name for x in store.list_medications("pt2", "p2")] == ["Other"]  # type: ignore[attr-defined]


def test_complex_ccm_months(store: Store) -> None:
    seed_patient(store)
    seed_patient(store, "pt2", "p2")
    s: Any = store
    s.set_complex_ccm_month("p1", "pt1", date(2026, 3, 17), "doc", T0)
    s.set_complex_ccm_month("p1", "pt1", date(2026, 3, 1), "doc", T0)  # same month: once
    s.set_complex_ccm_month("p1", "pt1", date(2026, 1, 1), "doc", T0)
    s.set_complex_ccm_month("p2", "pt2", date(2026, 3, 1), "doc", T0)
    assert s.complex_ccm_months("p1") == {"pt1": [date(2026, 1, 1), date(2026, 3, 1)]}
    assert s.complex_ccm_months("p1", month=date(2026, 3, 5)) == {"pt1": [date(2026, 3, 1)]}
    assert s.complex_ccm_months("p1", ["pt2"]) == {}
    assert s.clear_complex_ccm_month("p1", "pt1", date(2026, 1, 1)) is True
    assert s.clear_complex_ccm_month("p1", "pt1", date(2026, 1, 1)) is False
    assert s.clear_complex_ccm_month("p1", "pt2", date(2026, 3, 1)) is False  # other practice
    assert s.complex_ccm_months("p2") == {"pt2": [date(2026, 3, 1)]}


@hsettings(max_examples=10, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(micros=st.lists(st.integers(min_value=0, max_value=10**13), min_size=1, max_size=20,
                       unique=True))
def test_rule_rows_instants_are_the_exact_timestamps(store: Store, micros: list[int]) -> None:
    """The warm-up rows carry epoch seconds equal (as doubles) to ``timestamp()``."""
    seed_patient(store)
    base = datetime(2026, 1, 1, tzinfo=UTC)
    readings = [weight(f"us-{m}", base + timedelta(microseconds=m)) for m in micros]
    store.add_readings(readings, base)
    rows = {r[1]: r for r in store.practice_rule_rows("p1", since=base)}  # type: ignore[attr-defined]
    for r in readings:
        assert rows[r.id][3] == r.measured_at.timestamp()
        assert rows[r.id][4] == r.received_at.timestamp()


def test_device_day_mask_survives_a_rolled_back_batch(store: Store,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Mask bits are remembered (to skip rewriting them) only once committed."""
    seed_patient(store, tz="UTC")
    s: Any = store
    bump = s._bump_rollup

    def bump_then_fail(cur: Any, readings: Any) -> Any:
        bump(cur, readings)
        raise RuntimeError("disk full")

    monkeypatch.setattr(s, "_bump_rollup", bump_then_fail)
    with pytest.raises(RuntimeError):
        store.add_readings([weight("a", datetime(2026, 3, 5, 12, tzinfo=UTC))], T0)
    monkeypatch.setattr(s, "_bump_rollup", bump)
    assert s.device_days("p1", date(2026, 3, 1), date(2026, 3, 31)) == {}
    store.add_readings([weight("b", datetime(2026, 3, 5, 13, tzinfo=UTC))], T0)
    store.add_readings([weight("c", datetime(2026, 3, 5, 14, tzinfo=UTC))], T0)  # known: skipped
    assert s.device_days("p1", date(2026, 3, 1), date(2026, 3, 31)) == {
        "pt1": [date(2026, 3, 5)]}
