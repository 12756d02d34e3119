"""Call prep for a patient with 90 days of data: server time per request (target < 200 ms).

One CHF+HTN+DM patient with a weight, two BP readings and three glucose
readings a day for 90 days (540 readings), 20 escalations and time entries,
in SQLite; signed in as a coordinator, times the call-prep page and its JSON.
Reuses the queue benchmark's server timer.  Prints a markdown section.
"""

from __future__ import annotations

import re
import statistics
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient

from api.app import create_app
from api.security import hash_password
from bench.queue_page import EMAIL, PASSWORD, SECRET, T0, ServerTimer, measure, p95
from gateway.escalations import Severity, Trigger
from gateway.model import (
    Condition,
    DeviceKind,
    Enrollment,
    Measurement,
    Patient,
    Practice,
    Program,
    Reading,
)
from gateway.settings import Settings
from gateway.store import open_store
from gateway.store.api_store import User
from gateway.units import Metric

TARGET_MS = 200.0


def seed(store) -> int:  # type: ignore[no-untyped-def]
    store.upsert_practice(Practice("p1", "Bench Clinic", "America/New_York"))
    store.create_user(User("u-coord", "p1", EMAIL, "coordinator", full_name="C",
                           password_hash=hash_password(PASSWORD), created_at=T0))
    store.upsert_patient(Patient("pt", "p1", "MRN-1", "Ann", "Lee", None, "America/New_York"))
    store.upsert_enrollment(Enrollment("pt", "p1", frozenset({Program.RPM, Program.CCM}),
                                       frozenset({Condition.CHF, Condition.HTN, Condition.DM}),
                                       T0.date() - timedelta(days=120)))
    readings = []

    def r(d: int, k: int, kind: DeviceKind, ms: tuple) -> Reading:  # type: ignore[type-arg]
        at = T0 - timedelta(days=90 - d) + timedelta(hours=k * 3)
        return Reading(id=f"r-{d}-{k}", practice_id="p1", patient_id="pt",
                       device_serial=kind.value, hub_id="h", kind=kind, measured_at=at,
                       received_at=at, measurements=ms)

    for d in range(90):
        readings.append(r(d, 0, DeviceKind.SCALE, (Measurement(Metric.WEIGHT, 84 + d * 0.01),)))
        for k in (1, 2):
            readings.append(r(d, k, DeviceKind.BP_CUFF, (Measurement(Metric.SYSTOLIC, 135.0),
                                                      Measurement(Metric.DIASTOLIC, 85.0),
                                                      Measurement(Metric.PULSE, 70.0))))
        for k in (3, 4, 5):
            readings.append(r(d, k, DeviceKind.GLUCOMETER,
                              (Measurement(Metric.GLUCOSE, 120.0 + k * 10),)))
    store.add_readings(readings, T0)
    for i in range(20):
        store.record_trigger(Trigger("p1", "pt", f"rule.{i}", 1, Severity.URGENT,
                                     T0 - timedelta(days=i), f"finding {i}", {}, {}), T0)
    return len(readings)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{Path(tmp) / 'b.db'}")
        store.migrate()
        n = seed(store)
        app = create_app(Settings(secret_key=SECRET, _env_file=None),  # type: ignore[call-arg]
                         store, clock=lambda: T0)
        timer = ServerTimer(app)
        with TestClient(timer, base_url="http://testserver") as client:
            login = client.get("/login")
            nonce = re.search(r'name="csrf" value="([^"]+)"', login.text)
            assert nonce is not None
            client.post("/login", data={"email": EMAIL, "password": PASSWORD,
                                        "csrf": nonce.group(1)}, follow_redirects=False)
            token = client.post("/api/v1/auth/token", data={
                "username": EMAIL, "password": PASSWORD}).json()["access_token"]
            print("timing...", file=sys.stderr)
            rows = {
                "`GET /patients/{id}/call-prep` (page, 30 days)":
                    measure(client, timer, "/patients/pt/call-prep"),
                "`GET /patients/{id}/call-prep?days=90` (page)":
                    measure(client, timer, "/patients/pt/call-prep?days=90"),
                "`GET /api/v1/patients/{id}/call-prep` (JSON)":
                    measure(client, timer, "/api/v1/patients/pt/call-prep",
                            {"Authorization": f"Bearer {token}"}),
            }
        store.close()
    print("## Call prep page\n")
    print(f"SQLite, one patient with {n} readings over 90 days, 20 escalations; signed in as "
          "a coordinator; server time around the ASGI app.\n")
    print(f"| request | server median | server p95 | target < {TARGET_MS:.0f} ms |")
    print("| --- | --- | --- | --- |")
    for name, r in rows.items():
        med, high = statistics.median(r["server"]), p95(r["server"])
        print(f"| {name} | {med:.1f} ms | {high:.1f} ms | "
              f"{'met' if high < TARGET_MS else '**missed**'} |")
    print()


if __name__ == "__main__":
    main()
