"""The rules runtime: the pure engine wired to the store (the only I/O around it).

How this works
--------------
- :meth:`RulesRuntime.on_committed` is the ingest pipeline's consumer: after a
  batch is committed it receives the newly stored readings, groups them per
  patient in measured-time order and steps each patient's state.  Effects
  become store writes: an escalation finding is a :class:`Trigger` recorded
  with ``store.record_trigger`` (paging hooks write pages in the same
  transaction); a timer request is a due time in ``rule_timers``.
- A patient's state is loaded lazily: the enrolment and care plan compose the
  rules, and the state is *rebuilt* from the stored readings within
  ``history_needed`` (readings of the batch being evaluated are left out, so
  nothing counts twice) and the open escalations.  Idle states are evicted.
- Evaluation is **at least once**, effects **exactly once**: the runtime
  records a checkpoint (ingest time evaluated up to) after each batch; on
  start, :meth:`catch_up` re-evaluates every reading ingested since the
  checkpoint, which covers a crash between ingest's commit and this hand-off.
  Each finding carries a key (the triggering reading id, or the timer and its
  due time), and the store applies a key once per (patient, rule), so a
  re-evaluated reading never adds evidence or reopens an escalation twice.
- Timers (no data, hub offline) are claimed from the store with a lease by
  :meth:`run_due_timers`, so a restart resumes them and several workers can
  share them.
- ``now`` comes from an injected clock; nothing here reads the wall clock.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from operator import attrgetter, itemgetter
from typing import Any

from gateway.escalations import Action, Escalation, EscalationEvent, Trigger
from gateway.model import Condition, Reading
from gateway.store import NotFound, Store
from rules.definitions import Override, RuleSet, load_defaults
from rules.engine import (
    DEFAULT_LATE_BOUND,
    Effect,
    PatientState,
    ScheduleTimer,
    TimerFired,
    history_needed,
    mark_resolved,
    new_state,
    rebuild,
    rebuild_rows,
    step,
)
from rules.engine import Escalation as Finding

log = logging.getLogger(__name__)

#: How long a claimed timer stays leased to this worker (a crashed worker's
#: timers are picked up by another after this).
TIMER_LEASE = timedelta(seconds=60)
#: States untouched this long are dropped (rebuilt from the store when needed).
IDLE_EVICTION = timedelta(hours=6)
#: Upper bound of readings re-evaluated at start (a day of a large practice).
CATCH_UP_MAX = 2_000_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def overrides_from_store(store: Store, patient_id: str, practice_id: str) -> list[Override]:
    """Care-plan overrides of a patient as the engine wants them (if the store keeps any)."""
    lister = getattr(store, "list_care_plan_overrides", None)
    if lister is None:
        return []
    return to_overrides(lister(patient_id, practice_id))


def to_overrides(care_plan: Iterable[Any]) -> list[Override]:
    """Stored care-plan overrides as engine :class:`Override`\\ s (revocation ends them)."""
    out = []
    for cp in care_plan:
        params: dict[str, Any] = dict(cp.params)
        if not cp.enabled:
            params["enabled"] = False
        expires = cp.expires_at
        if cp.revoked_at is not None and (expires is None or cp.revoked_at < expires):
            expires = cp.revoked_at
        out.append(Override(cp.rule_id, params, cp.ordered_by, cp.ordered_at, expires))
    return out


class RulesRuntime:
    """Owns per-patient rule states for one worker and applies their effects."""

    def __init__(self, store: Store, ruleset: RuleSet | None = None, *,
                 clock: Callable[[], datetime], worker: str = "rules",
                 late_bound: timedelta = DEFAULT_LATE_BOUND) -> None:
        self.store = store
        self.ruleset = ruleset or load_defaults()
        self.clock = clock
        self.worker = worker
        self.late_bound = late_bound
        self.states: dict[str, PatientState] = {}
        self._practice: dict[str, str] = {}
        self._touched: dict[str, datetime] = {}
        self._lock = threading.RLock()
        self._window = history_needed(self.ruleset.rules) + late_bound
        self._timers: dict[tuple[str, str], tuple[str, datetime]] = {}
        self.evaluated = 0
        self.findings = 0
        store.add_escalation_hook(self._on_escalation_change)

    # -- state -------------------------------------------------------------
    def _load(self, patient_id: str, now: datetime, *, exclude: Iterable[str] = (),
              ingested_before: datetime | None = None) -> PatientState | None:
        try:
            patient = self.store.get_patient(patient_id)
        except NotFound:
            log.warning("readings for unknown patient id; not evaluated")
            return None
        try:
            conditions: Iterable[Condition] = self.store.get_enrollment(patient_id).conditions
        except NotFound:
            conditions = ()
        overrides = overrides_from_store(self.store, patient_id, patient.practice_id)
        st = new_state(patient_id, patient.timezone, conditions, self.ruleset, overrides,
                       now=now, late_bound=self.late_bound)
        skip = set(exclude)
        history = [r for r in self.store.get_readings(patient_id, start=now - self._window,
                                                      limit=1_000_000)
                   if r.id not in skip and (ingested_before is None or r.ingested_at is None
                                            or r.ingested_at < ingested_before)]
        open_now = {e.rule_id: e.severity.value for e in self.store.list_escalations(
            patient.practice_id, patient_id=patient_id, limit=1000)}
        rebuild(st, history, now=now, open_escalations=open_now)
        self.states[patient_id] = st
        self._practice[patient_id] = patient.practice_id
        return st

    def warm(self, practice_id: str, now: datetime) -> int:
        """Rebuild every patient of a practice in bulk (a worker taking over a shard).

        One query streams the practice's readings in the rules' window, ordered
        by patient, instead of one query per patient.  A store that offers
        ``practice_rule_rows`` hands over light rows (no :class:`Reading`, no
        datetimes) that :func:`~rules.engine.rebuild_rows` feeds straight in.
        """
        patients = {p.id: p for p in self.store.list_patients(practice_id)}
        lister = getattr(self.store, "list_enrollments", None)
        conditions = {e.patient_id: e.conditions for e in (lister(practice_id) if lister else [])}
        bulk = getattr(self.store, "list_practice_care_plan_overrides", None)
        care_plans: dict[str, list[Any]] = defaultdict(list)
        for cp in (bulk(practice_id) if bulk else []):
            care_plans[cp.patient_id].append(cp)
        open_by_patient: dict[str, dict[str, str]] = defaultdict(dict)
        for e in self.store.list_escalations(practice_id, limit=10_000_000):
            open_by_patient[e.patient_id][e.rule_id] = e.severity.value
        light = getattr(self.store, "practice_rule_rows", None)
        history: Iterable[Any] = (
            light(practice_id, since=now - self._window) if light is not None else
            self.store.practice_readings(practice_id, since=now - self._window))  # type: ignore[attr-defined]
        patient_of = itemgetter(0) if light is not None else attrgetter("patient_id")
        with self._lock:
            current: str | None = None
            batch: list[Any] = []

            def finish(pid: str | None, rows: list[Any]) -> None:
                if pid is None or pid not in patients:
                    return
                p = patients[pid]
                st = new_state(pid, p.timezone, conditions.get(pid, ()), self.ruleset,
                               to_overrides(care_plans.get(pid, ())) if bulk else
                               overrides_from_store(self.store, pid, practice_id), now=now,
                               late_bound=self.late_bound)
                if light is not None:
                    rebuild_rows(st, rows, now=now, open_escalations=open_by_patient.get(pid, {}))
                else:
                    rebuild(st, rows, now=now, open_escalations=open_by_patient.get(pid, {}))
                self.states[pid] = st
                self._practice[pid] = practice_id
                self._touched[pid] = now

            for r in history:
                pid = patient_of(r)
                if pid != current:
                    finish(current, batch)
                    current, batch = pid, []
                batch.append(r)
            finish(current, batch)
        return len(self.states)

    def evict_idle(self, now: datetime, idle: timedelta = IDLE_EVICTION) -> int:
        """Drop states not used for ``idle``; return how many were dropped."""
        with self._lock:
            old = [p for p, t in self._touched.items() if now - t >= idle]
            for p in old:
                self.states.pop(p, None)
                self._touched.pop(p, None)
            return len(old)

    # -- readings ----------------------------------------------------------
    def on_committed(self, readings: Sequence[Reading]) -> None:
        """Ingest consumer: evaluate newly committed readings, then checkpoint."""
        if not readings:
            return
        now = self.clock()
        with self._lock:
            self._evaluate(readings, now)
            ingested = [r.ingested_at for r in readings if r.ingested_at is not None]
            if ingested:
                self.store.set_rules_checkpoint(self.worker, max(ingested))

    def _evaluate(self, readings: Sequence[Reading], now: datetime, *,
                  ingested_before: datetime | None = None) -> None:
        groups: dict[str, list[Reading]] = defaultdict(list)
        for r in readings:
            groups[r.patient_id].append(r)
        self._timers = {}
        for patient_id, group in groups.items():
            group.sort(key=lambda r: (r.measured_at, r.id))
            st = self.states.get(patient_id)
            if st is None:
                st = self._load(patient_id, now, exclude=[r.id for r in group],
                                ingested_before=ingested_before)
                if st is None:
                    continue
            for r in group:
                st, effects = step(st, r, now)
                self.evaluated += 1
                self._apply(patient_id, r.practice_id, effects, key=r.id, now=now)
            self.states[patient_id] = st
            self._touched[patient_id] = now
        self._flush_timers()

    def _flush_timers(self) -> None:
        # a batch moves a patient's no-data / hub timers many times: write the last only
        timers, self._timers = self._timers, {}
        for (patient_id, key), (practice_id, due) in timers.items():
            self.store.set_timer(practice_id, patient_id, key, due)

    def catch_up(self) -> int:
        """Re-evaluate readings ingested since the checkpoint; return how many.

        Everything ingested before the checkpoint is history (rebuilt silently);
        everything at or after it is evaluated again, and the trigger keys make
        that harmless for readings that were evaluated before a crash.
        """
        since = self.store.rules_checkpoint(self.worker) or EPOCH
        with self._lock:
            self.states.clear()
            pending = self.store.readings_ingested_since(since, limit=CATCH_UP_MAX)
            if pending:
                self._evaluate(pending, self.clock(), ingested_before=since)
                last = max(r.ingested_at for r in pending if r.ingested_at is not None)
                self.store.set_rules_checkpoint(self.worker, last)
        if pending:
            log.info("rules caught up on %d readings ingested since the checkpoint",
                     len(pending))
        return len(pending)

    # -- timers ------------------------------------------------------------
    def run_due_timers(self, now: datetime | None = None, limit: int = 500) -> int:
        """Fire due timers (claimed with a lease); return how many fired."""
        now = now or self.clock()
        timers = self.store.claim_due_timers(now, self.worker, now + TIMER_LEASE, limit)
        with self._lock:
            for t in timers:
                # rebuild as of just before the due time: rebuild() takes timers
                # already due as fired, and this one has not fired yet
                st = self.states.get(t.patient_id) or self._load(
                    t.patient_id, min(now, t.due_at - timedelta(milliseconds=1)))
                if st is not None:
                    st, effects = step(st, TimerFired(t.kind, t.due_at), now)
                    self.states[t.patient_id] = st
                    self._apply(t.patient_id, t.practice_id, effects,
                                key=f"timer:{t.kind}:{t.due_at.isoformat()}", now=now)
                self.store.complete_timer(t)
                self._flush_timers()
        return len(timers)

    # -- effects -----------------------------------------------------------
    def _apply(self, patient_id: str, practice_id: str, effects: list[Effect], *, key: str,
               now: datetime) -> None:
        for effect in effects:
            if isinstance(effect, ScheduleTimer):
                self._timers[(effect.patient_id, effect.key)] = (practice_id, effect.due)
            elif isinstance(effect, Finding):
                self.findings += 1
                self.store.record_trigger(trigger_from(effect, practice_id, key), now)

    def _on_escalation_change(self, cur: Any, esc: Escalation, event: EscalationEvent) -> None:
        """Keep the in-memory 'open' view in step when a person resolves an escalation."""
        if event.action is Action.RESOLVE:
            st = self.states.get(esc.patient_id)
            if st is not None:
                mark_resolved(st, esc.rule_id)


def trigger_from(finding: Finding, practice_id: str, key: str) -> Trigger:
    """The store's :class:`Trigger` for an engine finding."""
    evidence = finding.evidence()
    evidence["reading_ids"] = [r.reading_id for r in finding.readings]
    evidence["event"] = finding.event.value
    return Trigger(
        practice_id=practice_id, patient_id=finding.patient_id, rule_id=finding.rule_id,
        rule_version=finding.rule_version, severity=finding.severity,
        trigger_at=finding.at, summary=finding.summary, thresholds=dict(finding.thresholds),
        evidence=evidence, late=finding.late, key=key,
    )
