"""The table of every JSON endpoint: path template, body, the roles allowed.

Paths use ``{practice}``, ``{patient}``, ``{device}``, ``{hub}``,
``{quarantine}``, ``{escalation}``, ``{override}``, ``{medication}``, ``{user}``
filled from a
:class:`~tests.api.conftest.Tenant`.  ``scoped`` endpoints name a resource in
the path: called with another practice's ids they must answer 404.  The
others (lists, creates) are checked for not showing the other practice's data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ALL = frozenset({"admin", "physician", "coordinator", "biller"})
READERS = ALL
ADMIN = frozenset({"admin"})
CLINICAL = frozenset({"admin", "physician", "coordinator"})
CARE = frozenset({"physician", "coordinator"})
PHYSICIAN = frozenset({"physician"})
QUARANTINE = frozenset({"admin", "coordinator"})
BILLING = frozenset({"admin", "biller"})

P = "/api/v1"
PAT = P + "/patients/{patient}"
ESC = P + "/escalations/{escalation}"


@dataclass(frozen=True)
class Endpoint:
    """One endpoint of the API and who may call it."""

    family: str
    method: str
    path: str
    roles: frozenset[str]
    body: Any = None
    scoped: bool = True
    ok: int = 200

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"

    def fill(self, tenant: Any, caller: Any | None = None) -> tuple[str, Any]:
        """Path and body for ``tenant``'s resources (body users from ``caller``)."""
        values = {"practice": tenant.practice, "patient": tenant.patient,
                  "device": tenant.device, "hub": tenant.hub,
                  "quarantine": tenant.quarantine, "escalation": tenant.escalation,
                  "override": tenant.override, "medication": tenant.medication,
                  "user": tenant.users["coordinator"]}
        path = self.path.format(**values)
        body = self.body
        if isinstance(body, dict):
            body = {k: (v.format(**values) if isinstance(v, str) else v)
                    for k, v in body.items()}
        return path, body


