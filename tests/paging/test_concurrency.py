"""Several dispatchers on one store: each page is sent once (leases, SKIP LOCKED)."""

from __future__ import annotations

import threading
from datetime import date

from gateway.escalations import Action, Severity, Trigger
from gateway.model import Condition, Enrollment, Patient, Practice, Program
from gateway.store import Store
from rules.paging.channels import DeliveryResult, PageMessage
from rules.paging.dispatcher import Dispatcher
from rules.paging.outbox import install_paging
from rules.paging.policy import parse_policy
from tests.paging.conftest import T0, Clock


class Recorder:
    def __init__(self) -> None:
        self.ids: list[str] = []
        self.lock = threading.Lock()

    def send(self, message: PageMessage) -> DeliveryResult:
        with self.lock:
            self.ids.append(message.page_id)
        return DeliveryResult(True, 200, message.page_id)


def test_parallel_dispatchers_send_each_page_once(store: Store, clock: Clock) -> None:
    store.upsert_practice(Practice("p1", "Clinic"))
    policy = parse_policy({
        "contacts": {"dr": {"name": "Dr", "webhook": "http://unused"}},
        "severities": {"emergency": [{"who": "supervising_physician",
                                      "channels": ["webhook"], "wait": "5m", "repeat": 3}]}})
    install_paging(store, policy, clock=clock, secret_key="k")
    escs = []
    for i in range(12):
        store.upsert_patient(Patient(f"pt{i}", "p1", f"MRN{i:04d}", "Given", "Family",
                                     date(1950, 1, 1), "UTC"))
        store.upsert_enrollment(Enrollment(f"pt{i}", "p1", frozenset({Program.RPM}),
                                           frozenset({Condition.HTN}), None,
                                           supervising_physician_id="dr"))
        esc, _ = store.record_trigger(Trigger("p1", f"pt{i}", "bp.severe", 1,
                                              Severity.EMERGENCY, T0, "s", {}, {}), clock())
        escs.append(esc)
    rec = Recorder()
    workers = [Dispatcher(store, {"webhook": rec}, clock, f"w{n}") for n in range(4)]

    def tick() -> None:
        threads = [threading.Thread(target=w.run_once) for w in workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)

    tick()
    for _ in range(3):  # three re-page rounds
        clock.advance(minutes=5)
        tick()
    store.transition(escs[0].id, Action.ACKNOWLEDGE, "dr", clock())
    clock.advance(minutes=5)
    tick()
    all_pages = [p for e in escs for p in store.list_pages(e.id)]
    assert len(all_pages) == 12 * 4
    assert sorted(rec.ids) == sorted(p.id for p in all_pages)  # each exactly once
    assert all(p.status == "sent" for p in all_pages)
