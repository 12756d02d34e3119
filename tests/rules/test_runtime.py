"""The rules runtime against real stores: rebuild, catch-up, exactly-once findings, timers."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from gateway.model import Condition, Enrollment, Program
from gateway.store import Store
from gateway.units import lb_to_kg
from rules.runtime import RulesRuntime
from tests.gateway.factories import seed_patient, weight

# 07:00 in New York on consecutive days (EST).
DAY1 = datetime(2026, 2, 10, 12, 0, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def chf_patient(store: Store) -> None:
    seed_patient(store, tz="America/New_York")
    store.upsert_enrollment(Enrollment("pt1", "p1", frozenset({Program.RPM}),
                                       frozenset({Condition.CHF}), date(2026, 1, 1)))


def commit(store: Store, readings: list, at: datetime) -> list:
    res = store.add_readings(readings, at)
    stored = set(res.stored)
    return [r for r in store.get_readings("pt1", limit=10_000) if r.id in stored]


def test_weight_gain_fires_once_with_evidence(store: Store) -> None:
    chf_patient(store)
    clock = Clock(DAY2 + timedelta(minutes=1))
    rt = RulesRuntime(store, clock=clock)
    rt.on_committed(commit(store, [weight("w1", DAY1, 84.0)], DAY1))
    gained = 84.0 + lb_to_kg(2.4)
    day2 = commit(store, [weight("w2", DAY2, gained)], DAY2)
    rt.on_committed(day2)
    rt.on_committed(day2)  # delivered twice: still one finding applied
    [esc] = store.list_escalations("p1", rule_id="chf.weight_gain_24h")
    assert esc.trigger_count == 1
    assert "2.4 lb" in esc.summary
    assert esc.evidence[0]["reading_ids"] == ["w1", "w2"] or set(
        esc.evidence[0]["reading_ids"]) == {"w1", "w2"}


def test_state_rebuilt_after_restart(store: Store) -> None:
    chf_patient(store)
    clock = Clock(DAY2 + timedelta(minutes=1))
    RulesRuntime(store, clock=clock).on_committed(commit(store, [weight("w1", DAY1, 84.0)], DAY1))
    fresh = RulesRuntime(store, clock=clock)  # a restarted worker: empty memory
    fresh.on_committed(commit(store, [weight("w2", DAY2, 84.0 + lb_to_kg(2.0))], DAY2))
    assert [e.rule_id for e in store.list_escalations("p1", rule_id="chf.weight_gain_24h")] == [
        "chf.weight_gain_24h"]


def test_crash_between_commit_and_rules_is_caught_up(store: Store) -> None:
    chf_patient(store)
    clock = Clock(DAY2 + timedelta(minutes=1))
    RulesRuntime(store, clock=clock).on_committed(commit(store, [weight("w1", DAY1, 84.0)], DAY1))
    commit(store, [weight("w2", DAY2, 84.0 + lb_to_kg(3.0))], DAY2)  # ingest died before hand-off
    assert store.list_escalations("p1", rule_id="chf.weight_gain_24h") == []
    restarted = RulesRuntime(store, clock=clock)
    assert restarted.catch_up() >= 1
    assert [e.rule_id for e in store.list_escalations("p1", rule_id="chf.weight_gain_24h")] == [
        "chf.weight_gain_24h"]
    again = RulesRuntime(store, clock=clock)
    again.catch_up()
    [esc] = store.list_escalations("p1", rule_id="chf.weight_gain_24h")
    assert esc.trigger_count == 1


def test_below_threshold_stays_quiet(store: Store) -> None:
    chf_patient(store)
    rt = RulesRuntime(store, clock=Clock(DAY2 + timedelta(minutes=1)))
    rt.on_committed(commit(store, [weight("w1", DAY1, 84.0)], DAY1))
    rt.on_committed(commit(store, [weight("w2", DAY2, 84.0 + lb_to_kg(1.99))], DAY2))
    assert store.list_escalations("p1", rule_id="chf.weight_gain_24h") == []


def test_no_data_timer_fires_from_the_store(store: Store) -> None:
    chf_patient(store)
    clock = Clock(DAY1 + timedelta(minutes=1))
    rt = RulesRuntime(store, clock=clock)
    rt.on_committed(commit(store, [weight("w1", DAY1, 84.0)], DAY1))
    timers = store.list_timers("pt1")  # type: ignore[attr-defined]
    assert timers, "a no-data timer is kept in the store"
    due = next(t.due_at for t in timers if t.kind == "adherence.no_data")
    rt.run_due_timers(due - timedelta(seconds=1))  # the hub-offline timer fires earlier
    assert store.list_escalations("p1", rule_id="adherence.no_data") == []
    restarted = RulesRuntime(store, clock=clock)
    assert restarted.run_due_timers(due + timedelta(seconds=1)) == 1
    [esc] = store.list_escalations("p1", rule_id="adherence.no_data")
    assert esc.trigger_at == due
    assert restarted.run_due_timers(due + timedelta(days=1)) == 0  # fired once


def test_bulk_warm_equals_lazy_rebuild(store: Store) -> None:
    chf_patient(store)
    clock = Clock(DAY2 + timedelta(minutes=1))
    RulesRuntime(store, clock=clock).on_committed(commit(store, [weight("w1", DAY1, 84.0)], DAY1))
    warmed = RulesRuntime(store, clock=clock)
    assert warmed.warm("p1", clock()) == 1
    warmed.on_committed(commit(store, [weight("w2", DAY2, 84.0 + lb_to_kg(2.0))], DAY2))
    assert [e.rule_id for e in store.list_escalations("p1", rule_id="chf.weight_gain_24h")] == [
        "chf.weight_gain_24h"]


def test_care_plan_override_applies_after_bulk_warm_and_lazy_load(store: Store) -> None:
    from gateway.store.api_store import CarePlanOverride

    chf_patient(store)
    store.add_care_plan_override(CarePlanOverride(  # type: ignore[attr-defined]
        practice_id="p1", patient_id="pt1", rule_id="chf.weight_gain_24h", ordered_by="dr",
        ordered_at=DAY1 - timedelta(days=1), params={}, enabled=False))
    clock = Clock(DAY2 + timedelta(minutes=1))
    RulesRuntime(store, clock=clock).on_committed(commit(store, [weight("w1", DAY1, 84.0)], DAY1))
    warmed = RulesRuntime(store, clock=clock)
    warmed.warm("p1", clock())
    warmed.on_committed(commit(store, [weight("w2", DAY2, 84.0 + lb_to_kg(3.0))], DAY2))
    lazy = RulesRuntime(store, clock=clock)
    lazy.on_committed(commit(store, [weight("w3", DAY2 + timedelta(hours=1), 90.0)], DAY2))
    assert store.list_escalations("p1", rule_id="chf.weight_gain_24h") == []


def test_bulk_warm_from_store_rows_equals_rebuild_from_readings(store: Store) -> None:
    from gateway.model import DeviceKind, Flag, Measurement, Reading, ReadingSource
    from gateway.units import Metric
    from tests.gateway.factories import bp
    from tests.rules.test_rebuild import snapshot

    seed_patient(store, tz="America/New_York")
    store.upsert_enrollment(Enrollment("pt1", "p1", frozenset({Program.RPM}), frozenset(
        {Condition.CHF, Condition.DM, Condition.HTN}), date(2026, 1, 1)))

    def glucose(rid: str, at: datetime, value: float | None, special: str | None = None,
                flags: frozenset = frozenset()) -> Reading:
        return Reading(id=rid, practice_id="p1", patient_id="pt1", device_serial="GLU-1",
                       hub_id="hub-2", kind=DeviceKind.GLUCOMETER, measured_at=at,
                       received_at=at + timedelta(minutes=5), flags=flags,
                       measurements=(Measurement(Metric.GLUCOSE, value, special=special),))

    readings = []
    for d in range(9):
        at = DAY1 + timedelta(days=d)
        readings += [weight(f"w{d}", at, 84.0 + d * 0.3),
                     weight(f"m{d}", at + timedelta(hours=1), 90.0, source=ReadingSource.MANUAL),
                     bp(f"b{d}", at + timedelta(hours=2), 150, 95, 72),
                     glucose(f"g{d}", at + timedelta(hours=3), 65.0 + d)]
    readings += [glucose("lo", DAY1 + timedelta(days=3, hours=5), None, "lo",
                         frozenset({Flag.GLUCOSE_LO})),
                 glucose("hi", DAY1 + timedelta(days=4, hours=5), None, "hi"),
                 glucose("q", DAY1 + timedelta(days=5, hours=5), 40.0,
                         flags=frozenset({Flag.QUESTIONABLE}))]
    for r in readings:  # stored at several ingest times, some long after measurement
        store.add_readings([r], r.measured_at + timedelta(hours=30 if r.id[0] == "g" else 0))
    now = DAY1 + timedelta(days=9, hours=6)
    warmed = RulesRuntime(store, clock=Clock(now))
    assert warmed.warm("p1", now) == 1
    lazy = RulesRuntime(store, clock=Clock(now))
    loaded = lazy._load("pt1", now)
    assert loaded is not None
    assert snapshot(warmed.states["pt1"]) == snapshot(loaded)
    assert warmed.states["pt1"].series  # the comparison saw data
