"""Audit log, readings pagination, hub provisioning, escalation actions, probes."""

from __future__ import annotations

import logging

import pytest

from api.security import verify_password
from gateway.store.api_store import ApiStoreMixin
from tests.api.conftest import Env

P = "/api/v1"


def test_reads_of_patient_data_are_audited(env: Env) -> None:
    headers = env.headers(env.a, "biller")
    env.client.get(f"{P}/patients/{env.a.patient}", headers=headers)
    env.client.get(f"{P}/patients/{env.a.patient}/readings", headers=headers)
    rows = env.store.list_audit(env.a.practice, user_id=env.a.users["biller"])
    actions = {(r.action, r.resource_type, r.patient_id) for r in rows}
    assert ("read", "patient", env.a.patient) in actions
    assert ("list", "reading", env.a.patient) in actions
    assert all(r.client_ip == "testclient" and r.at == env.clock() for r in rows)


def test_changes_are_audited_with_who_and_what(env: Env) -> None:
    headers = env.headers(env.a, "coordinator")
    resp = env.client.post(f"{P}/escalations/{env.a.escalation}/acknowledge", headers=headers)
    assert resp.status_code == 200
    rows = env.store.list_audit(env.a.practice, resource_type="escalation")
    assert rows[0].action == "acknowledged"
    assert rows[0].user_id == env.a.users["coordinator"]
    assert rows[0].resource_id == env.a.escalation
    assert rows[0].patient_id == env.a.patient


def test_denied_and_cross_tenant_reads_leave_no_data_trail(env: Env) -> None:
    env.client.get(f"{P}/patients/{env.b.patient}", headers=env.headers(env.a, "admin"))
    assert env.store.list_audit(env.b.practice) == []


def test_admin_reads_audit_of_own_practice_only(env: Env) -> None:
    env.client.get(f"{P}/patients/{env.a.patient}", headers=env.headers(env.a, "physician"))
    env.client.get(f"{P}/patients/{env.b.patient}", headers=env.headers(env.b, "physician"))
    resp = env.client.get(f"{P}/audit", headers=env.headers(env.a, "admin"))
    assert resp.status_code == 200
    body = resp.json()
    assert body and all(row["user_id"].startswith("user-a-") for row in body)
    filtered = env.client.get(f"{P}/audit", params={"patient_id": env.a.patient},
                              headers=env.headers(env.a, "admin")).json()
    assert all(row["patient_id"] == env.a.patient for row in filtered)


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_audit_log_cannot_be_changed_over_http(env: Env, method: str) -> None:
    resp = env.client.request(method, f"{P}/audit", headers=env.headers(env.a, "admin"))
    assert resp.status_code == 405


def test_audit_store_is_append_only() -> None:
    names = [n for n in dir(ApiStoreMixin) if "audit" in n]
    assert sorted(names) == ["append_audit", "list_audit"]


