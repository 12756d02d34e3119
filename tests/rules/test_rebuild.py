"""Property: state rebuilt from stored history behaves exactly like a live engine."""

from __future__ import annotations

import heapq
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.model import Reading
from rules.engine import (
    Effect,
    PatientState,
    ScheduleTimer,
    TimerFired,
    history_needed,
    pending_timers,
    rebuild,
    rebuild_rows,
    step,
)
from tests.rules.harness import patient_state, reading

T0 = datetime(2026, 3, 1, 5, tzinfo=UTC)  # spans the March DST change in New York
OVERRIDES = {"copd.spo2_drop": {"enabled": True, "ordered_by": "dr",
                                "ordered_at": "2026-01-01T00:00:00+00:00"}}
CONDITIONS = ("CHF", "COPD", "HTN", "DM")

values = st.one_of(
    st.builds(lambda w: {"weight": w}, st.sampled_from([180.0, 181.0, 182.0, 183.5, 186.0])),
    st.builds(lambda s, d, p: {"systolic": s, "diastolic": d, "pulse": p},
              st.sampled_from([78, 120, 141, 150, 185]), st.sampled_from([70, 85, 92, 125]),
              st.sampled_from([38, 70, 115])),
    st.builds(lambda v: {"spo2": v}, st.sampled_from([86, 88, 91, 93, 96])),
    st.builds(lambda v: {"glucose": v},
              st.sampled_from([50, 60, 69, 120, 181, 260, "LO", "HI"])),
)
event = st.tuples(
    st.integers(min_value=0, max_value=36 * 60),  # minutes after the previous measurement
    st.one_of(st.just(0), st.just(0), st.integers(min_value=0, max_value=3 * 24 * 60)),  # delay
    values,
)


class Live:
    """An engine with its timer heap (what a worker plus the timer table do)."""

    def __init__(self, state: PatientState, timers: list[tuple[datetime, str]]) -> None:
        self.state = state
        self.timers = timers
        heapq.heapify(self.timers)

    def deliver(self, r: Reading, now: datetime) -> list[Effect]:
        out: list[Effect] = []
        while self.timers and self.timers[0][0] <= now:
            due, key = heapq.heappop(self.timers)
            self.state, eff = step(self.state, TimerFired(key, due), due)
            out += self._keep(eff)
        self.state, eff = step(self.state, r, now)
        return out + self._keep(eff)

    def _keep(self, eff: list[Effect]) -> list[Effect]:
        for e in eff:
            if isinstance(e, ScheduleTimer):
                heapq.heappush(self.timers, (e.due, e.key))
        return eff


def _stream(events: list[tuple[int, int, dict[str, Any]]]) -> list[tuple[datetime, Reading]]:
    t = T0
    out = []
    for i, (gap, delay, vals) in enumerate(events):
        t += timedelta(minutes=gap)
        arrival = t + timedelta(minutes=delay)
        r = reading(t, vals, rid=f"r{i:03d}")
        r = Reading(**{**{f: getattr(r, f) for f in r.__dataclass_fields__},
                       "received_at": arrival})
        out.append((arrival, r))
    out.sort(key=lambda x: (x[0], x[1].id))
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=st.lists(event, min_size=2, max_size=60), split=st.floats(0, 1),
       trim=st.booleans())
def test_rebuild_gives_same_subsequent_effects(events: list, split: float, trim: bool) -> None:
    stream = _stream(events)
    k = max(1, min(len(stream) - 1, int(split * len(stream))))
    live = Live(patient_state(CONDITIONS, overrides=OVERRIDES, now=T0), [])
    for now, r in stream[:k]:
        live.deliver(r, now)
    split_now = stream[k - 1][0]

    history = [r for _, r in stream[:k]]
    fresh = patient_state(CONDITIONS, overrides=OVERRIDES, now=split_now)
    if trim:  # only what the store must provide
        newest = max(r.measured_at for r in history)
        need = history_needed(fresh.rules)
        history = [r for r in history if r.measured_at >= newest - need]
    pending = {t.key: t.due for t in pending_timers(live.state)}
    warm = rebuild(fresh, history, now=split_now,
                   open_escalations=live.state.open_escalations, timers=pending)
    other = Live(warm, [(t.due, t.key) for t in pending_timers(warm)])

    for now, r in stream[k:]:
        a = live.deliver(r, now)
        b = other.deliver(r, now)
        a_esc = [e for e in a if not isinstance(e, ScheduleTimer)]
        b_esc = [e for e in b if not isinstance(e, ScheduleTimer)]
        assert a_esc == b_esc, (r, now)
        assert {(e.key, e.due) for e in a if isinstance(e, ScheduleTimer)} == \
            {(e.key, e.due) for e in b if isinstance(e, ScheduleTimer)}
    assert live.state.open_escalations == other.state.open_escalations


def _row(r: Reading) -> tuple:
    """A reading as the store's ``practice_rule_rows`` hands it to ``rebuild_rows``."""
    ms = tuple((m.metric, m.value, None if m.value is not None else m.special)
               for m in r.measurements)
    return (r.patient_id, r.id, r.hub_id, r.measured_at.timestamp(),
            r.received_at.timestamp(),
            None if r.ingested_at is None else r.ingested_at.timestamp(),
            str(r.source), r.flags, ms)


def snapshot(s: PatientState) -> tuple:
    """Everything a state remembers, comparable."""
    return ({m: x.entries for m, x in s.series.items()},
            {m: x.entries for m, x in s.daily.items()},
            s.newest, s.newest_day, s.last_qualifying, s.last_qualifying_day, s.no_data_due,
            s.no_data_fired, {h: (x.seen, x.armed, x.fired) for h, x in s.hubs.items()},
            s.open_escalations)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=st.lists(event, min_size=1, max_size=60))
def test_rebuild_from_rows_equals_rebuild_from_readings(events: list) -> None:
    stream = _stream(events)
    now = stream[-1][0]
    history = [r for _, r in stream]
    history[len(history) // 2:] = [  # some stored readings carry their ingest time
        Reading(**{**{f: getattr(r, f) for f in r.__dataclass_fields__}, "ingested_at": at})
        for at, r in stream[len(history) // 2:]]
    opened = {"bp.severe": "urgent"}
    a = rebuild(patient_state(CONDITIONS, overrides=OVERRIDES, now=now), history, now=now,
                open_escalations=opened)
    b = rebuild_rows(patient_state(CONDITIONS, overrides=OVERRIDES, now=now),
                     [_row(r) for r in reversed(history)], now=now, open_escalations=opened)
    assert snapshot(a) == snapshot(b)
    assert pending_timers(a) == pending_timers(b)
