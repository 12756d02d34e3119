"""Fixtures for the API tests: two seeded practices, users of every role, a fake clock."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.security import hash_password
from gateway.escalations import Severity, Trigger
from gateway.model import (
    Condition,
    Device,
    DeviceAssignment,
    DeviceKind,
    Enrollment,
    Hub,
    Measurement,
    Patient,
    Practice,
    Program,
    Reading,
)
from gateway.settings import Settings
from gateway.store import NewQuarantine, open_store
from gateway.store.api_store import CarePlanOverride, Medication, User
from gateway.units import Metric
from tests.support.services import temporary_database

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PASSWORD = "correct horse battery staple"
ROLES = ("admin", "physician", "coordinator", "biller", "hub")
TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


@dataclass
class Tenant:
    """Ids of one seeded practice."""

    practice: str
    patient: str
    device: str
    hub: str
    quarantine: int
    escalation: str
    override: int
    medication: int = 0
    users: dict[str, str] = field(default_factory=dict)  # role -> user id
    emails: dict[str, str] = field(default_factory=dict)


_HASH: dict[str, str] = {}


def password_hash() -> str:
    """One argon2 hash shared by all seeded users (hashing is slow on purpose)."""
    if "h" not in _HASH:
        _HASH["h"] = hash_password(PASSWORD)
    return _HASH["h"]


def seed_tenant(store: Any, key: str) -> Tenant:
    """A practice with a patient, devices, hub, readings, quarantine, escalation, users."""
    pid = f"prac-{key}"
    store.upsert_practice(Practice(pid, f"Practice {key}", "America/New_York"))
    patient = f"pat-{key}"
    store.upsert_patient(Patient(patient, pid, f"MRN-{key}1", "Ann", f"Lee{key}",
                                 date(1950, 1, 2), "America/New_York"))
    t = Tenant(practice=pid, patient=patient, device=f"SCALE-{key}", hub=f"hub-{key}",
               quarantine=0, escalation="", override=0)
    for role in ROLES:
        uid = f"user-{key}-{role}"
        email = f"{role}@{key}.example.org"
        store.create_user(User(uid, pid, email, role, full_name=f"{role} {key}",
                               password_hash=password_hash(), created_at=T0))
        t.users[role], t.emails[role] = uid, email
    store.upsert_enrollment(Enrollment(patient, pid, frozenset({Program.RPM}),
                                       frozenset({Condition.CHF}), date(2026, 1, 1),
                                       supervising_physician_id=t.users["physician"]))
    store.upsert_device(Device(t.device, pid, DeviceKind.SCALE, "S1", "Acme"))
    store.upsert_hub(Hub(t.hub, pid, patient))
    store.assign_device(DeviceAssignment(t.device, patient, t.hub, pid, T0 - timedelta(days=60)))
    readings = [
        Reading(id=f"r-{key}-{i}", practice_id=pid, patient_id=patient, device_serial=t.device,
                hub_id=t.hub, kind=DeviceKind.SCALE, measured_at=T0 - timedelta(days=10 - i),
                received_at=T0 - timedelta(days=10 - i),
                measurements=(Measurement(Metric.WEIGHT, 80.0 + i * 0.2),
                              Measurement(Metric.BATTERY, 60.0)))
        for i in range(10)
    ]
    store.add_readings(readings, T0)
    t.quarantine = store.add_quarantine(NewQuarantine(
        topic=f"vitalgate/v1/hubs/{t.hub}/readings", reason_code="implausible",
        reason="weight out of range", payload="{}", payload_size=2, received_at=T0,
        hub_id=t.hub, practice_id=pid))
    esc, _ = store.record_trigger(Trigger(
        practice_id=pid, patient_id=patient, rule_id="chf.weight_gain_24h", rule_version=1,
        severity=Severity.URGENT, trigger_at=T0 - timedelta(hours=1),
        summary="Weight up 2.4 lb since yesterday's first weight",
        thresholds={"metric": "weight", "days_back": 1, "ge": 2.0, "unit": "lb"},
        evidence={"rule_version": 1, "readings": [
            {"id": f"r-{key}-8", "metric": "weight", "value": 81.6,
             "measured_at": (T0 - timedelta(days=2)).isoformat(), "display": "179.9 lb"},
            {"id": f"r-{key}-9", "metric": "weight", "value": 81.8,
             "measured_at": (T0 - timedelta(days=1)).isoformat(), "display": "180.3 lb"}]}),
        T0 - timedelta(hours=1))
    t.escalation = esc.id
    t.override = store.add_care_plan_override(CarePlanOverride(
        practice_id=pid, patient_id=patient, rule_id="chf.weight_gain_24h",
        ordered_by=t.users["physician"], ordered_at=T0 - timedelta(days=1),
        params={"gain_lb": 3.0}, expires_at=T0 + timedelta(days=30)))
    store.set_complex_ccm_month(pid, patient, date(2026, 2, 1), t.users["physician"],
                                T0 - timedelta(days=25))
    t.medication = store.add_medication(Medication(
        practice_id=pid, patient_id=patient, name="Lisinopril", dose="10 mg",
        frequency="once daily", recorded_by=t.users["coordinator"],
        recorded_at=T0 - timedelta(days=20)))
    return t


@dataclass(frozen=True)
class FakeRelease:
    """What ingest's release returns, for the API's purposes."""

    released: bool
    stored: int = 0
    duplicates: int = 0
    still_refused: Any = None


def fake_release(store: Any) -> Any:
    """A release that stores nothing and marks the item released (ingest owns the real one)."""

    def release(item_id: int, by: str, now: datetime) -> FakeRelease:
        item = store.get_quarantine(item_id)
        if item.reason_code == "unfixable":
            return FakeRelease(False, still_refused="payload still invalid")
        store.resolve_quarantine(item_id, "released", by, now)
        return FakeRelease(True, stored=1)

    return release


@dataclass
class Env:
    """A seeded store, its app, a client and two tenants A and B."""

    store: Any
    app: Any
    client: TestClient
    clock: FakeClock
    a: Tenant
    b: Tenant

    def token(self, tenant: Tenant, role: str) -> str:
        user = self.store.get_user(tenant.users[role])
        return str(self.app.state.ctx.tokens.issue(user)[0])

    def headers(self, tenant: Tenant, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(tenant, role)}"}


def build_env(url: str, **app_kw: Any) -> Iterator[Env]:
    """Open, migrate and seed a store at ``url``; yield the env; close."""
    store = open_store(url)
    store.migrate()
    try:
        a, b = seed_tenant(store, "a"), seed_tenant(store, "b")
        clock = FakeClock()
        settings = Settings(secret_key=TEST_SECRET, _env_file=None)  # type: ignore[call-arg]
        app_kw.setdefault("quarantine_release", fake_release(store))
        app = create_app(settings, store, clock=clock, **app_kw)
        with TestClient(app, base_url="http://testserver") as client:
            yield Env(store, app, client, clock, a, b)
    finally:
        store.close()


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    """A seeded SQLite env."""
    yield from build_env(f"sqlite:///{tmp_path / 'api.db'}")


@pytest.fixture
def pg_env() -> Iterator[Env]:
    """A seeded env on a fresh PostgreSQL database (skipped, or failed, when unreachable)."""
    with temporary_database() as url:
        yield from build_env(url)
