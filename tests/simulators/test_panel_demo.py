"""Provisioning into every store, and the demo panel."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest

from gateway.model import Condition
from gateway.store import Store
from simulators.demo import build_demo_panel, provision_demo
from simulators.panel import build_panel, provision, sample_to_reading, sample_to_wire
from simulators.physiology import stable_profile
from simulators.scenario import _ruleset

NOW = datetime(2026, 3, 20, 15, 0, tzinfo=UTC)


def test_provision_registers_everything_idempotently(store: Store) -> None:
    profiles = [stable_profile("pv1", ["CHF", "DM"], seed=1),
                stable_profile("pv2", ["COPD"], seed=1, timezone="America/Denver")]
    panel = build_panel(profiles, start=date(2026, 3, 2), days=3, seed=1)
    provision(store, panel)
    provision(store, panel)  # twice: no duplicates, no conflicts
    assert [p.id for p in store.list_patients(panel.practice.id)] == ["pv1", "pv2"]
    assert store.get_enrollment("pv1").conditions == frozenset({Condition.CHF, Condition.DM})
    samples = list(panel.samples())
    for d in panel.devices:
        assert store.get_device(d.serial).kind == d.kind
        assert len(store.device_assignments(d.serial)) == 1
        first = next(s for s in samples if s.kind == d.kind
                     and d.serial.endswith(s.patient_id))
        a = store.active_assignment(d.serial, first.measured_at)
        assert a is not None and a.hub_id == f"hub-{a.patient_id}"
    assert store.get_hub("hub-pv2").patient_id == "pv2"
    result = store.add_readings([sample_to_reading(s, panel.practice.id) for s in samples],
                                NOW)
    assert len(result.stored) == len(samples) and not result.duplicates
    again = store.add_readings([sample_to_reading(s, panel.practice.id) for s in samples[:3]],
                               NOW)
    assert len(again.duplicates) == 3


def test_sample_to_wire_is_canonical() -> None:
    p = stable_profile("w", ["HTN"], seed=2)
    panel = build_panel([p], start=date(2026, 3, 2), days=1, seed=2)
    s = next(panel.samples())
    w = sample_to_wire(s)
    assert w.measured_at == s.measured_at
    assert {(v.metric, v.value) for v in w.values} == set(s.values.items())


def test_demo_panel_is_deterministic_and_mixed() -> None:
    a = build_demo_panel(7, now=NOW)
    b = build_demo_panel(7, now=NOW)
    assert a.panel.profiles == b.panel.profiles
    assert list(a.history())[:50] == list(b.history())[:50]
    panel = a.panel
    assert len(panel.patients) == 50 and len(panel.hubs) == 50
    conds = Counter(c for p in panel.profiles for c in p.conditions)
    assert all(conds[c] >= 5 for c in Condition)
    assert len({p.timezone for p in panel.profiles}) >= 3
    assert sum(bool(p.courses) for p in panel.profiles) >= 8
    hist, live = list(a.history()), list(a.live())
    assert hist and live
    assert max(s.measured_at for s in hist) < NOW <= min(s.measured_at for s in live)
    assert min(s.measured_at for s in hist) >= NOW - timedelta(days=31)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_demo_history_raises_real_escalations(seed: int) -> None:
    from rules.cli import PatientSpec, replay

    demo = build_demo_panel(seed, now=NOW)
    readings = [sample_to_reading(s, "demo") for s in demo.history()]
    specs = [PatientSpec(p.patient_id, tuple(p.conditions), p.timezone, ())
             for p in demo.panel.profiles]
    opened = Counter(e.rule_id for e in replay(specs, readings, _ruleset(), until=NOW)
                     if e.event == "opened")
    stories = {"chf.weight_gain_24h", "copd.spo2_low", "htn.bp_sustained",
               "dm.glucose_very_low", "dm.glucose_low"}
    assert len(stories & set(opened)) >= 4, opened
    assert not {"bp.severe", "bp.low", "pulse.abnormal", "spo2.low"} & set(opened), opened


def test_provision_demo(store: Store) -> None:
    demo = build_demo_panel(1, n_patients=6, days=5, now=NOW)
    provision_demo(store, demo)
    assert len(store.list_patients("demo")) == 6


def test_run_demo_history_then_live(plain: str) -> None:
    from simulators.demo import run_demo

    demo = build_demo_panel(2, n_patients=4, days=3, now=NOW, live_days=1)
    n_hist = sum(1 for _ in demo.history())
    n_live = sum(1 for _ in demo.live())
    clock = [0.0]

    def sleep(s: float) -> None:
        clock[0] += s

    stats = run_demo(demo, plain, live_speed=3600.0, wall_clock=lambda: clock[0], sleep=sleep)
    assert stats.readings_acked == n_hist + n_live
    stop = threading.Event()
    stop.set()
    stats = run_demo(demo, plain, stop=stop)  # stopped at once: history only
    assert stats.readings_acked == n_hist
