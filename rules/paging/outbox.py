"""The paging engine: an escalation hook that writes pages in the same transaction.

How this works: :func:`install_paging` registers :meth:`PagingEngine.hook`
with the store.  On OPEN or UPGRADE (not ``late``) the hook writes the first
step's pages (due at once) and the policy position (``paging_state`` with the
step's wait as due time); on ACKNOWLEDGE or RESOLVE it cancels pending trigger
pages and stops the policy; on RESOLVE it also enqueues ``resolve`` pages on
channels that can close what they opened (PagerDuty, webhook).  When a wait
is over, the dispatcher calls :meth:`PagingEngine.advance`, which re-pages or
moves to the next step in one transaction, after locking the escalation.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.escalations import Action, Escalation, EscalationEvent, Severity, Status
from gateway.store.paging_store import Page, PagingState
from rules.paging.channels import ACK_LINK_TTL
from rules.paging.policy import (
    ON_CALL,
    QUEUE,
    RESOLVABLE_CHANNELS,
    SUPERVISING,
    Policy,
    Step,
    on_call_at,
    queue_only_policy,
)

log = logging.getLogger(__name__)

#: (cursor, escalation, policy, who, at) -> person ids to page for a step's ``who``.
RecipientsResolver = Callable[[Any, Escalation, Policy, str, datetime], list[str]]
PolicyForPractice = Callable[[str], Policy]
Clock = Callable[[], datetime]


def default_resolver(store: Any) -> RecipientsResolver:
    """Supervising physician from the enrolment (read with the hook's cursor), the
    on-call physician from the policy's rotation, a contact id as itself."""
    def resolve(cur: Any, esc: Escalation, policy: Policy, who: str, at: datetime) -> list[str]:
        if who == QUEUE:
            return []
        if who == SUPERVISING:
            row = store._exec(cur, "SELECT supervising_physician_id FROM enrollments WHERE "
                                   "patient_id = ?", (esc.patient_id,)).fetchone()
            return [row[0]] if row is not None and row[0] else []
        if who == ON_CALL:
            person = on_call_at(policy.oncall, at)
            return [person] if person else []
        return [who]
    return resolve


def _wall_clock() -> datetime:
    return datetime.now(UTC)


class PagingEngine:
    """Turns escalation changes and expired waits into pages."""

    def __init__(self, store: Any, policy_for_practice: PolicyForPractice,
                 recipients_resolver: RecipientsResolver | None = None,
                 clock: Clock | None = None, *, public_url: str = "http://127.0.0.1:8000",
                 secret_key: str = "", ack_ttl: timedelta = ACK_LINK_TTL) -> None:
        self.store = store
        self.policy_for_practice = policy_for_practice
        self.resolver = recipients_resolver or default_resolver(store)
        self.clock = clock or _wall_clock
        self.public_url, self.secret_key, self.ack_ttl = public_url, secret_key, ack_ttl

    # -- the hook (inside the escalation's transaction) ---------------------
    def hook(self, cur: Any, esc: Escalation, event: EscalationEvent) -> None:
        """Write pages / stop the policy for one escalation change."""
        now = event.at
        if event.action in (Action.OPEN, Action.UPGRADE):
            prev = self.store.lock_paging_state(cur, esc.id)
            if prev is not None:
                self.store.cancel_pending_pages(cur, esc.id, "trigger")
            round_no = 0 if prev is None else prev.round_no + 1
            if esc.late:
                self._stop(cur, esc, now, round_no=round_no, index=0,
                           reason="late: reading arrived late; queued for the coordinator, "
                                  "not paged")
                return
            if event.action is Action.UPGRADE:
                self.store.add_paging_note(cur, esc.id, now, None,
                                           f"upgraded to {esc.severity.value}: policy restarts")
            self._enter(cur, esc, self._policy(cur, esc, now), round_no=round_no, index=0,
                        now=now)
        elif event.action in (Action.ACKNOWLEDGE, Action.RESOLVE):
            state = self.store.lock_paging_state(cur, esc.id)
            self.store.cancel_pending_pages(cur, esc.id, "trigger")
            if state is not None and not state.stopped:
                verb = "acknowledged" if event.action is Action.ACKNOWLEDGE else "resolved"
                self._stop_state(cur, state, now, f"{verb} by {event.actor}",
                                 self._skipped(esc, state, verb))
            if event.action is Action.RESOLVE:
                self._enqueue_resolves(cur, esc, now)

    def _policy(self, cur: Any, esc: Escalation, now: datetime) -> Policy:
        try:
            return self.policy_for_practice(esc.practice_id)
        except Exception as exc:  # the escalation is stored (queued) even so
            log.exception("paging: no policy for practice %s", esc.practice_id)
            self.store.add_paging_note(cur, esc.id, now, None, "paging policy unavailable "
                                       f"({type(exc).__name__}): queued, not paged")
            return queue_only_policy()

    def _skipped(self, esc: Escalation, state: PagingState, verb: str) -> str | None:
        try:
            steps = self.policy_for_practice(esc.practice_id).steps_for(
                Severity(state.severity))
        except Exception:  # never let the trace wording block an acknowledgement
            log.exception("paging: no policy for practice %s", esc.practice_id)
            return None
        step = steps[state.step] if state.step < len(steps) else None
        if step is not None and state.repeats_done < step.repeat:
            return (f"{verb} before re-page {state.repeats_done + 1} of step "
                    f"{state.step + 1}")
        if state.step + 1 < len(steps):
            return f"{verb} before step {state.step + 2} ({steps[state.step + 1].who})"
        return None

    def _enqueue_resolves(self, cur: Any, esc: Escalation, now: datetime) -> None:
        done: set[tuple[str, str]] = set()
        for p in self.store.sent_pages(cur, esc.id, "trigger"):
            if p.channel in RESOLVABLE_CHANNELS and (p.recipient, p.channel) not in done:
                done.add((p.recipient, p.channel))
                self.store.insert_page(cur, replace(
                    p, id=uuid.uuid4().hex, kind="resolve", due_at=now, status="pending",
                    tries=0, provider_answer=None, last_error=None, sent_at=None), now)

    # -- policy steps --------------------------------------------------------
    def _write_pages(self, cur: Any, esc: Escalation, policy: Policy, step: Step, *,
                     index: int, attempt: int, round_no: int, now: datetime) -> int:
        if not step.pages:
            return 0
        n = 0
        try:
            people = self.resolver(cur, esc, policy, step.who, now)
        except Exception as exc:  # a resolver bug must not block the escalation itself
            log.exception("paging: resolving %s for escalation %s failed", step.who, esc.id)
            self.store.add_paging_note(cur, esc.id, now, index,
                                       f"step {index + 1}: could not resolve {step.who} "
                                       f"({type(exc).__name__})")
            people = []
        for person in people:
            contact = policy.contacts.get(person)
            channels = [c for c in step.channels if contact is None or contact.address(c)]
            if contact is None:
                self.store.add_paging_note(cur, esc.id, now, index,
                                           f"step {index + 1}: {person} is not a contact "
                                           "in the paging policy")
                continue
            for channel in channels:
                self.store.insert_page(cur, Page(
                    uuid.uuid4().hex, esc.id, esc.practice_id, round_no, index, attempt,
                    person, channel, "trigger", now), now)
                n += 1
        return n

    def _enter(self, cur: Any, esc: Escalation, policy: Policy, *, round_no: int, index: int,
               now: datetime) -> None:
        steps = policy.steps_for(esc.severity)
        while index < len(steps):
            step = steps[index]
            n = self._write_pages(cur, esc, policy, step, index=index, attempt=0,
                                  round_no=round_no, now=now)
            if step.who == QUEUE:
                self.store.add_paging_note(cur, esc.id, now, index,
                                           f"step {index + 1}: coordinator queue")
            elif n == 0:
                self.store.add_paging_note(cur, esc.id, now, index,
                                           f"step {index + 1} skipped: nobody to page as "
                                           f"{step.who} on {', '.join(step.channels)}")
                index += 1
                continue
            last = index + 1 >= len(steps) and step.repeat == 0
            if last:
                self._stop(cur, esc, now, round_no=round_no, index=index, reason="policy complete")
            else:
                self.store.put_paging_state(cur, PagingState(
                    esc.id, esc.practice_id, esc.severity.value, round_no, index, 0,
                    now + step.wait))
            return
        self._stop(cur, esc, now, round_no=round_no, index=index,
                   reason="no paging step for severity" if not steps else "policy exhausted")

    def _stop(self, cur: Any, esc: Escalation, now: datetime, *, round_no: int, index: int,
              reason: str) -> None:
        self._stop_state(cur, PagingState(esc.id, esc.practice_id, esc.severity.value,
                                          round_no, index, 0, None), now, reason, None)

    def _stop_state(self, cur: Any, state: PagingState, now: datetime, reason: str,
                    skipped: str | None) -> None:
        self.store.put_paging_state(cur, replace(state, next_due_at=None, stopped=True,
                                                 stop_reason=reason, stopped_at=now))
        self.store.add_paging_note(cur, state.escalation_id, now, state.step,
                                   skipped or f"stopped: {reason}")

    # -- expired waits (dispatcher) -------------------------------------------
    def advance(self, escalation_id: str, now: datetime) -> None:
        """Re-page or move to the next step if the wait is over and nobody acknowledged."""
        esc = self.store.get_escalation(escalation_id)
        with self.store._tx() as cur:
            row = self.store._exec(cur, "SELECT status, snoozed_until FROM escalations WHERE "
                                        f"id = ?{self.store._for_update}",
                                   (escalation_id,)).fetchone()
            state = self.store.lock_paging_state(cur, escalation_id)
            if state is None or state.stopped or state.next_due_at is None:
                return
            if state.next_due_at > now:  # moved meanwhile: just release the lease
                self.store.put_paging_state(cur, state)
                return
            if row is None or Status(row[0]) is not Status.OPEN:
                self._stop_state(cur, state, now, f"escalation is {row[0] if row else 'gone'}",
                                 None)
                return
            snoozed = self.store._from_ts(row[1])
            if snoozed is not None and snoozed > now:
                self.store.add_paging_note(cur, escalation_id, now, state.step,
                                           f"snoozed: next page at {snoozed.isoformat()}")
                self.store.put_paging_state(cur, replace(state, next_due_at=snoozed))
                return
            policy = self.policy_for_practice(esc.practice_id)
            steps = policy.steps_for(Severity(state.severity))
            step = steps[state.step] if state.step < len(steps) else None
            if step is not None and state.repeats_done < step.repeat:
                attempt = state.repeats_done + 1
                n = self._write_pages(cur, esc, policy, step, index=state.step, attempt=attempt,
                                      round_no=state.round_no, now=now)
                self.store.add_paging_note(cur, escalation_id, now, state.step,
                                           f"step {state.step + 1}: not acknowledged after "
                                           f"{step.wait}; re-page {attempt} of {step.repeat}"
                                           + ("" if n else " (nobody to page)"))
                more = attempt < step.repeat or state.step + 1 < len(steps)
                self.store.put_paging_state(cur, replace(
                    state, repeats_done=attempt, next_due_at=now + step.wait if more else None,
                    stopped=not more, stop_reason=None if more else "policy exhausted",
                    stopped_at=None if more else now))
                return
            if state.step + 1 < len(steps):
                self.store.add_paging_note(cur, escalation_id, now, state.step + 1,
                                           f"not acknowledged: escalating to step "
                                           f"{state.step + 2} ({steps[state.step + 1].who})")
                self._enter(cur, esc, policy, round_no=state.round_no, index=state.step + 1,
                            now=now)
                return
            self._stop_state(cur, state, now, "policy exhausted without acknowledgement", None)


def install_paging(store: Any, policy_for_practice: PolicyForPractice | Policy,
                   recipients_resolver: RecipientsResolver | None = None,
                   clock: Clock | None = None, *, public_url: str = "http://127.0.0.1:8000",
                   secret_key: str = "") -> PagingEngine:
    """Register the paging hook with ``store``; returns the engine (also
    ``store.paging_engine``, where a :class:`Dispatcher` finds it)."""
    policy_for: PolicyForPractice
    if isinstance(policy_for_practice, Policy):
        fixed = policy_for_practice

        def _fixed(_practice_id: str) -> Policy:
            return fixed
        policy_for = _fixed
    else:
        policy_for = policy_for_practice
    engine = PagingEngine(store, policy_for, recipients_resolver, clock,
                          public_url=public_url, secret_key=secret_key)
    store.add_escalation_hook(engine.hook)
    store.paging_engine = engine
    return engine
