"""Billing outreach reaches the coordinators' queue as routine items, once per situation."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from gateway.model import Condition, DeviceKind, Enrollment, Measurement, Program, Reading
from gateway.outreach import RULE_DEVICE_DAYS, RULE_MINUTES, run_outreach
from gateway.store import Store
from gateway.units import Metric
from tests.gateway.factories import seed_patient

NOW = datetime(2026, 3, 26, 15, 0, tzinfo=UTC)


def _days(store: Store, patient: str, days: list[date]) -> None:
    store.add_readings([Reading(id=f"{patient}-{d}", practice_id="p1", patient_id=patient,
                                device_serial="S", hub_id="h", kind=DeviceKind.SCALE,
                                measured_at=datetime(d.year, d.month, d.day, 14, tzinfo=UTC),
                                received_at=NOW, measurements=(Measurement(Metric.WEIGHT, 80.0),))
                        for d in days], NOW)


def test_at_risk_period_and_minutes_short_are_queued_once(store: Store) -> None:
    for pid in ("late", "good"):
        seed_patient(store, pid)
        store.upsert_enrollment(Enrollment(pid, "p1", frozenset({Program.RPM}),
                                           frozenset({Condition.HTN}), date(2026, 3, 1),
                                           monitoring_start=date(2026, 3, 1)))
    # period Mar 1..30: "late" has 5 device days by Mar 26 (cannot reach 16); "good" has 24
    _days(store, "late", [date(2026, 3, d) for d in (1, 2, 3, 10, 11)])
    _days(store, "good", [date(2026, 3, d) for d in range(1, 25)])
    store.add_time_entry(practice_id="p1", patient_id="good", user_id="u1",  # type: ignore[attr-defined]
                         program=Program.RPM, activity="call", started_at=NOW - timedelta(days=3),
                         minutes=14, interactive=True, performed_by="clinical_staff", note="",
                         now=NOW)
    assert run_outreach(store, NOW) == 2
    [dd] = store.list_escalations("p1", rule_id=RULE_DEVICE_DAYS)
    assert dd.patient_id == "late" and dd.severity.value == "routine"
    assert "5 device days so far" in dd.summary and "cannot reach 16" in dd.summary
    [mm] = store.list_escalations("p1", rule_id=RULE_MINUTES)
    assert mm.patient_id == "good" and "6 more reach 99457" in mm.summary
    assert run_outreach(store, NOW + timedelta(hours=1)) == 0  # unchanged: nothing new
    assert len(store.list_escalations("p1")) == 2
