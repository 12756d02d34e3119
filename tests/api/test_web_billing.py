"""Biller month-end page, CSV export (agrees with the JSON API), and the call timer form."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

from tests.api.conftest import T0, Env
from tests.api.test_web import page_csrf, web_login


def test_billing_page_and_csv_agree_with_the_api(env: Env) -> None:
    client = web_login(env, "biller")
    month = f"{T0:%Y-%m}"
    page = client.get(f"/billing?month={month}")
    assert page.status_code == 200 and f"Month-end billing: {month}" in page.text
    api = env.client.get(f"/api/v1/billing/{month}", headers=env.headers(env.a, "biller")).json()
    rows = list(csv.DictReader(io.StringIO(client.get(f"/billing/{month}.csv").text)))
    billable = sorted((r["patient_id"], r["code"], int(r["units"])) for r in rows
                      if r["kind"] == "billable")
    assert billable == sorted((p["patient_id"], c["code"], c["units"]) for p in api
                              for c in p["codes"])
    not_billable = sorted((r["patient_id"], r["code"], r["reason"]) for r in rows
                          if r["kind"] == "not_billable")
    assert not_billable == sorted((p["patient_id"], c["code"], c["reason"]) for p in api
                                  for c in p["not_billable"])
    assert {r["patient_id"] for r in rows} <= {env.a.patient}  # never another practice's
    summary = env.client.get(f"/api/v1/billing/{month}/summary",
                             headers=env.headers(env.a, "biller")).json()
    assert summary["patients"] == [{"patient_id": p["patient_id"],
                                    "codes": {c["code"]: c["units"] for c in p["codes"]}}
                                   for p in api]
    totals: dict[str, int] = {}
    for p in api:
        for c in p["codes"]:
            totals[c["code"]] = totals.get(c["code"], 0) + c["units"]
    assert summary["totals"] == totals
    for code, units in totals.items():
        assert f"<li>{code}: {units} unit" in page.text
    billing = sum(1 for p in api if p["codes"])
    assert f"{billing} of {len(api)} enrolled patients bill at least one code" in page.text
    one = env.client.get(f"/api/v1/billing/{month}", params={"patient_id": env.a.patient},
                         headers=env.headers(env.a, "biller")).json()
    assert one == [p for p in api if p["patient_id"] == env.a.patient]


def test_billing_page_is_for_billers_and_admins(env: Env) -> None:
    client = web_login(env, "coordinator")
    assert client.get("/billing").status_code == 403
    assert client.get(f"/billing/{T0:%Y-%m}.csv").status_code == 403


def test_timer_form_logs_minutes_and_warns_on_double_count(env: Env) -> None:
    client = web_login(env, "coordinator")
    page = client.get(f"/patients/{env.a.patient}/call-prep")
    assert page.status_code == 200 and "data-timer" in page.text
    csrf = page_csrf(page.text)
    start = (T0 - timedelta(hours=1)).isoformat()
    first = client.post(f"/patients/{env.a.patient}/time", data={
        "csrf": csrf, "program": "RPM", "minutes": "12", "started_at": start,
        "interactive": "1", "activity": "call"}, follow_redirects=True)
    assert first.status_code == 200 and "Logged 12 min of RPM." in first.text
    second = client.post(f"/patients/{env.a.patient}/time", data={
        "csrf": csrf, "program": "CCM", "minutes": "10", "started_at": start},
        follow_redirects=True)
    assert "Warning" in second.text and "must not count twice" in second.text
    entries = env.client.get(f"/api/v1/patients/{env.a.patient}/time-entries", params={
        "start": (T0 - timedelta(days=1)).isoformat(), "end": (T0 + timedelta(days=1)).isoformat()},
        headers=env.headers(env.a, "coordinator")).json()
    assert sorted((e["program"], e["minutes"], e["interactive"]) for e in entries) == [
        ("CCM", 10, False), ("RPM", 12, True)]
    bad = client.post(f"/patients/{env.a.patient}/time", data={
        "csrf": "forged", "program": "RPM", "minutes": "5"})
    assert bad.status_code == 403


def test_billing_page_pages_through_the_practice(env: Env, monkeypatch: Any) -> None:
    import api.web_billing as web_billing
    from gateway.model import Enrollment, Patient, Program

    for k in range(2):
        pid = f"pat-extra-{k}"
        env.store.upsert_patient(Patient(pid, env.a.practice, f"MRN-x{k}", "Bo", f"Extra{k}",
                                         None, "America/New_York"))
        env.store.upsert_enrollment(Enrollment(pid, env.a.practice, frozenset({Program.RPM}),
                                               frozenset(), None))
    monkeypatch.setattr(web_billing, "PAGE_SIZE", 1)
    client = web_login(env, "biller")
    month = f"{T0:%Y-%m}"
    first = client.get(f"/billing?month={month}")
    assert "Page 1 of 3" in first.text and "1 of 3 enrolled patients bill" in first.text
    seen = []
    for page in (1, 2, 3):
        text = client.get(f"/billing?month={month}&page={page}").text
        seen.append([name for name in ("Extra0", "Extra1", "Leea") if name in text])
    assert all(len(names) == 1 for names in seen)  # one patient a page, each once
    assert sorted(name for names in seen for name in names) == ["Extra0", "Extra1", "Leea"]


def test_call_prep_medication_forms(env: Env) -> None:
    client = web_login(env, "coordinator")
    page = client.get(f"/patients/{env.a.patient}/call-prep")
    assert "Lisinopril 10 mg, once daily" in page.text and "Record medication" in page.text
    csrf = page_csrf(page.text)
    added = client.post(f"/patients/{env.a.patient}/medications", data={
        "csrf": csrf, "name": "Spironolactone", "dose": "25 mg", "frequency": "daily"},
        follow_redirects=True)
    assert added.status_code == 200 and "Medication recorded." in added.text
    assert "Spironolactone 25 mg, daily" in added.text
    [lisinopril] = [m for m in env.store.list_medications(env.a.patient, env.a.practice)
                    if m.name == "Lisinopril"]
    stopped = client.post(f"/patients/{env.a.patient}/medications/{lisinopril.id}/stop",
                          data={"csrf": csrf, "reason": "cough"}, follow_redirects=True)
    assert "Medication marked stopped." in stopped.text
    assert "Lisinopril 10 mg, once daily stopped" in stopped.text and "cough" in stopped.text
    forged = client.post(f"/patients/{env.a.patient}/medications",
                         data={"csrf": "forged", "name": "X"})
    assert forged.status_code == 403
    other = client.post(f"/patients/{env.b.patient}/medications",
                        data={"csrf": csrf, "name": "X"})
    assert other.status_code == 404
    assert web_login(env, "biller").post(f"/patients/{env.a.patient}/medications", data={
        "csrf": csrf, "name": "X"}).status_code == 403
