"""Escalation lifecycle: the pure table, and its persistence on every store."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gateway.escalations import (
    TRANSITIONS,
    Action,
    Disposition,
    LifecycleError,
    Severity,
    Status,
    Trigger,
)
from gateway.store import NotFound, Store
from tests.gateway.factories import T0


def trig(rule: str = "chf.weight_gain_24h", sev: Severity = Severity.URGENT,
         patient: str = "pt1", practice: str = "p1", n: int = 0) -> Trigger:
    return Trigger(practice_id=practice, patient_id=patient, rule_id=rule, rule_version=1,
                   severity=sev, trigger_at=T0 + timedelta(minutes=n), summary=f"finding {n}",
                   thresholds={"gain_lb": 2.0}, evidence={"reading_ids": [f"r{n}"]})


def test_table_has_no_way_out_of_resolved_but_comment() -> None:
    assert {a for (s, a) in TRANSITIONS if s is Status.RESOLVED} == {Action.COMMENT}


def test_one_open_per_patient_rule_and_evidence_accumulates(store: Store) -> None:
    e1, ev1 = store.record_trigger(trig(n=1), T0)
    e2, ev2 = store.record_trigger(trig(n=2), T0 + timedelta(minutes=5))
    assert ev1.action is Action.OPEN and ev2.action is Action.UPDATE
    assert e1.id == e2.id and e2.trigger_count == 2
    assert [e["reading_ids"] for e in store.get_escalation(e1.id).evidence] == [["r1"], ["r2"]]
    other, _ = store.record_trigger(trig(rule="bp.severe", n=3), T0)
    assert other.id != e1.id
    assert store.open_rule_ids("pt1") == {"chf.weight_gain_24h", "bp.severe"}


def test_upgrade_reopens_acknowledged(store: Store) -> None:
    e, _ = store.record_trigger(trig(sev=Severity.ROUTINE), T0)
    store.transition(e.id, Action.ACKNOWLEDGE, "dr-a", T0 + timedelta(minutes=1))
    up, ev = store.record_trigger(trig(sev=Severity.URGENT, n=1), T0 + timedelta(minutes=2))
    assert ev.action is Action.UPGRADE
    assert up.status is Status.OPEN and up.severity is Severity.URGENT
    assert up.acknowledged_by is None


def test_full_lifecycle_is_audited(store: Store) -> None:
    e, _ = store.record_trigger(trig(), T0)
    t = T0 + timedelta(minutes=1)
    store.transition(e.id, Action.ASSIGN, "coord-1", t, assignee="coord-2")
    store.transition(e.id, Action.SNOOZE, "coord-2", t, until=t + timedelta(hours=2))
    store.transition(e.id, Action.ACKNOWLEDGE, "coord-2", t)
    store.transition(e.id, Action.COMMENT, "coord-2", t, comment="called patient")
    done = store.transition(e.id, Action.RESOLVE, "coord-2", t,
                            disposition=Disposition.MEDICATION_ADJUSTED)
    assert done.status is Status.RESOLVED and done.disposition is Disposition.MEDICATION_ADJUSTED
    assert done.snoozed_until is None and done.assignee == "coord-2"
    actions = [ev.action for ev in store.escalation_events(e.id)]
    assert actions == [Action.OPEN, Action.ASSIGN, Action.SNOOZE, Action.ACKNOWLEDGE,
                       Action.COMMENT, Action.RESOLVE]
    again, ev = store.record_trigger(trig(n=9), t + timedelta(hours=1))
    assert ev.action is Action.OPEN and again.id != e.id


def test_refused_actions(store: Store) -> None:
    e, _ = store.record_trigger(trig(), T0)
    with pytest.raises(LifecycleError, match="expiry"):
        store.transition(e.id, Action.SNOOZE, "c", T0, until=T0)
    with pytest.raises(LifecycleError, match="disposition"):
        store.transition(e.id, Action.RESOLVE, "c", T0)
    store.transition(e.id, Action.RESOLVE, "c", T0, disposition=Disposition.FALSE_POSITIVE)
    with pytest.raises(LifecycleError):
        store.transition(e.id, Action.ACKNOWLEDGE, "c", T0)
    with pytest.raises(NotFound):
        store.transition(e.id, Action.COMMENT, "c", T0, practice_id="p2", comment="x")


def test_queue_order_and_scoping(store: Store) -> None:
    store.record_trigger(trig(rule="a", sev=Severity.ROUTINE), T0)
    store.record_trigger(trig(rule="b", sev=Severity.URGENT), T0 + timedelta(minutes=1))
    store.record_trigger(trig(rule="c", sev=Severity.URGENT), T0)
    store.record_trigger(trig(rule="d", practice="p2", patient="x"), T0)
    assert [e.rule_id for e in store.list_escalations("p1")] == ["c", "b", "a"]
    assert [e.rule_id for e in store.list_escalations("p1", severity=Severity.ROUTINE)] == ["a"]
    assert [e.rule_id for e in store.list_escalations("p2")] == ["d"]
    with pytest.raises(NotFound):
        store.get_escalation(store.list_escalations("p2")[0].id, practice_id="p1")


def test_hooks_run_in_the_same_transaction(store: Store) -> None:
    seen: list[str] = []

    def boom(cur: object, esc: object, event: object) -> None:
        seen.append("called")
        raise RuntimeError("notification outbox unavailable")

    store.add_escalation_hook(boom)
    with pytest.raises(RuntimeError):
        store.record_trigger(trig(), T0)
    assert seen == ["called"]
    assert store.list_escalations("p1") == []  # rolled back with the hook


def test_timers_claim_lease_and_move(store: Store) -> None:
    store.set_timer("p1", "pt1", "adherence.no_data", T0 + timedelta(days=3))
    store.set_timer("p1", "pt2", "adherence.no_data", T0 + timedelta(days=1))
    assert store.claim_due_timers(T0, "w1", T0 + timedelta(minutes=1)) == []
    now = T0 + timedelta(days=2)
    [t] = store.claim_due_timers(now, "w1", now + timedelta(minutes=1))
    assert t.patient_id == "pt2"
    assert store.claim_due_timers(now, "w2", now + timedelta(minutes=1)) == []  # leased
    later = now + timedelta(minutes=2)
    [again] = store.claim_due_timers(later, "w2", later + timedelta(minutes=1))  # lease expired
    assert again.id == t.id
    store.complete_timer(again)
    assert [x.patient_id for x in store.list_timers()] == ["pt1"]
    # moving a timer while it is claimed keeps it
    store.set_timer("p1", "pt1", "adherence.no_data", T0)
    [c] = store.claim_due_timers(now, "w1", now + timedelta(minutes=1))
    store.set_timer("p1", "pt1", "adherence.no_data", now + timedelta(days=3))
    store.complete_timer(c)
    assert len(store.list_timers("pt1")) == 1


def test_trigger_key_applies_once_even_after_resolve(store: Store) -> None:
    t = Trigger("p1", "pt1", "bp.severe", 1, Severity.URGENT, T0, "BP 190/100", {}, {"r": 1},
                key="reading-1")
    e1, ev1 = store.record_trigger(t, T0)
    again, ev2 = store.record_trigger(t, T0 + timedelta(seconds=1))
    assert ev1 is not None and ev2 is None and again.id == e1.id
    assert store.get_escalation(e1.id).trigger_count == 1
    store.transition(e1.id, Action.RESOLVE, "c", T0, disposition=Disposition.FALSE_POSITIVE)
    _, ev3 = store.record_trigger(t, T0 + timedelta(seconds=2))
    assert ev3 is None  # re-evaluating the same reading does not reopen
    assert len(store.list_escalations("p1", status=None)) == 1


def test_rules_checkpoint(store: Store) -> None:
    assert store.rules_checkpoint("w") is None
    store.set_rules_checkpoint("w", T0)
    store.set_rules_checkpoint("w", T0 + timedelta(seconds=5))
    assert store.rules_checkpoint("w") == T0 + timedelta(seconds=5)
