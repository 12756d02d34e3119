"""Escalations: the domain objects and the lifecycle as one pure table.

How this works (h11-style): :data:`TRANSITIONS` maps ``(status, action)`` to
the next status; anything not in the table is a :class:`LifecycleError` that
says which action was refused in which state.  :func:`apply_action` is pure:
``(escalation, action, actor, now, **fields) -> (escalation, event)``; the
store persists both in one transaction (plus any notification rows a hook
adds), so a crash never loses or doubles a change.

Lifecycle::

    open --acknowledge--> acknowledged --resolve--> resolved
      |  \\--resolve-----------------------------/^
      +-- update / upgrade / assign / snooze / unsnooze / comment (stay)

Snooze is an attribute (``snoozed_until``, always with an expiry), not a
status.  After ``resolved`` the rule may open a new escalation.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    """How fast a clinician must look (CLINICAL.md)."""

    ROUTINE = "routine"
    URGENT = "urgent"
    EMERGENCY = "emergency"

    @property
    def rank(self) -> int:
        """Higher is more severe."""
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.ROUTINE: 0, Severity.URGENT: 1, Severity.EMERGENCY: 2}


class Status(StrEnum):
    """Where an escalation is in its lifecycle."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Action(StrEnum):
    """Things that happen to an escalation."""

    OPEN = "opened"
    UPDATE = "updated"
    UPGRADE = "upgraded"
    ACKNOWLEDGE = "acknowledged"
    ASSIGN = "assigned"
    SNOOZE = "snoozed"
    UNSNOOZE = "unsnoozed"
    COMMENT = "commented"
    RESOLVE = "resolved"


class Disposition(StrEnum):
    """Fixed list of ways an escalation can be closed."""

    PATIENT_CONTACTED_NO_CHANGE = "patient_contacted_no_change"
    MEDICATION_ADJUSTED = "medication_adjusted"
    VISIT_SCHEDULED = "visit_scheduled"
    SENT_TO_EMERGENCY_CARE = "sent_to_emergency_care"
    MEASUREMENT_ERROR = "measurement_error"
    DEVICE_ISSUE = "device_issue"
    FALSE_POSITIVE = "false_positive"
    PATIENT_UNREACHABLE = "patient_unreachable"
    DUPLICATE = "duplicate"
    OTHER = "other"


_S, _A = Status, Action
TRANSITIONS: dict[tuple[Status, Action], Status] = {
    (_S.OPEN, _A.UPDATE): _S.OPEN,
    (_S.OPEN, _A.UPGRADE): _S.OPEN,
    (_S.OPEN, _A.ACKNOWLEDGE): _S.ACKNOWLEDGED,
    (_S.OPEN, _A.ASSIGN): _S.OPEN,
    (_S.OPEN, _A.SNOOZE): _S.OPEN,
    (_S.OPEN, _A.UNSNOOZE): _S.OPEN,
    (_S.OPEN, _A.COMMENT): _S.OPEN,
    (_S.OPEN, _A.RESOLVE): _S.RESOLVED,
    (_S.ACKNOWLEDGED, _A.UPDATE): _S.ACKNOWLEDGED,
    # a higher severity re-opens the acknowledgement so it is paged again
    (_S.ACKNOWLEDGED, _A.UPGRADE): _S.OPEN,
    (_S.ACKNOWLEDGED, _A.ASSIGN): _S.ACKNOWLEDGED,
    (_S.ACKNOWLEDGED, _A.SNOOZE): _S.ACKNOWLEDGED,
    (_S.ACKNOWLEDGED, _A.UNSNOOZE): _S.ACKNOWLEDGED,
    (_S.ACKNOWLEDGED, _A.COMMENT): _S.ACKNOWLEDGED,
    (_S.ACKNOWLEDGED, _A.RESOLVE): _S.RESOLVED,
    (_S.RESOLVED, _A.COMMENT): _S.RESOLVED,
}

#: Evidence entries kept per escalation (newest kept; the count is recorded).
MAX_EVIDENCE = 50


class LifecycleError(ValueError):
    """An action the escalation's current state does not allow."""

    def __init__(self, status: Status, action: Action, detail: str = "") -> None:
        self.status, self.action = status, action
        super().__init__(detail or f"cannot {action.value.rstrip('ed')} an escalation "
                                   f"that is {status.value}")


@dataclass(frozen=True, slots=True)
class Trigger:
    """A rule's finding: open an escalation or add evidence to the open one."""

    practice_id: str
    patient_id: str
    rule_id: str
    rule_version: int
    severity: Severity
    trigger_at: datetime
    summary: str
    thresholds: dict[str, Any]
    evidence: dict[str, Any]
    late: bool = False
    #: Identifies the finding (e.g. the triggering reading id): a trigger whose key
    #: was already applied to this (patient, rule) is ignored, so re-evaluating
    #: readings after a crash never adds evidence or opens an escalation twice.
    key: str | None = None


