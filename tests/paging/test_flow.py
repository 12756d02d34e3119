"""End to end on both stores: outbox hook, dispatcher, real HTTP receiver."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from gateway.escalations import Action, Disposition, Escalation, Severity, Trigger
from gateway.store import Store
from rules.paging.channels import DeliveryResult, PageMessage, PagerDutyChannel, WebhookChannel
from rules.paging.dispatcher import LEASE, Dispatcher, retry_delay
from rules.paging.outbox import install_paging
from rules.paging.policy import Policy, default_policy, parse_policy
from rules.paging.tokens import verify_ack_token, verify_signature
from tests.paging.conftest import T0, Clock, Receiver

SECRET = "webhook-secret"
KEY = "server-secret-key-for-tests-0123456789"


def make_policy(receiver: Receiver, *, first_repeat: int = 2,
                channels: tuple[str, ...] = ("webhook",)) -> Policy:
    return parse_policy({
        "timezone": "America/New_York",
        "contacts": {
            "dr_sup": {"name": "Dr Sup", "webhook": f"{receiver.url}/hook/dr_sup",
                       "pagerduty": "PDKEY-sup"},
            "dr_back": {"name": "Dr Back", "webhook": f"{receiver.url}/hook/dr_back",
                        "pagerduty": "PDKEY-back"},
        },
        "oncall": {"rotation": [{"person": "dr_back", "from": "mon 00:00"}]},
        "severities": {
            "emergency": [
                {"who": "supervising_physician", "channels": list(channels), "wait": "5m",
                 "repeat": first_repeat},
                {"who": "on_call_physician", "channels": list(channels), "wait": "5m",
                 "repeat": 1},
            ],
            "routine": [{"who": "coordinator_queue"}],
        },
    })


def trigger(severity: Severity = Severity.EMERGENCY, *, late: bool = False,
            at: datetime = T0) -> Trigger:
    return Trigger("p1", "pt1", "bp.severe", 1, severity, at,
                   "Alice Zephyrine: systolic 210", {"systolic": 180}, {"systolic": 210},
                   late=late)


def setup(store: Store, receiver: Receiver, clock: Clock, **kw: Any) -> Dispatcher:
    install_paging(store, make_policy(receiver, **kw), clock=clock,
                   public_url="https://rpm.example.org", secret_key=KEY)
    channels = {"webhook": WebhookChannel(SECRET),
                "pagerduty": PagerDutyChannel(f"{receiver.url}/pd")}
    return Dispatcher(store, channels, clock)  # type: ignore[arg-type]


def open_emergency(store: Store, clock: Clock, **kw: Any) -> Escalation:
    esc, _ = store.record_trigger(trigger(**kw), clock())
    return esc


def test_emergency_pages_repages_escalates_and_ack_stops(seeded: Store, receiver: Receiver,
                                                         clock: Clock) -> None:
    d = setup(seeded, receiver, clock)
    esc = open_emergency(seeded, clock)
    pages = seeded.list_pages(esc.id)  # written in the escalation's transaction
    assert [(p.recipient, p.channel, p.status) for p in pages] == [
        ("dr_sup", "webhook", "pending")]
    assert d.run_once().sent == 1
    first = receiver.requests[0]
    assert first.path == "/hook/dr_sup"
    assert first.headers["idempotency-key"] == pages[0].id
    assert verify_signature(SECRET, first.body, first.headers["x-vitalgate-signature"])
    body = first.json()
    assert body["escalation_id"] == esc.id and body["severity"] == "emergency"
    assert "Alice" not in first.body.decode() and "Zephyrine" not in first.body.decode()
    assert "AZ" in body["text"] and "3456" in body["text"]
    assert body["link"] == f"https://rpm.example.org/escalations/{esc.id}"
    token = body["ack_link"].rsplit("/", 1)[1]
    assert verify_ack_token(KEY, token, clock()) == esc.id

    clock.advance(minutes=4, seconds=59)
    d.run_once()
    assert len(receiver.unique) == 1
    clock.advance(seconds=1)  # 5 min: re-page 1
    d.run_once()
    clock.advance(minutes=5)  # 10 min: re-page 2
    d.run_once()
    assert receiver.paths() == ["/hook/dr_sup"] * 3
    clock.advance(minutes=5)  # 15 min: the on-call backup
    d.run_once()
    assert receiver.paths() == ["/hook/dr_sup"] * 3 + ["/hook/dr_back"]

    clock.advance(minutes=1)
    seeded.transition(esc.id, Action.ACKNOWLEDGE, "dr_back", clock())
    for _ in range(6):
        clock.advance(minutes=5)
        d.run_once()
    assert len(receiver.unique) == 4
    state = seeded.get_paging_state(esc.id)
    assert state is not None and state.stopped and state.stop_reason == "acknowledged by dr_back"
    trace = seeded.notification_trace(esc.id)
    attempts = [e for e in trace if e.what == "attempt"]
    assert [(e.recipient, e.channel, e.result.startswith("sent")) for e in attempts] == [
        ("dr_sup", "webhook", True)] * 3 + [("dr_back", "webhook", True)]
    assert attempts[0].at == T0
    notes = [e.result for e in trace if e.what == "note"]
    assert any("escalating to step 2" in n for n in notes)


def test_ack_before_step_two_is_traced(seeded: Store, receiver: Receiver,
                                       clock: Clock) -> None:
    d = setup(seeded, receiver, clock, first_repeat=0)
    esc = open_emergency(seeded, clock)
    d.run_once()
    clock.advance(minutes=2)
    seeded.transition(esc.id, Action.ACKNOWLEDGE, "dr_sup", clock())
    clock.advance(minutes=30)
    d.run_once()
    assert receiver.paths() == ["/hook/dr_sup"]
    notes = [e.result for e in seeded.notification_trace(esc.id) if e.what == "note"]
    assert "acknowledged before step 2 (on_call_physician)" in notes


def test_ack_cancels_pending_pages(seeded: Store, receiver: Receiver, clock: Clock) -> None:
    d = setup(seeded, receiver, clock)
    esc = open_emergency(seeded, clock)
    seeded.transition(esc.id, Action.ACKNOWLEDGE, "dr_sup", clock())  # before any send
    d.run_once()
    assert receiver.requests == []
    assert [p.status for p in seeded.list_pages(esc.id)] == ["cancelled"]
    assert [e.what for e in seeded.notification_trace(esc.id)].count("cancelled") == 1


def test_late_escalation_is_queued_not_paged(seeded: Store, receiver: Receiver,
                                             clock: Clock) -> None:
    d = setup(seeded, receiver, clock)
    esc = open_emergency(seeded, clock, late=True)
    assert esc.late
    for _ in range(5):
        d.run_once()
        clock.advance(minutes=10)
    assert seeded.list_pages(esc.id) == [] and receiver.requests == []
    notes = [e.result for e in seeded.notification_trace(esc.id)]
    assert any("late: reading arrived late" in n for n in notes)


def test_routine_goes_to_queue_only(seeded: Store, receiver: Receiver, clock: Clock) -> None:
    d = setup(seeded, receiver, clock)
    esc, _ = seeded.record_trigger(trigger(Severity.ROUTINE), clock())
    d.run_once()
    assert seeded.list_pages(esc.id) == []
    state = seeded.get_paging_state(esc.id)
    assert state is not None and state.stopped


def test_resolve_sends_pagerduty_resolve(seeded: Store, receiver: Receiver,
                                         clock: Clock) -> None:
    d = setup(seeded, receiver, clock, channels=("webhook", "pagerduty"))
    esc = open_emergency(seeded, clock)
    d.run_once()
    pd = [r for r in receiver.requests if r.path == "/pd"]
    assert len(pd) == 1
    ev = pd[0].json()
    assert ev["event_action"] == "trigger" and ev["dedup_key"] == esc.id
    assert ev["routing_key"] == "PDKEY-sup" and ev["payload"]["severity"] == "critical"
    assert "Alice" not in pd[0].body.decode()
    clock.advance(minutes=1)
    seeded.transition(esc.id, Action.RESOLVE, "dr_sup", clock(),
                      disposition=Disposition.SENT_TO_EMERGENCY_CARE)
    d.run_once()
    pd = [r.json() for r in receiver.requests if r.path == "/pd"]
    assert pd[-1] == {"routing_key": "PDKEY-sup", "event_action": "resolve",
                      "dedup_key": esc.id}
    hooks = [r.json() for r in receiver.requests if r.path.startswith("/hook")]
    assert [h["event"] for h in hooks] == ["trigger", "resolve"]
    clock.advance(minutes=20)
    d.run_once()
    assert len(receiver.requests) == 4  # no re-pages after resolve


class Crash(BaseException):
    """The dispatcher process dies (not an ordinary channel error)."""


class DiesAfterSend:
    def __init__(self, inner: WebhookChannel) -> None:
        self.inner = inner
        self.armed = True

    def send(self, message: PageMessage) -> DeliveryResult:
        result = self.inner.send(message)
        if self.armed:
            self.armed = False
            raise Crash
        return result


def test_crash_after_send_resends_once_with_same_key(seeded: Store, receiver: Receiver,
                                                     clock: Clock) -> None:
    setup(seeded, receiver, clock)
    esc = open_emergency(seeded, clock)
    dying = Dispatcher(seeded, {"webhook": DiesAfterSend(WebhookChannel(SECRET))}, clock, "w1")
    with pytest.raises(Crash):
        dying.run_once()
    assert len(receiver.requests) == 1
    (page,) = seeded.list_pages(esc.id)
    assert page.status == "pending"  # the send was never recorded
    fresh = Dispatcher(seeded, {"webhook": WebhookChannel(SECRET)}, clock, "w2")
    assert fresh.run_once().sent == 0  # still leased by the dead worker
    clock.advance(seconds=LEASE.total_seconds() + 1)
    assert fresh.run_once().sent == 1
    fresh.run_once()
    assert len(receiver.requests) == 2
    assert {r.headers["idempotency-key"] for r in receiver.requests} == {page.id}
    assert list(receiver.unique) == [page.id]
    assert seeded.list_pages(esc.id)[0].status == "sent"


def test_failed_delivery_retries_with_backoff(seeded: Store, receiver: Receiver,
                                              clock: Clock) -> None:
    d = setup(seeded, receiver, clock, first_repeat=0)
    esc = open_emergency(seeded, clock)
    receiver.fail_next = 2
    assert d.run_once().retried == 1
    assert d.run_once().retried == 0  # not due yet
    clock.advance(seconds=retry_delay(1).total_seconds())
    assert d.run_once().retried == 1
    clock.advance(seconds=retry_delay(2).total_seconds())
    assert d.run_once().sent == 1
    results = [e.result for e in seeded.notification_trace(esc.id) if e.what == "attempt"]
    assert results[0].startswith("failed: HTTP 503") and results[2].startswith("sent (202")
    page = seeded.list_pages(esc.id)[0]
    assert page.tries == 3 and page.status == "sent"


def test_urgent_pages_after_same_day_window(seeded: Store, receiver: Receiver,
                                            clock: Clock) -> None:
    base = make_policy(receiver)
    install_paging(seeded, default_policy(base.contacts, base.oncall, channels=("webhook",)),
                   clock=clock, secret_key=KEY)
    d = Dispatcher(seeded, {"webhook": WebhookChannel(SECRET)}, clock)
    esc, _ = seeded.record_trigger(trigger(Severity.URGENT), clock())
    d.run_once()
    assert receiver.requests == []
    clock.advance(hours=1, minutes=59)
    d.run_once()
    assert receiver.requests == []
    clock.advance(minutes=1)
    d.run_once()
    assert receiver.paths() == ["/hook/dr_sup"]
    assert seeded.get_escalation(esc.id).severity is Severity.URGENT


def test_upgrade_restarts_policy(seeded: Store, receiver: Receiver, clock: Clock) -> None:
    d = setup(seeded, receiver, clock)
    esc, _ = seeded.record_trigger(trigger(Severity.ROUTINE), clock())
    d.run_once()
    assert receiver.requests == []
    clock.advance(minutes=1)
    seeded.record_trigger(trigger(Severity.EMERGENCY, at=clock()), clock())
    d.run_once()
    assert receiver.paths() == ["/hook/dr_sup"]
    assert seeded.list_pages(esc.id)[0].round_no == 1


def test_retry_delay_is_exponential_and_capped() -> None:
    assert retry_delay(1) == timedelta(seconds=30)
    assert retry_delay(2) == timedelta(seconds=60)
    assert retry_delay(3) == timedelta(seconds=120)
    assert retry_delay(50) == timedelta(minutes=10)


def test_urgent_acknowledged_in_window_is_never_paged(seeded: Store, receiver: Receiver,
                                                      clock: Clock) -> None:
    base = make_policy(receiver)
    install_paging(seeded, default_policy(base.contacts, base.oncall, channels=("webhook",)),
                   clock=clock, secret_key=KEY)
    d = Dispatcher(seeded, {"webhook": WebhookChannel(SECRET)}, clock)
    esc, _ = seeded.record_trigger(trigger(Severity.URGENT), clock())
    clock.advance(minutes=90)
    seeded.transition(esc.id, Action.ACKNOWLEDGE, "coordinator", clock())
    clock.advance(hours=3)
    d.run_once()
    assert receiver.requests == [] and seeded.list_pages(esc.id) == []
    notes = [e.result for e in seeded.notification_trace(esc.id)]
    assert notes == ["step 1: coordinator queue",
                     "acknowledged before step 2 (supervising_physician)"]


def test_no_supervising_physician_falls_through_to_on_call(seeded: Store, receiver: Receiver,
                                                          clock: Clock) -> None:
    from gateway.model import Condition, Enrollment, Program
    seeded.upsert_enrollment(Enrollment("pt1", "p1", frozenset({Program.RPM}),
                                        frozenset({Condition.CHF}), None))
    d = setup(seeded, receiver, clock)
    esc = open_emergency(seeded, clock)
    d.run_once()
    assert receiver.paths() == ["/hook/dr_back"]
    notes = [e.result for e in seeded.notification_trace(esc.id) if e.what == "note"]
    assert notes[0].startswith("step 1 skipped: nobody to page as supervising_physician")


def test_trace_rows_for_the_api(seeded: Store, receiver: Receiver, clock: Clock) -> None:
    from rules.paging.trace import trace_rows
    d = setup(seeded, receiver, clock, first_repeat=0)
    esc = open_emergency(seeded, clock)
    d.run_once()
    rows = trace_rows(seeded)(esc.id)
    sent = [r for r in rows if r["what"] == "attempt"]
    assert sent == [{"at": T0, "channel": "webhook", "recipient": "Dr Sup",
                     "status": "sent (202, " + seeded.list_pages(esc.id)[0].id + ")",
                     "kind": "trigger", "what": "attempt", "step": 1}]


def test_resolver_failure_still_records_escalation_and_pages_backup(
        seeded: Store, receiver: Receiver, clock: Clock) -> None:
    from rules.paging.outbox import default_resolver

    real = default_resolver(seeded)

    def flaky(cur: Any, esc: Escalation, policy: Policy, who: str, at: datetime) -> list[str]:
        if who == "supervising_physician":
            raise RuntimeError("directory down")
        return real(cur, esc, policy, who, at)

    install_paging(seeded, make_policy(receiver), flaky, clock, secret_key=KEY)
    d = Dispatcher(seeded, {"webhook": WebhookChannel(SECRET)}, clock)
    esc = open_emergency(seeded, clock)
    assert seeded.get_escalation(esc.id).status.value == "open"
    d.run_once()
    assert receiver.paths() == ["/hook/dr_back"]
    notes = [e.result for e in seeded.notification_trace(esc.id) if e.what == "note"]
    assert "step 1: could not resolve supervising_physician (RuntimeError)" in notes


def test_policy_failure_queues_without_paging(seeded: Store, receiver: Receiver,
                                              clock: Clock) -> None:
    def broken(practice_id: str) -> Policy:
        raise KeyError(practice_id)

    install_paging(seeded, broken, clock=clock, secret_key=KEY)
    esc = open_emergency(seeded, clock)
    assert seeded.list_pages(esc.id) == []
    notes = [e.result for e in seeded.notification_trace(esc.id)]
    assert notes[0] == "paging policy unavailable (KeyError): queued, not paged"


def test_acknowledge_works_even_if_policy_breaks_later(seeded: Store, receiver: Receiver,
                                                       clock: Clock) -> None:
    policy = make_policy(receiver)
    state = {"broken": False}

    def policies(practice_id: str) -> Policy:
        if state["broken"]:
            raise KeyError(practice_id)
        return policy

    install_paging(seeded, policies, clock=clock, secret_key=KEY)
    esc = open_emergency(seeded, clock)
    state["broken"] = True
    seeded.transition(esc.id, Action.ACKNOWLEDGE, "dr_sup", clock())
    assert seeded.get_escalation(esc.id).status.value == "acknowledged"
    assert [p.status for p in seeded.list_pages(esc.id)] == ["cancelled"]


def test_snooze_pauses_repaging_until_it_expires(seeded: Store, receiver: Receiver,
                                                 clock: Clock) -> None:
    d = setup(seeded, receiver, clock)
    esc = open_emergency(seeded, clock)
    d.run_once()  # first page
    clock.advance(minutes=1)
    seeded.transition(esc.id, Action.SNOOZE, "coord", clock(),
                      until=clock() + timedelta(minutes=20))
    for _ in range(3):  # re-pages were due at 5 and 10 min: held while snoozed
        clock.advance(minutes=5)
        d.run_once()
    assert len(receiver.unique) == 1
    notes = [e.result for e in seeded.notification_trace(esc.id) if e.what == "note"]
    assert any(n.startswith("snoozed: next page at") for n in notes)
    clock.advance(minutes=6)  # 22 min: snooze over, re-page 1 goes out
    d.run_once()
    assert receiver.paths() == ["/hook/dr_sup"] * 2
