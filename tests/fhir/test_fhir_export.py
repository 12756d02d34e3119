"""FHIR export: every metric validates with fhir.resources (R4B) and round-trips."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.device import Device as FhirDevice
from fhir.resources.R4B.flag import Flag as FhirFlag
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.task import Task

from api.fhir import (
    GATEWAY_EXT,
    READING_SYSTEM,
    escalations_bundle,
    readings_bundle,
)
from gateway.escalations import Action, Disposition, Severity, Trigger
from gateway.model import Device, DeviceKind, Flag, Measurement, Patient, Reading
from gateway.store import open_store
from gateway.units import Metric, Unit

T = datetime(2026, 3, 1, 12, 30, 15, tzinfo=UTC)
PATIENT = Patient("pt1", "p1", "MRN-0042", "Ann", "Lee", None, "America/New_York")


def reading(rid: str, kind: DeviceKind, *ms: Measurement, flags: frozenset[Flag] = frozenset(),
            serial: str = "SN-1") -> Reading:
    return Reading(id=rid, practice_id="p1", patient_id="pt1", device_serial=serial,
                   hub_id="hub-1", kind=kind, measured_at=T, received_at=T + timedelta(seconds=5),
                   ingested_at=T + timedelta(seconds=6), measurements=ms, flags=flags)


ALL = [
    reading("w1", DeviceKind.SCALE, Measurement(Metric.WEIGHT, 84.55, 186.4, Unit.LB),
            serial="SCALE-1"),
    reading("bp1", DeviceKind.BP_CUFF, Measurement(Metric.SYSTOLIC, 125.0),
            Measurement(Metric.DIASTOLIC, 80.0), Measurement(Metric.MEAN_ARTERIAL, 102.0),
            Measurement(Metric.PULSE, 64.0), serial="BP-1"),
    reading("ox1", DeviceKind.PULSE_OXIMETER, Measurement(Metric.SPO2, 94.0),
            Measurement(Metric.PULSE, 72.0), serial="OX-1"),
    reading("g1", DeviceKind.GLUCOMETER, Measurement(Metric.GLUCOSE, 112.0), serial="GL-1"),
    reading("g-lo", DeviceKind.GLUCOMETER, Measurement(Metric.GLUCOSE, None, None, None, "lo"),
            flags=frozenset({Flag.GLUCOSE_LO}), serial="GL-1"),
    reading("g-hi", DeviceKind.GLUCOMETER,
            Measurement(Metric.GLUCOSE, None, 600.0, Unit.MG_DL, "hi"),
            flags=frozenset({Flag.GLUCOSE_HI}), serial="GL-1"),
    reading("w-nan", DeviceKind.SCALE, Measurement(Metric.WEIGHT, None, None, None, "nan"),
            flags=frozenset({Flag.MEASUREMENT_UNSUCCESSFUL}), serial="SCALE-1"),
]
DEVICES = {"SCALE-1": Device("SCALE-1", "p1", DeviceKind.SCALE, "UC-352BLE", "A&D")}


def _observations(bundle: dict) -> dict[str, dict]:
    return {e["resource"]["identifier"][0]["value"]: e["resource"] for e in bundle["entry"]
            if e["resource"]["resourceType"] == "Observation"}


def test_bundle_validates_and_has_every_resource() -> None:
    bundle = readings_bundle(PATIENT, ALL, DEVICES)
    parsed = Bundle.model_validate(bundle)
    assert parsed.type == "transaction"
    kinds = [e.resource.get_resource_type() for e in parsed.entry]
    assert kinds.count("Device") == 5  # 4 devices + 1 hub
    for entry in bundle["entry"]:
        res = entry["resource"]
        model = {"Observation": Observation, "Device": FhirDevice}[res["resourceType"]]
        model.model_validate(res)
        assert entry["request"]["method"] == "PUT"
        assert "identifier=" in entry["request"]["url"]


def test_codes_units_and_round_trip() -> None:
    obs = _observations(readings_bundle(PATIENT, ALL, DEVICES))
    parsed = {k: Observation.model_validate(v) for k, v in obs.items()}
    w = parsed["w1"]
    assert {c.code for c in w.code.coding} == {"29463-7", "188736"}
    assert (float(w.valueQuantity.value), w.valueQuantity.code) == (84.55, "kg")
    assert w.effectiveDateTime == T
    bp = parsed["bp1"]
    assert {c.code for c in bp.code.coding} == {"85354-9", "150020"}
    comps = {c.code.coding[0].code: c.valueQuantity for c in bp.component}
    assert comps["8480-6"].value == 125 and comps["8462-4"].value == 80
    assert comps["8478-0"].value == 102 and comps["8480-6"].code == "mm[Hg]"
    cuff_pulse = parsed["bp1#pulse"]
    assert {c.code for c in cuff_pulse.code.coding} == {"8867-4", "149546"}
    assert cuff_pulse.valueQuantity.value == 64
    ox = parsed["ox1"]
    assert {c.code for c in ox.code.coding} >= {"59408-5", "2708-6", "150456"}
    assert {c.code for c in parsed["ox1#pulse"].code.coding} == {"8867-4", "149530"}
    assert parsed["g1"].valueQuantity.value == 112 and parsed["g1"].valueQuantity.code == "mg/dL"
    assert parsed["g-lo"].valueQuantity.comparator == "<"
    assert parsed["g-lo"].valueQuantity.value == 20
    assert parsed["g-hi"].valueQuantity.comparator == ">"
    assert parsed["g-hi"].valueQuantity.value == 600
    assert parsed["w-nan"].valueQuantity is None
    assert parsed["w-nan"].dataAbsentReason.coding[0].code == "error"
    for o in obs.values():
        assert o["extension"][0]["url"] == GATEWAY_EXT
        assert o["device"]["reference"].startswith("urn:uuid:")
        cats = {c["coding"][0]["code"] for c in o["category"]}
        assert cats == {"vital-signs", "phd"}
        assert "name" not in json.dumps(o["subject"])  # no PHI beyond the MRN identifier


def test_reexport_is_identical_so_ehr_does_not_duplicate() -> None:
    a = readings_bundle(PATIENT, ALL, DEVICES)
    b = readings_bundle(PATIENT, list(ALL), DEVICES)
    assert a == b
    ids = [e["resource"]["identifier"][0]["value"] for e in a["entry"]
           if e["resource"]["resourceType"] == "Observation"]
    assert len(ids) == len(set(ids))
    assert all(e["request"]["url"].startswith("Observation?identifier=" + READING_SYSTEM)
               for e in a["entry"] if e["resource"]["resourceType"] == "Observation")


def test_escalations_export_as_flag_and_task(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 's.db'}")
    store.migrate()
    trig = Trigger("p1", "pt1", "chf.weight_gain_24h", 1, Severity.URGENT, T,
                   "Weight 186.4 lb, up 2.6 lb from 183.8 lb", {"gain_lb": 2.0},
                   {"reading_ids": ["w0", "w1"]})
    esc, _ = store.record_trigger(trig, T)
    bundle = escalations_bundle(PATIENT, [esc])
    Bundle.model_validate(bundle)
    flag = FhirFlag.model_validate(bundle["entry"][0]["resource"])
    task = Task.model_validate(bundle["entry"][1]["resource"])
    assert flag.status == "active" and task.status == "requested" and task.priority == "asap"
    assert [i.valueIdentifier.value for i in task.input] == ["w0", "w1"]
    done = store.transition(esc.id, Action.RESOLVE, "u1", T + timedelta(hours=1),
                            disposition=Disposition.MEDICATION_ADJUSTED)
    closed = escalations_bundle(PATIENT, [done])
    assert closed["entry"][0]["resource"]["status"] == "inactive"
    assert closed["entry"][1]["resource"]["status"] == "completed"
    store.close()


def test_cli_export(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    store = open_store(url)
    store.migrate()
    from gateway.model import Practice

    store.upsert_practice(Practice("p1", "P", "America/New_York"))
    store.upsert_patient(PATIENT)
    store.add_readings(ALL[:2], T)
    store.close()
    out = subprocess.run([sys.executable, "-m", "gateway.cli", "export", "fhir", "--patient",
                          "pt1", "--since", "2026-03-01T00:00:00Z", "--database", url],
                         capture_output=True, text=True, check=True)
    bundle = json.loads(out.stdout)
    Bundle.model_validate(bundle)
    assert len(_observations(bundle)) == 3
    bad = subprocess.run([sys.executable, "-m", "gateway.cli", "export", "fhir", "--patient",
                          "nobody", "--database", url], capture_output=True, text=True)
    assert bad.returncode == 2 and "no patient" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.parametrize("since", ["yesterday", "2026-03-01T00:00:00"])
def test_cli_refuses_bad_since(tmp_path: Path, since: str) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    bad = subprocess.run([sys.executable, "-m", "gateway.cli", "export", "fhir", "--patient",
                          "x", "--since", since, "--database", url], capture_output=True,
                         text=True)
    assert bad.returncode == 2 and "--since" in bad.stderr



def test_medications_export_as_medication_statements(tmp_path: Path) -> None:
    from fhir.resources.R4B.medicationstatement import MedicationStatement

    from api.fhir import patient_bundle
    from gateway.model import Patient as P
    from gateway.model import Practice
    from gateway.store.api_store import Medication

    store = open_store(f"sqlite:///{tmp_path / 's.db'}")
    store.migrate()
    store.upsert_practice(Practice("p1", "P", "UTC"))
    patient = P("pt1", "p1", "MRN-1", "Ann", "Lee", None, "UTC")
    store.upsert_patient(patient)
    a = store.add_medication(Medication("p1", "pt1", "Furosemide", "u1", T, dose="40 mg",  # type: ignore[attr-defined]
                                        frequency="once daily", started_on=T.date(),
                                        note="from discharge summary"))
    b = store.add_medication(Medication("p1", "pt1", "Lisinopril", "u1", T))  # type: ignore[attr-defined]
    store.stop_medication(b, "p1", "u2", T + timedelta(days=2), "cough")  # type: ignore[attr-defined]
    bundle = patient_bundle(store, patient, what="medications")
    Bundle.model_validate(bundle)
    first, second = (MedicationStatement.model_validate(e["resource"])
                     for e in bundle["entry"])
    assert first.status == "active" and first.dosage[0].text == "40 mg, once daily"
    assert first.medicationCodeableConcept.text == "Furosemide"
    assert first.identifier[0].value == str(a) and first.note[0].text == "from discharge summary"
    assert second.status == "stopped" and second.statusReason[0].text == "cough"
    assert second.effectivePeriod.end is not None
    assert [e["request"]["url"] for e in bundle["entry"]] == [
        f"MedicationStatement?identifier=urn:vitalgate:medication|{a}",
        f"MedicationStatement?identifier=urn:vitalgate:medication|{b}"]
    assert patient_bundle(store, patient, what="medications") == bundle  # re-export: same
    store.close()
