"""Engine behaviour: alerting filter, lifecycle, late readings, overrides, timers, size."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.escalations import Severity
from gateway.model import Flag, Measurement, Reading
from gateway.units import Metric
from rules.definitions import load_defaults, override_from_json
from rules.engine import (
    NO_DATA_KEY,
    ClockReport,
    Escalation,
    HubSeen,
    ScheduleTimer,
    TimerFired,
    history_needed,
    mark_resolved,
    pending_timers,
    set_overrides,
    step,
)
from tests.rules.harness import Runner, local, patient_state, reading

ALL = ("CHF", "COPD", "HTN", "DM")


def _esc(effects: list) -> list[Escalation]:
    """Escalations, without hub.offline (daily test readings hit its 24 h exactly)."""
    return [e for e in effects if isinstance(e, Escalation) and e.rule_id != "hub.offline"]


def test_non_alerting_or_valueless_readings_never_trigger() -> None:
    st = patient_state(ALL)
    at = local("2026-04-01 08:00")
    for flag in (Flag.QUESTIONABLE, Flag.DEVICE_INVALID, Flag.MEASUREMENT_UNSUCCESSFUL):
        r = reading(at, {"systolic": 220, "diastolic": 130, "pulse": 30}, flags=[flag])
        st, eff = step(st, r, at)
        assert not _esc(eff)
    empty = Reading(id="nan", practice_id="t", patient_id="p", device_serial="d", hub_id="h",
                    kind=r.kind, measured_at=at, received_at=at,
                    measurements=(Measurement(Metric.SYSTOLIC, None, special="nan"),))
    st, eff = step(st, empty, at)
    assert not _esc(eff)


def test_one_open_escalation_per_rule_updates_then_resolve_reopens() -> None:
    run = Runner(patient_state(ALL))
    e1 = run.send(reading(local("2026-04-01 08:00"), {"systolic": 185, "diastolic": 90}))
    e2 = run.send(reading(local("2026-04-01 09:00"), {"systolic": 190, "diastolic": 90}))
    assert [e.event for e in e1] == ["opened"]
    assert [e.event for e in e2] == ["updated"]
    assert e2[0].readings[0].value == 190
    assert run.st.open_escalations == {"bp.severe": Severity.URGENT}
    mark_resolved(run.st, "bp.severe")
    e3 = run.send(reading(local("2026-04-01 10:00"), {"systolic": 182, "diastolic": 90}))
    assert [e.event for e in e3] == ["opened"]


def test_higher_severity_upgrades_open_escalation() -> None:
    run = Runner(patient_state(ALL))
    run.send(reading(local("2026-04-01 08:00"), {"systolic": 185, "diastolic": 90}))
    now = local("2026-04-01 08:30")
    set_overrides(run.st, [override_from_json("bp.severe", {
        "severity": "emergency", "ordered_by": "dr-a", "ordered_at": now.isoformat()})], now)
    up = run.send(reading(local("2026-04-01 09:00"), {"systolic": 200, "diastolic": 90}))
    assert [(e.event, e.severity) for e in up] == [("upgraded", "emergency")]
    assert up[0].overrides == (f"dr-a@{now.isoformat()}",)
    again = run.send(reading(local("2026-04-01 09:30"), {"systolic": 200, "diastolic": 90}))
    assert [e.event for e in again] == ["updated"]


def test_effect_records_rule_version_thresholds_readings_summary() -> None:
    run = Runner(patient_state(("CHF",)))
    run.send(reading(local("2026-04-01 08:00"), {"weight": 183.8}, rid="w1"))
    (e,) = _esc(run.send(reading(local("2026-04-02 08:00"), {"weight": 186.4}, rid="w2")))
    assert e.rule_id == "chf.weight_gain_24h" and e.rule_version == 1
    assert e.thresholds == {"metric": "weight", "days_back": 1, "ge": 2.0, "unit": "lb"}
    assert [r.reading_id for r in e.readings] == ["w1", "w2"]
    assert e.at == local("2026-04-02 08:00")
    assert e.summary == ("Weight 186.4 lb (84.55 kg), up 2.6 lb (1.18 kg) from 183.8 lb "
                         "(83.37 kg) the previous day (first weight of each day); "
                         "threshold 2.0 lb / 24 h.")
    ev = e.evidence()
    assert ev["readings"][1]["display"] == "186.4 lb (84.55 kg)"


def test_late_spo2_reading_pairs_with_a_later_one() -> None:
    run = Runner(patient_state(("CHF",)))
    run.send(reading(local("2026-04-01 10:30"), {"spo2": 91}, rid="b"))
    run.send(reading(local("2026-04-01 12:00"), {"weight": 180}))
    late = run.send(reading(local("2026-04-01 10:00"), {"spo2": 92}, rid="a"),
                    now=local("2026-04-01 12:05"))
    (e,) = [x for x in late if x.rule_id == "spo2.low"]
    assert [r.reading_id for r in e.readings] == ["a", "b"]
    assert e.at == local("2026-04-01 10:00") and not e.late


def test_escalation_from_reading_older_than_bound_is_late() -> None:
    run = Runner(patient_state(ALL))
    (e,) = _esc(run.send(reading(local("2026-04-01 08:00"), {"systolic": 185}),
                         now=local("2026-04-01 20:01")))
    assert e.late
    run2 = Runner(patient_state(ALL, late_bound=timedelta(hours=24)))
    (e2,) = _esc(run2.send(reading(local("2026-04-01 08:00"), {"systolic": 185}),
                           now=local("2026-04-01 20:01")))
    assert not e2.late


def test_late_weight_from_previous_day_reevaluates_today() -> None:
    run = Runner(patient_state(("CHF",)))
    assert not run.send(reading(local("2026-04-02 08:00"), {"weight": 186.0}))
    out = run.send(reading(local("2026-04-01 08:00"), {"weight": 183.8}),
                   now=local("2026-04-02 09:00"))
    (e,) = [x for x in out if x.rule_id == "chf.weight_gain_24h"]
    assert e.values["first_today"] > e.values["first_reference"]
    assert e.at == local("2026-04-01 08:00")


def test_late_earlier_weight_becomes_first_of_day() -> None:
    run = Runner(patient_state(("CHF",)))
    run.send(reading(local("2026-04-01 08:00"), {"weight": 183.8}))
    assert not _esc(run.send(reading(local("2026-04-02 08:00"), {"weight": 185.0})))
    out = run.send(reading(local("2026-04-02 06:00"), {"weight": 186.0}),
                   now=local("2026-04-02 09:00"))
    assert [e.rule_id for e in out if isinstance(e, Escalation)] == ["chf.weight_gain_24h"]


def test_reading_older_than_kept_history_still_fires_single_reading_rules() -> None:
    run = Runner(patient_state(("CHF",)))
    run.send(reading(local("2026-04-05 10:00"), {"spo2": 97}))
    a = run.send(reading(local("2026-04-01 10:00"), {"spo2": 85}), now=local("2026-04-05 11:00"))
    b = run.send(reading(local("2026-04-01 10:10"), {"spo2": 85}), now=local("2026-04-05 11:00"))
    assert not _esc(a + b)  # outside the kept 60 min: cannot pair
    (e,) = _esc(run.send(reading(local("2026-04-01 10:20"), {"systolic": 190}),
                         now=local("2026-04-05 11:00")))
    assert e.rule_id == "bp.severe" and e.late


def test_override_expiry_applies_at_now() -> None:
    expires = local("2026-04-01 12:00")
    ov = {"bp.low": {"enabled": False, "ordered_by": "dr-a",
                     "ordered_at": "2026-03-01T00:00:00+00:00",
                     "expires_at": expires.isoformat()}}
    run = Runner(patient_state(ALL, overrides=ov, now=local("2026-04-01 00:00")))
    assert not run.send(reading(local("2026-04-01 11:59"), {"systolic": 70}))
    out = run.send(reading(local("2026-04-01 12:00"), {"systolic": 70}))
    assert [e.rule_id for e in out] == ["bp.low"]


def test_override_changes_threshold_in_engine() -> None:
    ov = {"chf.weight_gain_24h": {"ge": 3.0, "ordered_by": "dr-a",
                                  "ordered_at": "2026-03-01T00:00:00+00:00"}}
    run = Runner(patient_state(("CHF",), overrides=ov))
    run.send(reading(local("2026-04-01 08:00"), {"weight": 183.8}))
    assert not _esc(run.send(reading(local("2026-04-02 08:00"), {"weight": 186.7})))
    (e,) = _esc(run.send(reading(local("2026-04-03 08:00"), {"weight": 189.7})))
    assert e.thresholds["ge"] == 3.0 and "3.0 lb / 24 h" in e.summary


def test_no_data_timer_schedule_stale_and_early_ticks() -> None:
    st = patient_state(("CHF",))
    st, eff = step(st, reading(local("2026-04-06 10:00"), {"weight": 180}),
                   local("2026-04-06 10:00"))
    sched = [e for e in eff if isinstance(e, ScheduleTimer) and e.key == NO_DATA_KEY]
    assert sched == [ScheduleTimer("p", NO_DATA_KEY, local("2026-04-10 00:00").astimezone(UTC))]
    due1 = sched[0].due
    st, eff = step(st, reading(local("2026-04-07 10:00"), {"weight": 180}),
                   local("2026-04-07 10:00"))
    due2 = next(e.due for e in eff if isinstance(e, ScheduleTimer) and e.key == NO_DATA_KEY)
    assert due2 - due1 == timedelta(days=1)
    st, eff = step(st, TimerFired(NO_DATA_KEY, due1), due1)  # stale
    assert not eff
    st, eff = step(st, TimerFired(NO_DATA_KEY, due2), due2 - timedelta(seconds=1))  # early
    assert not eff
    st, eff = step(st, TimerFired(NO_DATA_KEY, due2), due2)
    assert [(e.rule_id, e.at) for e in _esc(eff)] == [("adherence.no_data", due2)]
    st, eff = step(st, TimerFired(NO_DATA_KEY, due2), due2 + timedelta(hours=1))  # repeat
    assert not eff
    assert [t.key for t in pending_timers(st)] == ["hub.offline:hub-1"]


def test_late_reading_after_a_gap_schedules_a_past_due_timer_that_fires_late() -> None:
    st = patient_state(("CHF",))
    now = local("2026-04-20 10:00")
    st, eff = step(st, reading(local("2026-04-06 10:00"), {"weight": 180}), now)
    assert not [x for x in _esc(eff) if x.rule_id == "adherence.no_data"]
    [timer] = [x for x in eff if isinstance(x, ScheduleTimer) and x.key == NO_DATA_KEY]
    assert timer.due == local("2026-04-10 00:00")
    st, eff = step(st, TimerFired(NO_DATA_KEY, timer.due), now)
    (e,) = [x for x in _esc(eff) if x.rule_id == "adherence.no_data"]
    assert e.at == local("2026-04-10 00:00") and e.late


def test_backfilled_daily_readings_raise_no_no_data() -> None:
    """A backlog of one reading a day arrives at once: no gap, so no finding."""
    st = patient_state(("CHF",))
    now = local("2026-04-20 10:00")
    timers = []
    for day in range(6, 20):
        st, eff = step(st, reading(local(f"2026-04-{day:02d} 08:00"), {"weight": 180}), now)
        assert not [x for x in _esc(eff) if x.rule_id == "adherence.no_data"]
        timers += [x for x in eff if isinstance(x, ScheduleTimer) and x.key == NO_DATA_KEY]
    for t in timers:  # every superseded timer is stale when it fires
        st, eff = step(st, TimerFired(NO_DATA_KEY, t.due), now)
        if t is not timers[-1]:
            assert not _esc(eff)
    assert timers[-1].due > now


def test_hub_and_clock_events() -> None:
    run = Runner(patient_state(()))
    run.send(HubSeen("hub-9", local("2026-04-01 08:00")))
    run.send(HubSeen("hub-9", local("2026-04-01 09:00")))
    out = run.advance(local("2026-04-02 09:00"))
    assert [(e.rule_id, e.at) for e in out] == [("hub.offline", local("2026-04-02 09:00"))]
    assert "hub-9" in out[0].summary
    out = run.send(ClockReport("dev-7", "hub-9", -900, False, local("2026-04-02 10:00")))
    assert [e.rule_id for e in out] == ["device.clock"]


def test_history_needed() -> None:
    rules = load_defaults().rules
    assert history_needed(rules) == timedelta(days=15)
    st = patient_state(("COPD",))
    assert history_needed(st.rules) == timedelta(days=5)
    st = patient_state(("CHF",))
    assert history_needed(st.rules) == timedelta(days=10)


def _typical(conditions: tuple[str, ...], days: int = 30) -> int:
    run = Runner(patient_state(conditions))
    n = 0
    t0 = datetime(2026, 4, 1, 12, tzinfo=UTC)
    for d in range(days):
        day = t0 + timedelta(days=d)
        vals = []
        if "CHF" in conditions:
            vals.append((day, {"weight": 180 + d % 3}))
        if "CHF" in conditions or "HTN" in conditions:
            vals += [(day + timedelta(hours=h), {"systolic": 130, "diastolic": 80, "pulse": 70})
                     for h in (0, 10)]
        if "COPD" in conditions:
            vals += [(day + timedelta(hours=h), {"spo2": 94}) for h in (1, 9)]
        if "DM" in conditions:
            vals += [(day + timedelta(hours=h), {"glucose": 140}) for h in (-4, 2, 8)]
        for at, v in vals:
            n += 1
            run.send(reading(at, v, rid=f"SN12345678-{n:06d}"))
    return run.st.approx_size()


def test_state_size_for_typical_streams_is_bounded() -> None:
    assert _typical(("CHF", "HTN")) <= 2048
    assert _typical(("COPD",)) <= 2048
    assert _typical(("DM",)) <= 2048
    # bounded: 60 more days do not grow it
    assert _typical(("CHF", "HTN"), days=90) == _typical(("CHF", "HTN"), days=30)


def test_copy_is_a_snapshot_and_engine_wrapper() -> None:
    st = patient_state(("CHF",))
    st, _ = step(st, reading(local("2026-04-01 08:00"), {"spo2": 91}), local("2026-04-01 08:00"))
    snap = st.copy()
    st, eff = step(st, reading(local("2026-04-01 08:30"), {"spo2": 85}),
                   local("2026-04-01 08:30"))
    assert _esc(eff) and not snap.open and len(snap.series[Metric.SPO2]) == 1
    from rules.engine import Engine
    eng = Engine(load_defaults())
    eng.add_patient("q", "America/Chicago", ["DM"], now=local("2026-04-01 00:00"))
    r = reading(local("2026-04-01 08:00"), {"glucose": "LO"}, patient="q")
    assert [e.rule_id for e in _esc(eng.step("q", r, r.measured_at))] == ["dm.glucose_very_low"]
    eng.resolve("q", "dm.glucose_very_low")
    assert not eng.states["q"].open


def test_rebuild_without_timer_table_arms_hub_and_keeps_open_escalations() -> None:
    from rules.engine import rebuild
    hist = [reading(local("2026-04-01 08:00"), {"weight": 183.8}),
            reading(local("2026-04-02 08:00"), {"weight": 185.0})]
    now = local("2026-04-02 09:00")
    st = rebuild(patient_state(("CHF",), now=now), hist, now=now,
                 open_escalations={"bp.severe": "urgent"})
    assert st.open_escalations == {"bp.severe": Severity.URGENT}
    assert {t.key: t.due for t in pending_timers(st)} == {
        NO_DATA_KEY: local("2026-04-06 00:00"), "hub.offline:hub-1": local("2026-04-03 08:00")}
    run = Runner(st)
    out = run.send(reading(local("2026-04-03 07:00"), {"weight": 187.0}))
    assert [e.rule_id for e in _esc(out)] == ["chf.weight_gain_24h"]  # +2.0 lb vs Apr 2
    out = run.send(reading(local("2026-04-03 09:00"), {"systolic": 190}))
    assert [e.event for e in _esc(out)] == ["updated"]


def test_htn_window_uses_local_days_across_dst() -> None:
    # 12 readings on Mar 2..7 then Mar 8 (23 h day): window on Mar 8 is Mar 2..8.
    run = Runner(patient_state(("HTN",)))
    for d in range(2, 8):
        for h in ("08:00", "20:00"):
            run.send(reading(local(f"2026-03-0{d} {h}"), {"systolic": 150, "diastolic": 80}))
    out = run.send(reading(local("2026-03-08 23:30"), {"systolic": 100, "diastolic": 60}))
    (e,) = [x for x in _esc(out) if x.rule_id == "htn.bp_sustained"]
    assert e.values["readings"] == 13 and e.values["days"] == 7
    out = run.send(reading(local("2026-03-09 00:30"), {"systolic": 100, "diastolic": 60}))
    (e,) = [x for x in _esc(out) if x.rule_id == "htn.bp_sustained"]
    assert e.values["readings"] == 12  # Mar 2 left the window at local midnight


def test_redelivered_reading_is_kept_once() -> None:
    run = Runner(patient_state(("CHF",)))
    r = reading(local("2026-04-01 10:00"), {"spo2": 91}, rid="same")
    run.send(r)
    assert not _esc(run.send(r))  # one reading, not a pair
    assert len(run.st.series[Metric.SPO2]) == 1


def test_hub_tick_that_disagrees_with_state_rearms_and_never_loses_the_alarm() -> None:
    from rules.engine import rebuild
    now = local("2026-04-01 12:00")
    hist = [reading(local("2026-04-01 08:00"), {"weight": 180}),
            reading(local("2026-04-01 11:00"), {"weight": 180})]
    st = rebuild(patient_state(("CHF",), now=now), hist, now=now)  # no timer table
    early = local("2026-04-02 08:00")  # what the timer table held (armed at the first contact)
    st, eff = step(st, TimerFired("hub.offline:hub-1", early), early)
    assert not _esc(eff) and not [e for e in eff if isinstance(e, ScheduleTimer)]
    st, eff = step(st, TimerFired("hub.offline:hub-1", local("2026-04-02 11:00")),
                   local("2026-04-02 11:00"))
    assert [e.rule_id for e in eff if isinstance(e, Escalation)] == ["hub.offline"]