@dataclass(frozen=True, slots=True)
class Escalation:
    """One escalation as stored."""

    id: str
    practice_id: str
    patient_id: str
    rule_id: str
    rule_version: int
    severity: Severity
    status: Status
    opened_at: datetime
    trigger_at: datetime
    updated_at: datetime
    summary: str
    thresholds: dict[str, Any]
    evidence: tuple[dict[str, Any], ...]
    late: bool = False
    assignee: str | None = None
    snoozed_until: datetime | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    disposition: Disposition | None = None
    trigger_count: int = 1

    def snoozed(self, now: datetime) -> bool:
        """True while a snooze is in force."""
        return self.snoozed_until is not None and now < self.snoozed_until


@dataclass(frozen=True, slots=True)
class EscalationEvent:
    """An audited transition of an escalation."""

    escalation_id: str
    at: datetime
    actor: str
    action: Action
    detail: dict[str, Any] = field(default_factory=dict)
    id: int | None = None


def open_from(trigger: Trigger, escalation_id: str, now: datetime) -> tuple[
        Escalation, EscalationEvent]:
    """A new escalation from a trigger."""
    esc = Escalation(
        id=escalation_id, practice_id=trigger.practice_id, patient_id=trigger.patient_id,
        rule_id=trigger.rule_id, rule_version=trigger.rule_version, severity=trigger.severity,
        status=Status.OPEN, opened_at=now, trigger_at=trigger.trigger_at, updated_at=now,
        summary=trigger.summary, thresholds=trigger.thresholds, evidence=(trigger.evidence,),
        late=trigger.late,
    )
    return esc, EscalationEvent(esc.id, now, "rules", Action.OPEN,
                                {"severity": trigger.severity.value, "summary": trigger.summary,
                                 "late": trigger.late})


def add_trigger(esc: Escalation, trigger: Trigger, now: datetime) -> tuple[
        Escalation, EscalationEvent]:
    """A new trigger on an open escalation: more evidence, or an upgrade."""
    action = Action.UPGRADE if trigger.severity.rank > esc.severity.rank else Action.UPDATE
    status = _next(esc.status, action)
    evidence = (*esc.evidence, trigger.evidence)[-MAX_EVIDENCE:]
    new = replace(
        esc, status=status, updated_at=now, evidence=evidence, summary=trigger.summary,
        thresholds=trigger.thresholds, trigger_count=esc.trigger_count + 1,
        severity=trigger.severity if action is Action.UPGRADE else esc.severity,
        acknowledged_at=None if status is Status.OPEN and action is Action.UPGRADE
        else esc.acknowledged_at,
        acknowledged_by=None if status is Status.OPEN and action is Action.UPGRADE
        else esc.acknowledged_by,
    )
    detail = {"summary": trigger.summary, "severity": new.severity.value}
    return new, EscalationEvent(esc.id, now, "rules", action, detail)


def _next(status: Status, action: Action) -> Status:
    try:
        return TRANSITIONS[(status, action)]
    except KeyError:
        raise LifecycleError(status, action) from None


def apply_action(esc: Escalation, action: Action, actor: str, now: datetime, *,
                 assignee: str | None = None, until: datetime | None = None,
                 comment: str | None = None,
                 disposition: Disposition | None = None) -> tuple[Escalation, EscalationEvent]:
    """Apply a person's action (acknowledge, assign, snooze, comment, resolve)."""
    status = _next(esc.status, action)
    detail: dict[str, Any] = {}
    new = replace(esc, status=status, updated_at=now)
    if action is Action.ACKNOWLEDGE:
        new = replace(new, acknowledged_at=now, acknowledged_by=actor)
    elif action is Action.ASSIGN:
        if not assignee:
            raise LifecycleError(esc.status, action, "assign needs an assignee")
        new = replace(new, assignee=assignee)
        detail["assignee"] = assignee
    elif action is Action.SNOOZE:
        if until is None or until <= now:
            raise LifecycleError(esc.status, action, "snooze needs an expiry in the future")
        new = replace(new, snoozed_until=until)
        detail["until"] = until.isoformat()
    elif action is Action.UNSNOOZE:
        new = replace(new, snoozed_until=None)
    elif action is Action.COMMENT:
        if not comment or not comment.strip():
            raise LifecycleError(esc.status, action, "a comment needs text")
    elif action is Action.RESOLVE:
        if disposition is None:
            raise LifecycleError(esc.status, action, "resolve needs a disposition")
        new = replace(new, resolved_at=now, resolved_by=actor, disposition=disposition,
                      snoozed_until=None)
        detail["disposition"] = disposition.value
    else:
        raise LifecycleError(esc.status, action, f"{action.value} is not a person's action")
    if comment:
        detail["comment"] = comment[:4000]
    return new, EscalationEvent(esc.id, now, actor, action, detail)
