"""Persistence of escalations, their events and rule timers (mixin of SqlStore).

Every change goes through the pure functions of :mod:`gateway.escalations`
and is written with its event -- and whatever rows registered hooks add, such
as pages in the notification outbox -- in one transaction.  Timers (no-data,
snooze expiry, device/hub checks) are rows with a due time; workers claim due
rows with a lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), so any number
of workers can run them and a restart resumes where it was.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.escalations import (
    Action,
    Disposition,
    Escalation,
    EscalationEvent,
    Severity,
    Status,
    Trigger,
    add_trigger,
    apply_action,
    open_from,
)
from gateway.store.base import NotFound, Where

#: Called inside the transaction of every escalation change: (cursor, escalation, event).
EscalationHook = Callable[[Any, Escalation, EscalationEvent], None]

_ESC_COLS = ("id, practice_id, patient_id, rule_id, rule_version, severity, status, opened_at, "
             "trigger_at, updated_at, summary, thresholds, evidence, late, assignee, "
             "snoozed_until, acknowledged_at, acknowledged_by, resolved_at, resolved_by, "
             "disposition, trigger_count")

_INSERT_COLS = _ESC_COLS.replace("severity, status", "severity, severity_rank, status")


@dataclass(frozen=True, slots=True)
class Timer:
    """A due time kept in the store (e.g. ``adherence.no_data`` for a patient)."""

    id: int
    practice_id: str
    patient_id: str
    kind: str
    subject: str
    due_at: datetime


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def dumps(value: Any) -> str:
    """Compact JSON with datetimes as ISO strings."""
    return json.dumps(value, separators=(",", ":"), default=_json_default)


class EscalationStoreMixin:
    """Escalation, event and timer persistence; mixed into SqlStore."""

    # provided by SqlStore
    _tx: Any
    _exec: Any
    _all: Any
    _ts: Any
    _from_ts: Any
    _bool: Any
    _q: Any
    _for_update: str = ""
    _skip_locked: str = ""

    def _init_escalation_hooks(self) -> None:
        self._escalation_hooks: list[EscalationHook] = []

    def add_escalation_hook(self, hook: EscalationHook) -> None:
        """Run ``hook(cursor, escalation, event)`` inside every escalation transaction."""
        self._escalation_hooks.append(hook)

    # -- rows --------------------------------------------------------------
    def _esc(self, r: Sequence[Any]) -> Escalation:
        return Escalation(
            id=r[0], practice_id=r[1], patient_id=r[2], rule_id=r[3], rule_version=int(r[4]),
            severity=Severity(r[5]), status=Status(r[6]), opened_at=self._from_ts(r[7]),
            trigger_at=self._from_ts(r[8]), updated_at=self._from_ts(r[9]), summary=r[10],
            thresholds=json.loads(r[11]), evidence=tuple(json.loads(r[12])), late=bool(r[13]),
            assignee=r[14], snoozed_until=self._from_ts(r[15]),
            acknowledged_at=self._from_ts(r[16]), acknowledged_by=r[17],
            resolved_at=self._from_ts(r[18]), resolved_by=r[19],
            disposition=Disposition(r[20]) if r[20] else None, trigger_count=int(r[21]),
        )

    def _esc_params(self, e: Escalation) -> tuple[Any, ...]:
        return (e.id, e.practice_id, e.patient_id, e.rule_id, e.rule_version, e.severity.value,
                e.severity.rank, e.status.value, self._ts(e.opened_at), self._ts(e.trigger_at),
                self._ts(e.updated_at), e.summary, dumps(e.thresholds), dumps(list(e.evidence)),
                self._bool(e.late), e.assignee, self._ts(e.snoozed_until),
                self._ts(e.acknowledged_at), e.acknowledged_by, self._ts(e.resolved_at),
                e.resolved_by, e.disposition.value if e.disposition else None, e.trigger_count)

    def _write(self, cur: Any, esc: Escalation, event: EscalationEvent, insert: bool) -> None:
        if insert:
            params = self._esc_params(esc)
            self._exec(cur, f"INSERT INTO escalations ({_INSERT_COLS}) "
                            f"VALUES ({', '.join('?' * len(params))})", params)
        else:
            self._exec(cur, "UPDATE escalations SET severity = ?, severity_rank = ?, status = ?, "
                            "updated_at = ?, summary = ?, thresholds = ?, evidence = ?, "
                            "assignee = ?, snoozed_until = ?, acknowledged_at = ?, "
                            "acknowledged_by = ?, resolved_at = ?, resolved_by = ?, "
                            "disposition = ?, trigger_count = ? WHERE id = ?",
                       (esc.severity.value, esc.severity.rank, esc.status.value,
                        self._ts(esc.updated_at), esc.summary, dumps(esc.thresholds),
                        dumps(list(esc.evidence)), esc.assignee, self._ts(esc.snoozed_until),
                        self._ts(esc.acknowledged_at), esc.acknowledged_by,
                        self._ts(esc.resolved_at), esc.resolved_by,
                        esc.disposition.value if esc.disposition else None, esc.trigger_count,
                        esc.id))
        self._exec(cur, "INSERT INTO escalation_events (escalation_id, practice_id, at, actor, "
                        "action, detail) VALUES (?, ?, ?, ?, ?, ?)",
                   (esc.id, esc.practice_id, self._ts(event.at), event.actor, event.action.value,
                    dumps(event.detail)))
        for hook in self._escalation_hooks:
            hook(cur, esc, event)

    # -- rules side --------------------------------------------------------
    def record_trigger(self, trigger: Trigger, now: datetime) -> tuple[Escalation,
                                                                        EscalationEvent | None]:
        """Open an escalation for a trigger, or add evidence to / upgrade the open one.

        Returns the escalation and the event written; the event is ``None`` when
        the trigger's ``key`` was applied before (nothing changes).
        """
        with self._tx() as cur:
            if trigger.key is not None:
                seen = self._exec(cur, "SELECT escalation_id FROM escalation_triggers WHERE "
                                       "patient_id = ? AND rule_id = ? AND trigger_key = ?",
                                  (trigger.patient_id, trigger.rule_id, trigger.key)).fetchone()
                if seen is not None:
                    row = self._exec(cur, f"SELECT {_ESC_COLS} FROM escalations WHERE id = ?",
                                     (seen[0],)).fetchone()
                    return self._esc(row), None
            row = self._exec(cur, f"SELECT {_ESC_COLS} FROM escalations WHERE patient_id = ? "
                                  f"AND rule_id = ? AND status <> 'resolved'{self._for_update}",
                             (trigger.patient_id, trigger.rule_id)).fetchone()
            if row is None:
                esc, event = open_from(trigger, uuid.uuid4().hex, now)
                self._write(cur, esc, event, insert=True)
            else:
                esc, event = add_trigger(self._esc(row), trigger, now)
                self._write(cur, esc, event, insert=False)
            if trigger.key is not None:
                self._exec(cur, "INSERT INTO escalation_triggers (patient_id, rule_id, "
                                "trigger_key, escalation_id) VALUES (?, ?, ?, ?)",
                           (trigger.patient_id, trigger.rule_id, trigger.key, esc.id))
        return esc, event

    def rules_checkpoint(self, worker: str) -> datetime | None:
        """Ingest time up to which ``worker`` has evaluated committed readings."""
        rows = self._all("SELECT ingested_at FROM rules_checkpoints WHERE worker = ?", (worker,))
        return self._from_ts(rows[0][0]) if rows else None

    def set_rules_checkpoint(self, worker: str, ingested_at: datetime) -> None:
        """Record that ``worker`` evaluated every reading ingested up to ``ingested_at``."""
        with self._tx() as cur:
            self._exec(cur, "INSERT INTO rules_checkpoints (worker, ingested_at) VALUES (?, ?) "
                            "ON CONFLICT (worker) DO UPDATE SET ingested_at = "
                            "excluded.ingested_at", (worker, self._ts(ingested_at)))

    def open_rule_ids(self, patient_id: str) -> set[str]:
        """Rule ids with an escalation not yet resolved for a patient."""
        rows = self._all("SELECT rule_id FROM escalations WHERE patient_id = ? AND "
                         "status <> 'resolved'", (patient_id,))
        return {r[0] for r in rows}

    # -- people side -------------------------------------------------------
    def transition(self, escalation_id: str, action: Action, actor: str, now: datetime, *,
                   practice_id: str | None = None, assignee: str | None = None,
                   until: datetime | None = None, comment: str | None = None,
                   disposition: Disposition | None = None) -> Escalation:
        """Apply a person's action; raises NotFound or LifecycleError."""
        with self._tx() as cur:
            q = Where(f"SELECT {_ESC_COLS} FROM escalations WHERE id = ?", [escalation_id])
            q.eq("practice_id", practice_id)
            row = self._exec(cur, q.sql + self._for_update, q.params).fetchone()
            if row is None:
                raise NotFound(f"escalation {escalation_id}")
            esc, event = apply_action(self._esc(row), action, actor, now, assignee=assignee,
                                      until=until, comment=comment, disposition=disposition)
            self._write(cur, esc, event, insert=False)
        return esc

    def get_escalation(self, escalation_id: str, practice_id: str | None = None) -> Escalation:
        """One escalation (of a practice when given) or NotFound."""
        q = Where(f"SELECT {_ESC_COLS} FROM escalations WHERE id = ?", [escalation_id])
        q.eq("practice_id", practice_id)
        rows = self._all(q.sql, q.params)
        if not rows:
            raise NotFound(f"escalation {escalation_id}")
        return self._esc(rows[0])

    def list_escalations(
        self,
        practice_id: str,
        *,
        status: Sequence[Status] | Status | None = (Status.OPEN, Status.ACKNOWLEDGED),
        severity: Severity | None = None,
        assignee: str | None = None,
        patient_id: str | None = None,
        patient_ids: Sequence[str] | None = None,
        rule_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Escalation]:
        """The queue: most severe first, then oldest first."""
        statuses = (None if status is None else
                    [status] if isinstance(status, Status) else list(status))
        q = Where(f"SELECT {_ESC_COLS} FROM escalations WHERE practice_id = ?", [practice_id])
        q.among("status", None if statuses is None else [s.value for s in statuses])
        q.eq("severity", None if severity is None else Severity(severity).value)
        q.eq("assignee", assignee).eq("patient_id", patient_id).among("patient_id", patient_ids)
        q.eq("rule_id", rule_id)
        q.sql += " ORDER BY severity_rank DESC, opened_at, id LIMIT ? OFFSET ?"
        q.params.extend([int(limit), int(offset)])
        return [self._esc(r) for r in self._all(q.sql, q.params)]

    def count_escalations(
        self, practice_id: str,
        status: Sequence[Status] = (Status.OPEN, Status.ACKNOWLEDGED),
    ) -> int:
        """How many escalations of a practice are in ``status`` (the queue's size)."""
        q = Where("SELECT COUNT(*) FROM escalations WHERE practice_id = ?", [practice_id])
        q.among("status", [s.value for s in status])
        rows = self._all(q.sql, q.params)
        return int(rows[0][0])

    def escalation_events(self, escalation_id: str) -> list[EscalationEvent]:
        """Every audited transition of an escalation, oldest first."""
        rows = self._all("SELECT id, escalation_id, at, actor, action, detail FROM "
                         "escalation_events WHERE escalation_id = ? ORDER BY id",
                         (escalation_id,))
        return [EscalationEvent(id=int(r[0]), escalation_id=r[1], at=self._from_ts(r[2]),
                                actor=r[3], action=Action(r[4]), detail=json.loads(r[5]))
                for r in rows]

    # -- timers ------------------------------------------------------------
    def set_timer(self, practice_id: str, patient_id: str, kind: str, due_at: datetime,
                  subject: str = "") -> None:
        """Create or move the one timer of (patient, kind, subject)."""
        with self._tx() as cur:
            self._exec(cur, "INSERT INTO rule_timers (practice_id, patient_id, kind, subject, "
                            "due_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (patient_id, kind, "
                            "subject) DO UPDATE SET due_at = excluded.due_at, lease_until = NULL,"
                            " leased_by = NULL",
                       (practice_id, patient_id, kind, subject, self._ts(due_at)))

    def cancel_timer(self, patient_id: str, kind: str, subject: str = "") -> None:
        """Remove a timer if present."""
        with self._tx() as cur:
            self._exec(cur, "DELETE FROM rule_timers WHERE patient_id = ? AND kind = ? AND "
                            "subject = ?", (patient_id, kind, subject))

    def claim_due_timers(self, now: datetime, worker: str, lease_until: datetime,
                         limit: int = 100) -> list[Timer]:
        """Claim due timers not leased by a live worker; the lease expires at ``lease_until``."""
        with self._tx() as cur:
            rows = self._exec(cur, "SELECT id, practice_id, patient_id, kind, subject, due_at "
                                   "FROM rule_timers WHERE due_at <= ? AND (lease_until IS NULL "
                                   "OR lease_until < ?) ORDER BY due_at LIMIT ?"
                                   f"{self._for_update}{self._skip_locked}",
                              (self._ts(now), self._ts(now), int(limit))).fetchall()
            timers = [Timer(int(r[0]), r[1], r[2], r[3], r[4], self._from_ts(r[5]))
                      for r in rows]
            for t in timers:
                self._exec(cur, "UPDATE rule_timers SET lease_until = ?, leased_by = ? "
                                "WHERE id = ?", (self._ts(lease_until), worker, t.id))
        return timers

    def complete_timer(self, timer: Timer) -> None:
        """Delete a fired timer unless it was moved meanwhile (due time changed)."""
        with self._tx() as cur:
            self._exec(cur, "DELETE FROM rule_timers WHERE id = ? AND due_at = ?",
                       (timer.id, self._ts(timer.due_at)))

    def list_timers(self, patient_id: str | None = None) -> list[Timer]:
        """Timers (of one patient), soonest first."""
        sql = "SELECT id, practice_id, patient_id, kind, subject, due_at FROM rule_timers"
        params: list[Any] = []
        if patient_id is not None:
            sql += " WHERE patient_id = ?"
            params.append(patient_id)
        rows = self._all(sql + " ORDER BY due_at, id", params)
        return [Timer(int(r[0]), r[1], r[2], r[3], r[4], self._from_ts(r[5])) for r in rows]
