"""Tenant isolation and role checks for every endpoint (endpoints x roles x practices).

For each endpoint of :data:`ENDPOINTS` and each role:

* a role not allowed gets 403, for its own practice's ids and the other's;
* an allowed role gets the endpoint's success status on its own practice;
* an allowed role naming another practice's resource gets 404 -- the same
  answer as for an id that does not exist -- and nothing changes there;
* lists and creates never show the other practice's ids;
* without a token the answer is 401; the ``hub`` role is always 403.

The same table runs on PostgreSQL (``-k postgres``), skipped when the server
is unreachable unless ``VITALGATE_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import pytest

from tests.api.conftest import ROLES, Env
from tests.api.endpoints import ENDPOINTS, FAMILIES, Endpoint

B_MARKERS = ("pat-b", "SCALE-b", "hub-b", "prac-b", "user-b-", "@b.example.org", "MRN-b")


def call(env: Env, ep: Endpoint, caller_tenant: str, target_tenant: str, role: str):
    caller = env.a if caller_tenant == "a" else env.b
    target = env.a if target_tenant == "a" else env.b
    path, body = ep.fill(target, caller)
    return env.client.request(ep.method, path, json=body, headers=env.headers(caller, role))


def check(env: Env, ep: Endpoint, role: str, scope: str) -> None:
    if scope == "other" and not ep.scoped:
        resp = call(env, ep, "a", "a", role)
    else:
        resp = call(env, ep, "a", "a" if scope == "own" else "b", role)
    if role not in ep.roles:
        assert resp.status_code == 403, (ep.id, role, scope, resp.status_code, resp.text)
        return
    if scope == "own":
        assert resp.status_code == ep.ok, (ep.id, role, resp.status_code, resp.text)
        return
    if ep.scoped:
        assert resp.status_code == 404, (ep.id, role, resp.status_code, resp.text)
    else:
        assert resp.status_code == ep.ok, (ep.id, role, resp.status_code, resp.text)
        leaked = [m for m in B_MARKERS if m in resp.text]
        assert not leaked, (ep.id, role, leaked)


def _cases() -> list[object]:
    return [pytest.param(ep, role, scope, id=f"{ep.family}:{ep.id}:{role}:{scope}")
            for ep in ENDPOINTS for role in ROLES for scope in ("own", "other")]


@pytest.mark.parametrize(("ep", "role", "scope"), _cases())
def test_endpoint_role_and_tenant(env: Env, ep: Endpoint, role: str, scope: str) -> None:
    check(env, ep, role, scope)


@pytest.mark.parametrize("ep", ENDPOINTS, ids=lambda e: e.id)
def test_unauthenticated_is_401(env: Env, ep: Endpoint) -> None:
    path, body = ep.fill(env.a)
    resp = env.client.request(ep.method, path, json=body)
    assert resp.status_code == 401
    assert resp.headers["www-authenticate"] == "Bearer"


def test_every_family_is_covered() -> None:
    assert set(FAMILIES) >= {"practices", "users", "patients", "enrolments", "assignments",
                             "readings", "care_plans", "medications", "devices", "hubs",
                             "quarantine", "escalations", "audit"}


def test_every_api_route_is_in_the_table(env: Env) -> None:
    table = {(e.method, e.path.split("?")[0]) for e in ENDPOINTS}
    names = {"practice_id": "{practice}", "patient_id": "{patient}", "serial": "{device}",
             "hub_id": "{hub}", "item_id": "{quarantine}", "escalation_id": "{escalation}",
             "override_id": "{override}", "medication_id": "{medication}", "user_id": "{user}",
             "month": "2026-02"}
    missing = []
    for route in env.app.routes:
        path = getattr(route, "path", "")
        if not path.startswith("/api/v1/") or path == "/api/v1/auth/token":
            continue
        for key, value in names.items():
            path = path.replace("{" + key + "}", value)
        missing.extend((m, path) for m in route.methods if (m, path) not in table)
    assert not missing


def test_other_practice_unchanged_after_attempts(env: Env) -> None:
    """Writes aimed at practice B by A's users change nothing in B."""
    before = (env.store.get_patient(env.b.patient), env.store.get_escalation(env.b.escalation),
              env.store.get_quarantine(env.b.quarantine), env.store.get_device(env.b.device))
    for ep in ENDPOINTS:
        if ep.method != "GET" and ep.scoped:
            for role in ep.roles:
                call(env, ep, "a", "b", role)
    after = (env.store.get_patient(env.b.patient), env.store.get_escalation(env.b.escalation),
             env.store.get_quarantine(env.b.quarantine), env.store.get_device(env.b.device))
    assert before == after


@pytest.mark.services
@pytest.mark.parametrize("family", FAMILIES)
def test_tenant_isolation_postgres(pg_env: Env, family: str) -> None:
    """The isolation half of the table on PostgreSQL, one family per test."""
    for ep in ENDPOINTS:
        if ep.family != family:
            continue
        for role in sorted(ep.roles):
            check(pg_env, ep, role, "other")
        check(pg_env, ep, "hub", "own")
