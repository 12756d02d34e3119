"""FHIR R4 export of readings (Observations), escalations (Flag + Task) and the
medications as recorded (MedicationStatement).

How this works and what was chosen:

- **Bundle type ``transaction``** with *conditional updates*
  (``PUT Observation?identifier=urn:vitalgate:reading|<id>``): an EHR that
  receives the same reading twice updates one resource instead of creating a
  duplicate, so exports can be repeated safely.  ``fullUrl`` values are
  deterministic ``urn:uuid`` (uuid5 of the identifier) so entries reference
  each other inside the bundle and a re-export is byte-identical.
- Observations follow the FHIR vital-signs profile and the HL7 Personal
  Health Device IG (CLINICAL.md's code table): LOINC + IEEE 11073 MDC codings,
  UCUM units, category ``vital-signs`` + PHD ``phd``; blood pressure is one
  panel with systolic/diastolic/mean components; pulse is its own
  Observation (MDC 149546 from a cuff, 149530 from an oximeter); SpO2 carries
  both LOINC 59408-5 and 2708-6; ``device`` is the measuring Device and the
  ``observation-gatewayDevice`` extension the hub (Device type MDC 531981).
- A value the device could not measure becomes ``dataAbsentReason`` (error);
  glucose LO/HI becomes ``valueQuantity.comparator`` ``<`` / ``>`` with the
  meter's limit (the device-reported limit when known, else 20 / 600 mg/dL).
- The patient is referenced by identifier (the practice's MRN system), so no
  name or birth date leaves Vitalgate in an export.
- **Escalations** export as a ``Flag`` (active while the escalation is open,
  inactive once resolved) plus a ``Task`` (the in-basket item: ``requested`` /
  ``in-progress`` / ``completed``, priority ``asap`` for urgent, ``stat`` for
  emergency), which EHR in-baskets pick up more readily than ``Communication``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from gateway.escalations import Escalation, Severity, Status
from gateway.model import Device, DeviceKind, Flag, Patient, Reading
from gateway.store.api_store import Medication
from gateway.store.base import NotFound
from gateway.units import Metric

LOINC = "http://loinc.org"
MDC = "urn:iso:std:iso:11073:10101"
UCUM = "http://unitsofmeasure.org"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
PHD_CATEGORY = "http://hl7.org/fhir/uv/phd/CodeSystem/PhdObservationCategories"
ABSENT = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
GATEWAY_EXT = "http://hl7.org/fhir/StructureDefinition/observation-gatewayDevice"
READING_SYSTEM = "urn:vitalgate:reading"
SERIAL_SYSTEM = "urn:vitalgate:device-serial"
HUB_SYSTEM = "urn:vitalgate:hub"
ESCALATION_SYSTEM = "urn:vitalgate:escalation"
MEDICATION_SYSTEM = "urn:vitalgate:medication"
_NS = uuid.UUID("6f1c0e1e-6d5a-4d7b-9a57-1f0c9e0d2a11")

#: Default meter limits for LO / HI glucose when the device did not state them (mg/dL).
GLUCOSE_LO_LIMIT = 20.0
GLUCOSE_HI_LIMIT = 600.0

_DEVICE_TYPE = {  # IEEE 11073 MDC device specialisation codes
    DeviceKind.SCALE: ("528399", "MDC_DEV_SPEC_PROFILE_SCALE"),
    DeviceKind.BP_CUFF: ("528391", "MDC_DEV_SPEC_PROFILE_BPM"),
    DeviceKind.PULSE_OXIMETER: ("528388", "MDC_DEV_SPEC_PROFILE_PULS_OXIM"),
    DeviceKind.GLUCOMETER: ("528401", "MDC_DEV_SPEC_PROFILE_GLUCOSE"),
}
_HUB_TYPE = ("531981", "MDC_MOC_VMS_MDS_AHD")

# metric -> (loinc codings, mdc code, display, ucum unit)
_SIMPLE: dict[Metric, tuple[list[tuple[str, str]], str, str, str]] = {
    Metric.WEIGHT: ([("29463-7", "Body weight")], "188736", "Body weight", "kg"),
    Metric.SPO2: ([("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry"),
                   ("2708-6", "Oxygen saturation in Arterial blood")], "150456",
                  "Oxygen saturation", "%"),
    Metric.GLUCOSE: ([("41653-7", "Glucose [Mass/volume] in Capillary blood by Glucometer")],
                     "160184", "Capillary blood glucose", "mg/dL"),
}
_BP_COMPONENTS = [
    (Metric.SYSTOLIC, "8480-6", "Systolic blood pressure", "150021"),
    (Metric.DIASTOLIC, "8462-4", "Diastolic blood pressure", "150022"),
    (Metric.MEAN_ARTERIAL, "8478-0", "Mean blood pressure", "150023"),
]
_UCUM_CODE = {"kg": "kg", "%": "%", "mg/dL": "mg/dL", "mm[Hg]": "mm[Hg]", "/min": "/min"}


def full_url(system: str, value: str) -> str:
    """Deterministic ``urn:uuid`` for an identifier."""
    return f"urn:uuid:{uuid.uuid5(_NS, f'{system}|{value}')}"


def _instant(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


def _quantity(value: float, unit: str) -> dict[str, Any]:
    return {"value": round(value, 4), "unit": unit, "system": UCUM, "code": _UCUM_CODE[unit]}


def _coding(system: str, code: str, display: str) -> dict[str, str]:
    return {"system": system, "code": code, "display": display}


def _entry(resource: dict[str, Any], system: str, value: str) -> dict[str, Any]:
    rtype = resource["resourceType"]
    return {"fullUrl": full_url(system, value), "resource": resource,
            "request": {"method": "PUT", "url": f"{rtype}?identifier={system}|{value}"}}


def device_resource(device: Device) -> dict[str, Any]:
    """A measuring Device (identified by serial)."""
    code, display = _DEVICE_TYPE[device.kind]
    res: dict[str, Any] = {
        "resourceType": "Device",
        "identifier": [{"system": SERIAL_SYSTEM, "value": device.serial}],
        "serialNumber": device.serial,
        "type": {"coding": [_coding(MDC, code, display)]},
    }
    if device.manufacturer:
        res["manufacturer"] = device.manufacturer
    if device.model:
        res["deviceName"] = [{"name": device.model, "type": "model-name"}]
    return res


def hub_resource(hub_id: str) -> dict[str, Any]:
    """The gateway Device (the patient's home hub)."""
    return {"resourceType": "Device", "identifier": [{"system": HUB_SYSTEM, "value": hub_id}],
            "type": {"coding": [_coding(MDC, *_HUB_TYPE)]},
            "deviceName": [{"name": "Vitalgate home hub", "type": "user-friendly-name"}]}


def _patient_ref(patient: Patient) -> dict[str, Any]:
    return {"identifier": {"system": f"urn:vitalgate:mrn:{patient.practice_id}",
                           "value": patient.mrn}}


def _status_of(reading: Reading) -> str:
    return "entered-in-error" if Flag.DEVICE_INVALID in reading.flags else "final"


def _base(reading: Reading, patient: Patient, ident: str, codings: list[dict[str, str]],
          text: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "identifier": [{"system": READING_SYSTEM, "value": ident}],
        "status": _status_of(reading),
        "category": [
            {"coding": [_coding(OBS_CATEGORY, "vital-signs", "Vital Signs")]},
            {"coding": [_coding(PHD_CATEGORY, "phd", "PHD generated Observation")]},
        ],
        "code": {"coding": codings, "text": text},
        "subject": _patient_ref(patient),
        "effectiveDateTime": _instant(reading.measured_at),
        "issued": _instant(reading.ingested_at or reading.received_at),
        "device": {"reference": full_url(SERIAL_SYSTEM, reading.device_serial)},
        "extension": [{"url": GATEWAY_EXT,
                       "valueReference": {"reference": full_url(HUB_SYSTEM, reading.hub_id)}}],
    }


def _absent() -> dict[str, Any]:
    return {"coding": [_coding(ABSENT, "error", "Error")], "text": "measurement unsuccessful"}


def observations_for(reading: Reading, patient: Patient) -> list[dict[str, Any]]:
    """The Observations one reading becomes (a BP reading with pulse gives two)."""
    out: list[dict[str, Any]] = []
    metrics = {m.metric: m for m in reading.measurements}
    if Metric.SYSTOLIC in metrics or Metric.DIASTOLIC in metrics:
        obs = _base(reading, patient, reading.id,
                    [_coding(LOINC, "85354-9", "Blood pressure panel"),
                     _coding(MDC, "150020", "MDC_PRESS_BLD_NONINV")], "Blood pressure")
        comps = []
        for metric, loinc, display, mdc in _BP_COMPONENTS:
            m = metrics.get(metric)
            if m is None:
                continue
            comp: dict[str, Any] = {"code": {"coding": [_coding(LOINC, loinc, display),
                                                        _coding(MDC, mdc, display)]}}
            if m.value is None:
                comp["dataAbsentReason"] = _absent()
            else:
                comp["valueQuantity"] = _quantity(m.value, "mm[Hg]")
            comps.append(comp)
        obs["component"] = comps
        out.append(obs)
    for metric, (loincs, mdc, text, unit) in _SIMPLE.items():
        m = metrics.get(metric)
        if m is None:
            continue
        codings = [_coding(LOINC, c, d) for c, d in loincs] + [_coding(MDC, mdc, text)]
        obs = _base(reading, patient, reading.id if not out else f"{reading.id}#{metric}",
                    codings, text)
        if metric is Metric.GLUCOSE and (m.special in ("lo", "hi")
                                         or reading.flags & {Flag.GLUCOSE_LO, Flag.GLUCOSE_HI}):
            low = m.special == "lo" or Flag.GLUCOSE_LO in reading.flags
            limit = m.raw_value if m.raw_value is not None else (
                GLUCOSE_LO_LIMIT if low else GLUCOSE_HI_LIMIT)
            obs["valueQuantity"] = {**_quantity(limit, unit), "comparator": "<" if low else ">"}
        elif m.value is None:
            obs["dataAbsentReason"] = _absent()
        else:
            obs["valueQuantity"] = _quantity(m.value, unit)
        out.append(obs)
    pulse = metrics.get(Metric.PULSE)
    if pulse is not None:
        mdc = "149530" if reading.kind is DeviceKind.PULSE_OXIMETER else "149546"
        obs = _base(reading, patient, f"{reading.id}#pulse" if out else reading.id,
                    [_coding(LOINC, "8867-4", "Heart rate"),
                     _coding(MDC, mdc, "MDC_PULS_RATE")], "Heart rate")
        if pulse.value is None:
            obs["dataAbsentReason"] = _absent()
        else:
            obs["valueQuantity"] = _quantity(pulse.value, "/min")
        out.append(obs)
    return out


def readings_bundle(patient: Patient, readings: Iterable[Reading],
                    devices: Mapping[str, Device]) -> dict[str, Any]:
    """A transaction Bundle of the patient's readings with their Devices."""
    entries: list[dict[str, Any]] = []
    seen_devices: set[str] = set()
    seen_hubs: set[str] = set()
    for reading in readings:
        if reading.device_serial not in seen_devices:
            device = devices.get(reading.device_serial) or Device(
                reading.device_serial, reading.practice_id, reading.kind)
            entries.append(_entry(device_resource(device), SERIAL_SYSTEM, device.serial))
            seen_devices.add(reading.device_serial)
        if reading.hub_id not in seen_hubs:
            entries.append(_entry(hub_resource(reading.hub_id), HUB_SYSTEM, reading.hub_id))
            seen_hubs.add(reading.hub_id)
        for obs in observations_for(reading, patient):
            entries.append(_entry(obs, READING_SYSTEM, obs["identifier"][0]["value"]))
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


_TASK_STATUS = {Status.OPEN: "requested", Status.ACKNOWLEDGED: "in-progress",
                Status.RESOLVED: "completed"}
_PRIORITY = {Severity.ROUTINE: "routine", Severity.URGENT: "asap", Severity.EMERGENCY: "stat"}


def escalation_resources(esc: Escalation, patient: Patient,
                         reading_ids: Sequence[str] = ()) -> list[dict[str, Any]]:
    """A ``Flag`` and a ``Task`` for an escalation."""
    ident = {"system": ESCALATION_SYSTEM, "value": esc.id}
    flag: dict[str, Any] = {
        "resourceType": "Flag",
        "identifier": [ident],
        "status": "inactive" if esc.status is Status.RESOLVED else "active",
        "category": [{"coding": [_coding(
            "http://terminology.hl7.org/CodeSystem/flag-category", "clinical", "Clinical")]}],
        "code": {"coding": [{"system": "urn:vitalgate:rule", "code": esc.rule_id}],
                 "text": esc.summary},
        "subject": _patient_ref(patient),
        "period": {"start": _instant(esc.opened_at)},
    }
    if esc.resolved_at is not None:
        flag["period"]["end"] = _instant(esc.resolved_at)
    task: dict[str, Any] = {
        "resourceType": "Task",
        "identifier": [ident],
        "status": _TASK_STATUS[esc.status],
        "intent": "order",
        "priority": _PRIORITY[esc.severity],
        "code": {"coding": [{"system": "urn:vitalgate:rule", "code": esc.rule_id}],
                 "text": f"Review remote-monitoring alert: {esc.rule_id}"},
        "description": esc.summary,
        "for": _patient_ref(patient),
        "focus": {"reference": full_url("urn:vitalgate:flag", esc.id)},
        "authoredOn": _instant(esc.opened_at),
        "lastModified": _instant(esc.updated_at),
        "input": [{"type": {"text": "reading"},
                   "valueIdentifier": {"system": READING_SYSTEM, "value": rid}}
                  for rid in reading_ids],
    }
    if not task["input"]:
        del task["input"]
    return [flag, task]


def escalations_bundle(patient: Patient, escalations: Iterable[Escalation]) -> dict[str, Any]:
    """A transaction Bundle of Flags and Tasks for escalations."""
    entries: list[dict[str, Any]] = []
    for esc in escalations:
        ids: list[str] = []
        for ev in esc.evidence:
            ids.extend(str(r) for r in ev.get("reading_ids", []))
        flag, task = escalation_resources(esc, patient, ids)
        entries.append({"fullUrl": full_url("urn:vitalgate:flag", esc.id), "resource": flag,
                        "request": {"method": "PUT",
                                    "url": f"Flag?identifier={ESCALATION_SYSTEM}|{esc.id}"}})
        entries.append(_entry(task, ESCALATION_SYSTEM, esc.id))
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def medication_resource(m: Medication, patient: Patient) -> dict[str, Any]:
    """A ``MedicationStatement`` for a medication as the care team recorded it."""
    period: dict[str, str] = {}
    if m.started_on is not None:
        period["start"] = m.started_on.isoformat()
    if m.stopped_at is not None:
        period["end"] = _instant(m.stopped_at)
    res: dict[str, Any] = {
        "resourceType": "MedicationStatement",
        "identifier": [{"system": MEDICATION_SYSTEM, "value": str(m.id)}],
        "status": "active" if m.stopped_at is None else "stopped",
        "medicationCodeableConcept": {"text": m.name},
        "subject": _patient_ref(patient),
        "dateAsserted": _instant(m.recorded_at),
    }
    if period:
        res["effectivePeriod"] = period
    dosage = ", ".join(x for x in (m.dose, m.frequency) if x)
    if dosage:
        res["dosage"] = [{"text": dosage}]
    if m.stop_reason:
        res["statusReason"] = [{"text": m.stop_reason}]
    if m.note:
        res["note"] = [{"text": m.note}]
    return res


def medications_bundle(patient: Patient, medications: Iterable[Medication]) -> dict[str, Any]:
    """A transaction Bundle of MedicationStatements (conditional PUT by identifier)."""
    return {"resourceType": "Bundle", "type": "transaction",
            "entry": [_entry(medication_resource(m, patient), MEDICATION_SYSTEM, str(m.id))
                      for m in medications]}


def patient_bundle(store: Any, patient: Patient, *, what: str = "readings",
                   since: datetime | None = None) -> dict[str, Any]:
    """A patient's export from the store: readings (with their Devices), escalations, or
    the medications as recorded."""
    if what == "medications":
        return medications_bundle(patient, store.list_medications(patient.id,
                                                                  patient.practice_id))
    if what == "escalations":
        return escalations_bundle(patient, store.list_escalations(
            patient.practice_id, patient_id=patient.id, status=list(Status), limit=10_000))
    readings = store.get_readings(patient.id, start=since, limit=1_000_000,
                                  practice_id=patient.practice_id)
    devices = {}
    for serial in {r.device_serial for r in readings}:
        try:
            devices[serial] = store.get_device(serial)
        except NotFound:
            continue
    return readings_bundle(patient, readings, devices)
