"""Call prep: statistics, trend, time in range, talking points, CLI."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from gateway.billing import TimeEntry
from gateway.callprep import build_callprep, sparkline_svg
from gateway.escalations import Severity, Trigger
from gateway.model import Condition, Enrollment, Program
from gateway.store import open_store
from gateway.units import Metric, lb_to_kg
from tests.gateway.factories import bp, seed_patient, weight

NOW = datetime(2026, 3, 20, 15, 0, tzinfo=UTC)  # a Friday


def _data() -> tuple[list, Enrollment]:
    readings = []
    for d in range(10):  # weight rising 0.62 lb/day over the last 5 days
        gain = max(0, d - 5) * 0.62
        at = NOW - timedelta(days=9 - d, hours=3)
        readings.append(weight(f"w{d}", at, 84.0 + lb_to_kg(gain)))
        readings.append(bp(f"b{d}", at + timedelta(minutes=5), 150, 92, 70))
    enrollment = Enrollment("pt1", "p1", frozenset({Program.RPM, Program.CCM}),
                            frozenset({Condition.CHF, Condition.HTN}), date(2026, 3, 1))
    return readings, enrollment


def test_summary_and_talking_points() -> None:
    from gateway.model import Patient

    readings, enrollment = _data()
    patient = Patient("pt1", "p1", "MRN-77123", "Ann", "Lee", None, "America/New_York")
    entries = [TimeEntry("pt1", Program.RPM, NOW - timedelta(days=2), 15, True)]
    days = sorted({r.measured_at.date() for r in readings})
    prep = build_callprep(patient, enrollment=enrollment, readings=readings, escalations=[],
                          time_entries=entries, device_days=days,
                          since=NOW - timedelta(days=30), now=NOW)
    by = {m.metric: m for m in prep.metrics}
    assert by[Metric.WEIGHT].count == 10
    assert by[Metric.SYSTOLIC].in_range_share == 0.0
    assert by[Metric.WEIGHT].slope_per_week is not None and by[Metric.WEIGHT].slope_per_week > 0
    text = " | ".join(prep.talking_points)
    assert "weight up 2.5 lb over 4 days" in text or "weight up 3.1 lb over 5 days" in text, text
    assert "average BP 150/92 mmHg, above the 140/90 goal" in text
    assert "5 more RPM minutes reach 99457" in text, text
    md = prep.to_markdown()
    assert "# Call prep: patient AL (pt1)" in md and "Ann" not in md and "Lee" not in md
    assert prep.to_dict()["initials"] == "AL"


def test_no_recent_metric_is_called_out() -> None:
    from gateway.model import Patient

    readings, enrollment = _data()
    old = [r for r in readings if r.id.startswith("w")] + [
        bp("old-bp", NOW - timedelta(days=5), 120, 80)]
    patient = Patient("pt1", "p1", "MRN-77123", "Ann", "Lee", None, "America/New_York")
    prep = build_callprep(patient, enrollment=enrollment, readings=old, escalations=[],
                          time_entries=[], device_days=[], since=NOW - timedelta(days=30),
                          now=NOW)
    assert any(t.startswith("no systolic bp readings since Sunday") for t in prep.talking_points)


def test_sparkline_draws_threshold() -> None:
    svg = sparkline_svg([(NOW, 1.0), (NOW + timedelta(days=1), 3.0)], threshold=2.0)
    assert svg.startswith("<svg") and "stroke-dasharray" in svg and 'role="img"' in svg


def test_cli_prints_markdown(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    store = open_store(url)
    store.migrate()
    seed_patient(store)
    now = datetime.now(UTC)
    store.add_readings([weight("w1", now - timedelta(days=2), 84.0),
                        weight("w2", now - timedelta(days=1), 85.5)], now)
    store.record_trigger(Trigger("p1", "pt1", "chf.weight_gain_24h", 1, Severity.URGENT,
                                 now, "Weight up 3.3 lb", {}, {}), now)
    store.close()
    out = subprocess.run([sys.executable, "-m", "gateway.cli", "callprep", "pt1", "--database",
                          url], capture_output=True, text=True, check=True)
    assert "# Call prep: patient AL (pt1)" in out.stdout
    assert "Weight up 3.3 lb" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "gateway.cli", "callprep", "nobody",
                          "--database", url], capture_output=True, text=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_medications_as_recorded_and_changes_since_the_last_call() -> None:
    from gateway.model import Patient
    from gateway.store.api_store import Medication

    readings, enrollment = _data()
    patient = Patient("pt1", "p1", "MRN-77123", "Ann", "Lee", None, "America/New_York")
    meds = [
        Medication("p1", "pt1", "Lisinopril", "u1", NOW - timedelta(days=90), dose="10 mg",
                   frequency="once daily", started_on=date(2025, 11, 2)),
        Medication("p1", "pt1", "Metoprolol", "u1", NOW - timedelta(days=60), dose="25 mg",
                   stopped_at=NOW - timedelta(days=3), stopped_by="u2",
                   stop_reason="bradycardia"),
        Medication("p1", "pt1", "Furosemide", "u1", NOW - timedelta(days=2), dose="40 mg",
                   frequency="once daily"),
        Medication("p1", "pt1", "Aspirin", "u1", NOW - timedelta(days=200),
                   stopped_at=NOW - timedelta(days=100)),
    ]
    prep = build_callprep(patient, enrollment=enrollment, readings=readings, escalations=[],
                          time_entries=[], device_days=[], since=NOW - timedelta(days=30),
                          now=NOW, medications=meds)
    assert prep.medications == ("Lisinopril 10 mg, once daily (since 2025-11-02)",
                                "Furosemide 40 mg, once daily (since 2026-03-18)")
    assert prep.medication_changes == ("Metoprolol 25 mg stopped Mar 17: bradycardia",
                                       "Furosemide 40 mg, once daily recorded Mar 18")
    assert any(t.startswith("medications changed since the last call (Metoprolol")
               for t in prep.talking_points)
    md = prep.to_markdown()
    assert "- Lisinopril 10 mg, once daily (since 2025-11-02)" in md
    assert "- changed since the last call: Metoprolol 25 mg stopped Mar 17: bradycardia" in md
    assert prep.to_dict()["medication_changes"] == list(prep.medication_changes)
    quiet = build_callprep(patient, enrollment=enrollment, readings=readings, escalations=[],
                           time_entries=[], device_days=[], since=NOW - timedelta(days=1),
                           now=NOW, medications=meds[:1])
    assert quiet.medication_changes == () and not any(
        "medications changed" in t for t in quiet.talking_points)
    assert "none recorded; review in the EHR" in build_callprep(
        patient, enrollment=enrollment, readings=readings, escalations=[], time_entries=[],
        device_days=[], since=NOW - timedelta(days=1), now=NOW).to_markdown()


def test_single_low_glucose_is_a_talking_point_without_an_escalation() -> None:
    """CLINICAL.md dm.glucose_low: one reading of 54-69 adds to call prep only."""
    from gateway.model import DeviceKind, Measurement, Patient, Reading
    from rules.engine import Escalation as Finding
    from rules.engine import step
    from tests.rules.harness import patient_state

    readings = [Reading(id=f"g{i}", practice_id="p1", patient_id="pt1", device_serial="GLU-1",
                        hub_id="hub-1", kind=DeviceKind.GLUCOMETER,
                        measured_at=NOW - timedelta(days=3 - i), received_at=NOW,
                        measurements=(Measurement(Metric.GLUCOSE, v),))
                for i, v in enumerate((140.0, 62.0, 150.0))]
    st = patient_state(("DM",), now=NOW - timedelta(days=4))
    findings = []
    for r in readings:
        st, eff = step(st, r.__class__(**{**{f: getattr(r, f) for f in r.__dataclass_fields__},
                                          "patient_id": st.patient_id}), r.measured_at)
        findings += [e.rule_id for e in eff if isinstance(e, Finding)]
    assert "dm.glucose_low" not in findings  # one low reading: no escalation
    enrollment = Enrollment("pt1", "p1", frozenset({Program.RPM, Program.CCM}),
                            frozenset({Condition.DM}), date(2026, 3, 1))
    patient = Patient("pt1", "p1", "MRN-77123", "Ann", "Lee", None, "America/New_York")
    prep = build_callprep(patient, enrollment=enrollment, readings=readings, escalations=[],
                          time_entries=[], device_days=[], since=NOW - timedelta(days=30),
                          now=NOW)
    assert "1 glucose reading below 70 mg/dL" in prep.talking_points
