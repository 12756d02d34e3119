"""GET /api/v1/patients/{id}/fhir: valid FHIR bundles, tenant-scoped, audited."""

from __future__ import annotations

from fhir.resources.R4B.bundle import Bundle

from tests.api.conftest import Env


def test_fhir_endpoint_returns_valid_bundles(env: Env) -> None:
    resp = env.client.get(f"/api/v1/patients/{env.a.patient}/fhir",
                          headers=env.headers(env.a, "physician"))
    assert resp.status_code == 200
    bundle = resp.json()
    Bundle.model_validate(bundle)
    assert any(e["resource"]["resourceType"] == "Observation" for e in bundle["entry"])
    escs = env.client.get(f"/api/v1/patients/{env.a.patient}/fhir?what=escalations",
                          headers=env.headers(env.a, "coordinator")).json()
    Bundle.model_validate(escs)
    assert {e["resource"]["resourceType"] for e in escs["entry"]} == {"Flag", "Task"}
    other = env.client.get(f"/api/v1/patients/{env.b.patient}/fhir",
                           headers=env.headers(env.a, "physician"))
    assert other.status_code == 404
    audit = env.client.get("/api/v1/audit?resource_type=fhir",
                           headers=env.headers(env.a, "admin")).json()
    assert audit and audit[0]["patient_id"] == env.a.patient