def test_no_phi_logged_at_info(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    headers = env.headers(env.a, "admin")
    env.client.get(f"{P}/patients/{env.a.patient}", headers=headers)
    env.client.post(f"{P}/patients", json={"mrn": "PHI-MRN-77", "given_name": "Zelda",
                                           "family_name": "Quixote",
                                           "timezone": "America/Chicago"}, headers=headers)
    text = " ".join(r.getMessage() for r in caplog.records if r.levelno >= logging.INFO)
    for phi in ("Zelda", "Quixote", "PHI-MRN-77", "Leea", "MRN-a1", "1950-01-02"):
        assert phi not in text


def test_readings_paginate_with_cursor(env: Env) -> None:
    headers = env.headers(env.a, "coordinator")
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, object] = {"limit": 3, "metric": "weight"}
        if cursor:
            params["cursor"] = cursor
        body = env.client.get(f"{P}/patients/{env.a.patient}/readings", params=params,
                              headers=headers).json()
        seen += [r["id"] for r in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert pages == 4
    assert seen == [f"r-a-{i}" for i in range(10)]
    item = env.client.get(f"{P}/patients/{env.a.patient}/readings", params={"limit": 1},
                          headers=headers).json()["items"][0]
    assert item["units"]["weight"] == "kg" and item["values"]["weight"] == 80.0


def test_readings_time_range_and_bad_cursor(env: Env) -> None:
    headers = env.headers(env.a, "coordinator")
    body = env.client.get(f"{P}/patients/{env.a.patient}/readings",
                          params={"start": "2026-02-26T00:00:00Z",
                                  "end": "2026-03-01T00:00:00Z"}, headers=headers).json()
    assert [r["id"] for r in body["items"]] == ["r-a-7", "r-a-8", "r-a-9"]  # Feb 26-28
    bad = env.client.get(f"{P}/patients/{env.a.patient}/readings",
                         params={"cursor": "!!!"}, headers=headers)
    assert bad.status_code == 422
    naive = env.client.get(f"{P}/patients/{env.a.patient}/readings",
                           params={"start": "2026-02-26T00:00:00"}, headers=headers)
    assert naive.status_code == 422


def test_hub_provisioning_returns_password_once_and_stores_hash(env: Env) -> None:
    headers = env.headers(env.a, "admin")
    resp = env.client.post(f"{P}/hubs", json={"id": "hub-a2", "patient_id": env.a.patient},
                           headers=headers)
    assert resp.status_code == 201
    body = resp.json()
    password = body["mqtt_password"]
    assert body["mqtt_username"] == "hub-hub-a2" and len(password) >= 24
    creds = env.store.get_hub_credentials("hub-hub-a2")
    assert creds.password_hash != password and verify_password(creds.password_hash, password)
    again = env.client.get(f"{P}/hubs/hub-a2", headers=headers)
    assert "mqtt_password" not in again.json()
    rotated = env.client.post(f"{P}/hubs/hub-a2/credentials", headers=headers).json()
    assert rotated["mqtt_password"] != password
    assert not verify_password(env.store.get_hub_credentials("hub-hub-a2").password_hash,
                               password)
    assert env.client.post(f"{P}/hubs", json={"id": "hub-b"}, headers=headers).status_code == 409


def test_escalation_lifecycle_over_the_api(env: Env) -> None:
    headers = env.headers(env.a, "coordinator")
    url = f"{P}/escalations/{env.a.escalation}"
    queue = env.client.get(f"{P}/escalations", params={"condition": "CHF"},
                           headers=headers).json()
    assert [e["id"] for e in queue] == [env.a.escalation]
    assert queue[0]["rule_title"] == "Weight up 2 lb or more in a day"
    assert env.client.get(f"{P}/escalations", params={"condition": "COPD"},
                          headers=headers).json() == []
    detail = env.client.get(url, headers=headers).json()
    assert detail["reading_ids"] == ["r-a-8", "r-a-9"]
    assert detail["evidence"].startswith("Weight up 2.4 lb")
    past = env.client.post(url + "/snooze", json={"until": "2026-03-01T11:00:00Z"},
                           headers=headers)
    assert past.status_code == 409
    naive = env.client.post(url + "/snooze", json={"until": "2026-03-02T11:00:00"},
                            headers=headers)
    assert naive.status_code == 422
    assert env.client.post(url + "/acknowledge", headers=headers).json()["status"] == \
        "acknowledged"
    assert env.client.post(url + "/acknowledge", headers=headers).status_code == 409
    bad = env.client.post(url + "/resolve", json={"disposition": "vibes"}, headers=headers)
    assert bad.status_code == 422
    assign_other = env.client.post(url + "/assign", json={"assignee": env.b.users["physician"]},
                                   headers=headers)
    assert assign_other.status_code == 404
    done = env.client.post(url + "/resolve", json={"disposition": "medication_adjusted",
                                                   "comment": "furosemide increased"},
                           headers=headers).json()
    assert done["status"] == "resolved" and done["disposition"] == "medication_adjusted"
    assert [e["action"] for e in done["events"]] == ["opened", "acknowledged", "resolved"]
    assert env.client.get(f"{P}/escalations", headers=headers).json() == []


def test_care_plan_override_records_ordering_physician(env: Env) -> None:
    headers = env.headers(env.a, "physician")
    resp = env.client.post(f"{P}/patients/{env.a.patient}/care-plan",
                           json={"rule_id": "copd.spo2_drop", "enabled": True,
                                 "params": {"drop_points": 4}}, headers=headers)
    assert resp.status_code == 201
    body = resp.json()
    assert body["ordered_by"] == env.a.users["physician"] and body["in_force"]
    off = env.client.post(f"{P}/patients/{env.a.patient}/care-plan",
                          json={"rule_id": "bp.low", "enabled": False,
                                "expires_at": "2026-02-01T00:00:00Z"}, headers=headers)
    assert off.status_code == 422  # expiry in the past
    revoked = env.client.post(f"{P}/patients/{env.a.patient}/care-plan/{body['id']}/revoke",
                              headers=headers).json()
    assert not revoked["in_force"] and revoked["revoked_by"] == env.a.users["physician"]


def test_enrolment_checks_supervising_physician(env: Env) -> None:
    headers = env.headers(env.a, "admin")
    url = f"{P}/patients/{env.a.patient}/enrollment"
    ok = env.client.put(url, json={"programs": ["RPM"], "conditions": ["COPD"],
                                   "supervising_physician_id": env.a.users["physician"]},
                        headers=headers)
    assert ok.status_code == 200 and ok.json()["conditions"] == ["COPD"]
    not_doc = env.client.put(url, json={"programs": ["RPM"],
                                        "supervising_physician_id": env.a.users["biller"]},
                             headers=headers)
    assert not_doc.status_code == 422
    other = env.client.put(url, json={"programs": ["RPM"],
                                      "supervising_physician_id": env.b.users["physician"]},
                           headers=headers)
    assert other.status_code == 404
    bad_zone = env.client.put(url, json={"programs": ["RPM"], "timezone": "Mars/Base"},
                              headers=headers)
    assert bad_zone.status_code == 422


def test_quarantine_release_then_second_action_is_404(env: Env) -> None:
    headers = env.headers(env.a, "coordinator")
    url = f"{P}/quarantine/{env.a.quarantine}"
    assert env.client.post(url + "/release", headers=headers).json()["status"] == "released"
    assert env.client.post(url + "/discard", headers=headers).status_code == 404


def test_devices_show_health(env: Env) -> None:
    body = env.client.get(f"{P}/devices/{env.a.device}",
                          headers=env.headers(env.a, "admin")).json()
    assert body["patient_id"] == env.a.patient and body["battery"] == 60.0
    assert body["last_reading_at"].startswith("2026-02-28")


def test_probes_and_metrics(env: Env) -> None:
    assert env.client.get("/healthz").text == "ok"
    assert env.client.get("/readyz").status_code == 200
    metrics = env.client.get("/metrics")
    assert metrics.status_code == 200 and "text/plain" in metrics.headers["content-type"]
    assert env.client.get("/docs").status_code == 200
    schema = env.client.get("/openapi.json").json()
    assert "/api/v1/escalations/{escalation_id}/snooze" in schema["paths"]


def test_metrics_render_is_injectable(tmp_path) -> None:
    from tests.api.conftest import build_env

    gen = build_env(f"sqlite:///{tmp_path / 'm.db'}",
                    metrics_render=lambda: "vitalgate_up 1\n")
    env = next(gen)
    try:
        env.client.get(f"{P}/patients/{env.a.patient}", headers=env.headers(env.a, "admin"))
        text = env.client.get("/metrics").text
        assert text.startswith("vitalgate_up 1\n")
        assert ('vitalgate_http_requests_total{method="GET",route="/api/v1/patients/{patient_id}"'
                ',status="200"} 1.0') in text
        assert env.a.patient not in text
    finally:
        gen.close()


def test_readyz_reports_store_failure(env: Env) -> None:
    env.store.close()
    assert env.client.get("/readyz").status_code == 503


def test_time_entries_and_month_billing(env: Env) -> None:
    url = f"{P}/patients/{env.a.patient}/time-entries"
    body = {"program": "RPM", "activity": "review readings", "minutes": 15,
            "started_at": "2026-03-01T10:00:00Z", "interactive": False}
    first = env.client.post(url, json=body, headers=env.headers(env.a, "physician")).json()
    assert first["performed_by"] == "physician" and first["warnings"] == []
    coord = env.headers(env.a, "coordinator")
    mine = env.client.post(url, json=body, headers=coord).json()
    assert mine["performed_by"] == "clinical_staff"
    overlap = env.client.post(url, json={**body, "started_at": "2026-03-01T10:05:00Z"},
                              headers=coord).json()
    assert overlap["warnings"] and "count twice" in overlap["warnings"][0]
    future = env.client.post(url, json={**body, "started_at": "2026-03-02T10:00:00Z"},
                             headers=coord)
    assert future.status_code == 422
    listed = env.client.get(url, params={"start": "2026-03-01T00:00:00Z",
                                         "end": "2026-03-02T00:00:00Z"},
                            headers=env.headers(env.a, "biller")).json()
    assert [t["minutes"] for t in listed] == [15, 15, 15]
    reports = env.client.get(f"{P}/billing/2026-02", headers=env.headers(env.a, "biller"))
    assert reports.status_code == 200
    assert [r["patient_id"] for r in reports.json()] == [env.a.patient]
    assert env.client.get(f"{P}/billing/2026-13",
                          headers=env.headers(env.a, "biller")).status_code == 422


def test_release_refused_or_unwired(env: Env) -> None:
    from datetime import UTC, datetime

    from api.app import create_app
    from gateway.store import NewQuarantine

    bad = env.store.add_quarantine(NewQuarantine(
        topic="vitalgate/v1/hubs/hub-a/readings", reason_code="unfixable", reason="x",
        payload="{}", payload_size=2, received_at=datetime(2026, 3, 1, tzinfo=UTC),
        hub_id="hub-a", practice_id=env.a.practice))
    headers = env.headers(env.a, "coordinator")
    resp = env.client.post(f"{P}/quarantine/{bad}/release", headers=headers)
    assert resp.status_code == 409 and "still refused" in resp.text
    assert env.store.get_quarantine(bad).status == "pending"
    from fastapi.testclient import TestClient

    unwired = TestClient(create_app(env.app.state.ctx.settings, env.store, clock=env.clock))
    resp = unwired.post(f"{P}/quarantine/{bad}/release", headers=headers)
    assert resp.status_code == 501
    assert env.store.get_quarantine(bad).status == "pending"


def test_medications_recorded_stopped_audited_and_in_call_prep(env: Env) -> None:
    from tests.api.test_web import web_login

    url = f"{P}/patients/{env.a.patient}/medications"
    coord = env.headers(env.a, "coordinator")
    made = env.client.post(url, json={"name": "Furosemide", "dose": "40 mg",
                                      "frequency": "once daily", "started_on": "2026-02-27"},
                           headers=coord)
    assert made.status_code == 201
    med = made.json()
    assert med["active"] and med["recorded_by"] == env.a.users["coordinator"]
    assert env.client.post(url, json={"name": ""}, headers=coord).status_code == 422
    prep = env.client.get(f"{P}/patients/{env.a.patient}/call-prep", headers=coord).json()
    assert "Furosemide 40 mg, once daily (since 2026-02-27)" in prep["medications"]
    assert any("Furosemide 40 mg, once daily recorded" in c for c in prep["medication_changes"])
    page = web_login(env, "coordinator").get(f"/patients/{env.a.patient}/call-prep")
    assert "Furosemide 40 mg, once daily (since 2026-02-27)" in page.text
    stop = env.client.post(f"{url}/{med['id']}/stop", json={"reason": "dizziness"},
                           headers=env.headers(env.a, "physician"))
    assert stop.status_code == 200 and not stop.json()["active"]
    assert stop.json()["stop_reason"] == "dizziness"
    again = env.client.post(f"{url}/{med['id']}/stop", json={}, headers=coord)
    assert again.status_code == 404
    listed = env.client.get(url, headers=env.headers(env.a, "admin")).json()
    assert [(m["name"], m["active"]) for m in listed] == [("Lisinopril", True),
                                                          ("Furosemide", False)]
    assert env.client.get(url, headers=env.headers(env.a, "biller")).status_code == 403
    actions = [(a.action, a.resource_id) for a in env.store.list_audit(
        env.a.practice, resource_type="medication")]
    assert ("create", str(med["id"])) in actions and ("update", str(med["id"])) in actions
    assert ("list", None) in actions


@pytest.mark.parametrize("query", [
    "/audit?since=0001-01-01T00:00:00%2B14:00", "/audit?until=9999-12-31T23:59:59-14:00",
    "/audit?since=1850-01-01T00:00:00Z",
    "/patients/{patient}/readings?start=0001-01-01T00:00:00%2B05:00",
    "/patients/{patient}/time-entries?start=0001-01-01T00:00:00%2B01:00"
    "&end=2026-03-01T00:00:00Z",
    "/patients/{patient}/fhir?since=9999-12-31T23:59:59-01:00",
])
def test_instants_out_of_range_are_422_not_500(env: Env, query: str) -> None:
    """Found by the fuzz suite: year 1 at +14:00 overflowed on conversion to UTC."""
    resp = env.client.get(P + query.format(patient=env.a.patient),
                          headers=env.headers(env.a, "admin"))
    assert resp.status_code == 422, resp.text
    assert "between 1900 and 2200" in resp.text


def test_nul_in_query_text_is_refused(env: Env) -> None:
    """PostgreSQL refuses NUL in text (a 500 there): such parameters never reach it."""
    for query in ("/audit?user_id=a%00b", "/audit?resource_type=%00",
                  "/audit?resource_type=escalation%00"):
        resp = env.client.get(P + query, headers=env.headers(env.a, "admin"))
        assert resp.status_code == 422, (query, resp.text)
    assert env.client.get(P + "/audit?resource_type=escalation",
                          headers=env.headers(env.a, "admin")).status_code == 200


def test_complex_ccm_months_recorded_by_physicians(env: Env) -> None:
    url = f"{P}/patients/{env.a.patient}/ccm-complex-months"
    doc = env.headers(env.a, "physician")
    assert env.client.get(url, headers=env.headers(env.a, "biller")).json() == ["2026-02"]
    assert env.client.put(f"{url}/2026-03", headers=doc).json() == ["2026-02", "2026-03"]
    assert env.client.put(f"{url}/2026-03", headers=doc).json() == ["2026-02", "2026-03"]
    assert env.client.put(f"{url}/2026-13", headers=doc).status_code == 422
    assert env.client.put(f"{url}/2026-04", headers=env.headers(env.a, "coordinator")
                          ).status_code == 403
    assert env.client.delete(f"{url}/2026-02", headers=doc).json() == ["2026-03"]
    assert env.client.delete(f"{url}/2026-02", headers=doc).status_code == 404
    actions = [(a.action, a.resource_id) for a in env.store.list_audit(
        env.a.practice, resource_type="care_plan") if a.resource_id
        and a.resource_id.startswith("ccm-complex")]
    assert ("update", "ccm-complex:2026-03") in actions
    assert ("delete", "ccm-complex:2026-02") in actions


@pytest.mark.parametrize("path", ["/billing/0001-01", "/billing/0001-01/summary",
                                  "/billing/2200-01/summary"])
def test_billing_months_out_of_range_are_422_not_500(env: Env, path: str) -> None:
    """Found by the fuzz suite: year 1 minus the 400-day history underflowed."""
    resp = env.client.get(P + path, headers=env.headers(env.a, "biller"))
    assert resp.status_code == 422, resp.text
    assert "between 1900 and 2200" in resp.text