ENDPOINTS: list[Endpoint] = [
    Endpoint("practices", "GET", P + "/practices/{practice}", READERS),
    Endpoint("practices", "PATCH", P + "/practices/{practice}", ADMIN, {"name": "Renamed"}),
    Endpoint("users", "GET", P + "/users/me", ALL, scoped=False),
    Endpoint("users", "GET", P + "/users", ADMIN, scoped=False),
    Endpoint("users", "POST", P + "/users/me/password", ALL,
             {"current_password": "correct horse battery staple",
              "new_password": "another long password"}, scoped=False, ok=204),
    Endpoint("users", "POST", P + "/users", ADMIN,
             {"email": "new.person@example.org", "role": "coordinator",
              "password": "a long enough password"}, scoped=False, ok=201),
    Endpoint("users", "GET", P + "/users/{user}", ADMIN),
    Endpoint("users", "PATCH", P + "/users/{user}", ADMIN, {"full_name": "Renamed"}),
    Endpoint("patients", "GET", P + "/patients", READERS, scoped=False),
    Endpoint("patients", "POST", P + "/patients", ADMIN,
             {"mrn": "NEW-1", "given_name": "Bo", "family_name": "Ng",
              "timezone": "America/Chicago"}, scoped=False, ok=201),
    Endpoint("patients", "GET", PAT, READERS),
    Endpoint("patients", "PATCH", PAT, ADMIN, {"given_name": "Bea"}),
    Endpoint("enrolments", "GET", PAT + "/enrollment", READERS),
    Endpoint("enrolments", "PUT", PAT + "/enrollment", ADMIN,
             {"programs": ["RPM", "CCM"], "conditions": ["CHF", "HTN"],
              "consent_date": "2026-01-05", "timezone": "America/Denver"}),
    Endpoint("assignments", "GET", PAT + "/assignments", READERS),
    Endpoint("assignments", "POST", PAT + "/assignments", ADMIN,
             {"device_serial": "{device}", "hub_id": "{hub}"}, ok=201),
    Endpoint("assignments", "POST", PAT + "/assignments/{device}/end", ADMIN, {}, ok=204),
    Endpoint("readings", "GET", PAT + "/readings", READERS),
    Endpoint("readings", "GET", PAT + "/day-counts?start=2026-02-01&end=2026-03-01", READERS),
    Endpoint("care_plans", "GET", PAT + "/care-plan", CLINICAL),
    Endpoint("care_plans", "GET", PAT + "/ccm-complex-months", READERS),
    Endpoint("care_plans", "PUT", PAT + "/ccm-complex-months/2026-02", PHYSICIAN),
    Endpoint("care_plans", "DELETE", PAT + "/ccm-complex-months/2026-02", PHYSICIAN),
    Endpoint("medications", "GET", PAT + "/medications", CLINICAL),
    Endpoint("medications", "POST", PAT + "/medications", CARE,
             {"name": "Furosemide", "dose": "40 mg", "frequency": "once daily"}, ok=201),
    Endpoint("medications", "POST", PAT + "/medications/{medication}/stop", CARE,
             {"reason": "stopped by cardiology"}),
    Endpoint("care_plans", "POST", PAT + "/care-plan", PHYSICIAN,
             {"rule_id": "bp.severe", "params": {"systolic_above": 190},
              "expires_at": "2026-04-01T00:00:00Z"}, ok=201),
    Endpoint("care_plans", "POST", PAT + "/care-plan/{override}/revoke", PHYSICIAN),
    Endpoint("devices", "GET", P + "/devices", READERS, scoped=False),
    Endpoint("devices", "POST", P + "/devices", ADMIN, {"serial": "NEW-SCALE-1",
                                                        "kind": "scale"}, scoped=False, ok=201),
    Endpoint("devices", "GET", P + "/devices/{device}", READERS),
    Endpoint("devices", "PATCH", P + "/devices/{device}", ADMIN, {"model": "S2"}),
    Endpoint("hubs", "GET", P + "/hubs", ADMIN, scoped=False),
    Endpoint("hubs", "POST", P + "/hubs", ADMIN, {"id": "hub-new"}, scoped=False, ok=201),
    Endpoint("hubs", "GET", P + "/hubs/{hub}", ADMIN),
    Endpoint("hubs", "POST", P + "/hubs/{hub}/credentials", ADMIN),
    Endpoint("quarantine", "GET", P + "/quarantine", QUARANTINE, scoped=False),
    Endpoint("quarantine", "GET", P + "/quarantine/{quarantine}", QUARANTINE),
    Endpoint("quarantine", "POST", P + "/quarantine/{quarantine}/release", QUARANTINE),
    Endpoint("quarantine", "POST", P + "/quarantine/{quarantine}/discard", QUARANTINE),
    Endpoint("escalations", "GET", P + "/escalations", CLINICAL, scoped=False),
    Endpoint("escalations", "GET", ESC, CLINICAL),
    Endpoint("escalations", "POST", ESC + "/acknowledge", CARE),
    Endpoint("escalations", "POST", ESC + "/assign", CARE, {"assignee": "{user}"}),
    Endpoint("escalations", "POST", ESC + "/snooze", CARE, {"until": "2026-03-02T12:00:00Z"}),
    Endpoint("escalations", "POST", ESC + "/comment", CARE, {"text": "Called, no answer"}),
    Endpoint("escalations", "POST", ESC + "/resolve", CARE, {"disposition": "false_positive"}),
    Endpoint("time", "GET", PAT + "/time-entries?start=2026-02-01T00:00:00Z"
             "&end=2026-03-02T00:00:00Z", READERS),
    Endpoint("time", "POST", PAT + "/time-entries", CARE,
             {"program": "CCM", "activity": "call", "started_at": "2026-03-01T11:00:00Z",
              "minutes": 20, "interactive": True}, ok=201),
    Endpoint("call_prep", "GET", PAT + "/call-prep", CLINICAL),
    Endpoint("fhir", "GET", PAT + "/fhir", READERS),
    Endpoint("fhir", "GET", PAT + "/fhir?what=escalations", READERS),
    Endpoint("fhir", "GET", PAT + "/fhir?what=medications", CLINICAL),
    Endpoint("billing", "GET", P + "/billing/2026-02", BILLING, scoped=False),
    Endpoint("billing", "GET", P + "/billing/2026-02/summary", BILLING, scoped=False),
    Endpoint("billing", "GET", P + "/billing/2026-02?patient_id={patient}", BILLING),
    Endpoint("audit", "GET", P + "/audit", ADMIN, scoped=False),
]

FAMILIES = sorted({e.family for e in ENDPOINTS})
