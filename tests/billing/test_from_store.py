"""The month-end report from the store agrees with the file-based CLI on the same data."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from gateway.billing.from_store import practice_month
from gateway.billing.rules import BillingMonth
from gateway.model import (
    Condition,
    DeviceKind,
    Enrollment,
    Measurement,
    Patient,
    Practice,
    Program,
    Reading,
    ReadingSource,
)
from gateway.store import Store
from gateway.units import Metric

ZONES = ["America/New_York", "Pacific/Honolulu", "America/Los_Angeles", "Europe/London"]


def _populate(store: Store, rng: random.Random, n: int = 12) -> tuple[list, list, list]:
    store.upsert_practice(Practice("p1", "P", "America/New_York"))
    patients, rows, times = [], [], []
    for i in range(n):
        pid = f"pt{i}"
        tz = ZONES[i % len(ZONES)]
        programs = [Program.RPM] + ([Program.CCM] if i % 3 == 0 else [])
        conditions = [Condition.HTN, Condition.DM] if i % 2 else [Condition.CHF]
        consent = date(2026, 1, 20) + timedelta(days=i)
        store.upsert_patient(Patient(pid, "p1", f"M{i}", "A", "B", None, tz))
        store.upsert_enrollment(Enrollment(pid, "p1", frozenset(programs),
                                           frozenset(conditions), consent))
        patients.append({"id": pid, "timezone": tz, "programs": [p.value for p in programs],
                         "conditions": [c.value for c in conditions],
                         "consent_date": consent.isoformat()})
        readings = []
        n_days = rng.choice([1, 2, 9, 15, 16, 25, 40])
        for d in rng.sample(range(60), n_days):
            at = datetime(2026, 2, 1, tzinfo=UTC) + timedelta(days=d, hours=rng.randint(0, 23),
                                                               minutes=rng.randint(0, 59))
            manual = rng.random() < 0.1
            rid = f"{pid}-{d}-{len(readings)}"
            readings.append(Reading(id=rid, practice_id="p1", patient_id=pid,
                                    device_serial="S", hub_id="h", kind=DeviceKind.SCALE,
                                    measured_at=at, received_at=at,
                                    source=ReadingSource.MANUAL if manual
                                    else ReadingSource.DEVICE,
                                    measurements=(Measurement(Metric.WEIGHT, 80.0),)))
            rows.append(f"{pid},{at.isoformat()},weight,80,kg,{'manual' if manual else 'device'}")
        store.add_readings(readings, datetime(2026, 4, 1, tzinfo=UTC))
        for k in range(rng.randint(0, 4)):
            program = rng.choice(programs)
            started = datetime(2026, 3, 1 + 7 * k, 15, tzinfo=UTC)
            minutes = rng.choice([5, 9, 10, 12, 20, 21])
            interactive = rng.random() < 0.6
            store.add_time_entry(practice_id="p1", patient_id=pid, user_id="u1",  # type: ignore[attr-defined]
                                 program=program, activity="call", started_at=started,
                                 minutes=minutes, interactive=interactive,
                                 performed_by="clinical_staff", note="",
                                 now=started)
            times.append(f"{pid},{program.value},{started.isoformat()},{minutes},"
                         f"{str(interactive).lower()},clinical_staff")
    return patients, rows, times


def test_store_report_equals_cli(store: Store, tmp_path: Path) -> None:
    patients, rows, times = _populate(store, random.Random(7))
    (tmp_path / "P.json").write_text(json.dumps(patients))
    (tmp_path / "R.csv").write_text("patient_id,measured_at,metric,value,unit,source\n"
                                    + "\n".join(rows) + "\n")
    (tmp_path / "T.csv").write_text("patient_id,program,started_at,minutes,interactive,"
                                    "performed_by\n" + "\n".join(times) + "\n")
    for month in ("2026-02", "2026-03"):
        out = subprocess.run([sys.executable, "-m", "gateway.cli", "billing", "evaluate",
                              "--patients", str(tmp_path / "P.json"), "--readings",
                              str(tmp_path / "R.csv"), "--time", str(tmp_path / "T.csv"),
                              "--month", month, "--practice-tz", "America/New_York"],
                             capture_output=True, text=True, check=True)
        cli = {p["patient_id"]: p for p in json.loads(out.stdout)}
        web = {r.patient_id: r.to_dict() for r in practice_month(store, "p1",
                                                                 BillingMonth.parse(month))}
        assert set(cli) == set(web)
        for pid in cli:
            assert cli[pid]["codes"] == web[pid]["codes"], pid
            assert cli[pid]["not_billable"] == web[pid]["not_billable"], pid
            assert cli[pid]["periods"] == web[pid]["periods"], pid


def test_panel_codes_equal_the_reports(store: Store) -> None:
    """The vectorised month-end (lean reads + day masks) bills what the per-patient
    reports bill, on the same stored data: both stores, several months."""
    from gateway.billing.from_store import practice_month_codes

    _populate(store, random.Random(11), n=30)
    rng = random.Random(5)
    # richer cases: physician and PCM time, an enrolment start, no consent, another practice
    store.upsert_patient(Patient("px", "p1", "MX", "A", "B", None, "Asia/Tokyo"))
    store.upsert_enrollment(Enrollment("px", "p1", frozenset({Program.RPM, Program.PCM}),
                                       frozenset({Condition.DM}), date(2026, 2, 3),
                                       monitoring_start=date(2026, 2, 10)))
    store.upsert_patient(Patient("pn", "p1", "MN", "A", "B", None, "UTC"))
    store.upsert_enrollment(Enrollment("pn", "p1", frozenset({Program.RPM, Program.CCM}),
                                       frozenset({Condition.DM, Condition.HTN}), None))
    store.upsert_practice(Practice("p2", "Other", "UTC"))
    store.upsert_patient(Patient("po", "p2", "MO", "A", "B", None, "UTC"))
    store.upsert_enrollment(Enrollment("po", "p2", frozenset({Program.RPM}),
                                       frozenset({Condition.DM}), date(2026, 1, 1)))
    for pid in ("px", "pn", "po", "pt0", "pt3"):
        practice = "p2" if pid == "po" else "p1"
        at = [datetime(2026, 2, 1, 12, tzinfo=UTC) + timedelta(days=d) for d in range(55)
              if rng.random() < 0.6]
        store.add_readings([Reading(id=f"{pid}-x{k}", practice_id=practice, patient_id=pid,
                                    device_serial="S2", hub_id="h", kind=DeviceKind.SCALE,
                                    measured_at=t, received_at=t,
                                    measurements=(Measurement(Metric.WEIGHT, 80.0),))
                            for k, t in enumerate(at)], datetime(2026, 4, 1, tzinfo=UTC))
        for k, (program, who, minutes) in enumerate(
                [(Program.PCM, "physician", 31), (Program.CCM, "physician", 62),
                 (Program.PCM, "clinical_staff", 30), (Program.RPM, "physician", 25)]):
            started = datetime(2026, 3, 3 + 6 * k, 20, tzinfo=UTC)
            store.add_time_entry(practice_id=practice, patient_id=pid,  # type: ignore[attr-defined]
                                 user_id="u2", program=program, activity="call",
                                 started_at=started, minutes=minutes, interactive=True,
                                 performed_by=who, note="", now=started)
    # a complex care plan revised in March: 95 staff CCM minutes bill 99487 + 99489
    store.upsert_patient(Patient("pc", "p1", "MC", "A", "B", None, "America/Chicago"))
    store.upsert_enrollment(Enrollment("pc", "p1", frozenset({Program.CCM}),
                                       frozenset({Condition.DM, Condition.CHF}),
                                       date(2026, 1, 5)))
    store.set_complex_ccm_month("p1", "pc", date(2026, 3, 1), "doc",  # type: ignore[attr-defined]
                                datetime(2026, 3, 2, tzinfo=UTC))
    for k, minutes in enumerate((40, 35, 20)):
        started = datetime(2026, 3, 4 + 5 * k, 16, tzinfo=UTC)
        store.add_time_entry(practice_id="p1", patient_id="pc", user_id="u3",  # type: ignore[attr-defined]
                             program=Program.CCM, activity="care plan", started_at=started,
                             minutes=minutes, interactive=False,
                             performed_by="clinical_staff", note="", now=started)
    for text in ("2026-02", "2026-03", "2026-04"):
        month = BillingMonth.parse(text)
        reports = {r.patient_id: r.code_units() for r in practice_month(store, "p1", month)}
        codes = practice_month_codes(store, "p1", month)
        assert codes.by_patient() == reports, text
        assert "po" not in reports
        if text == "2026-03":
            assert reports["pc"] == {"99487": 1, "99489": 1}
    assert any(reports.values())
