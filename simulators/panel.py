"""A simulated practice: patients, devices, hubs and their reading streams.

A :class:`Panel` ties physiology profiles to the registry objects the gateway
knows (practice, patients, enrolments, devices, hubs, assignments) so that
readings published for it are accepted by ingest once :func:`provision` has
written the registry into a store.  Identifiers are derived from patient ids
(``hub-{patient}``, ``SC-{patient}`` ...), so a panel rebuilt from the same
inputs names the same things.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from gateway.model import (
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
from gateway.store import Store
from gateway.units import CANONICAL_UNIT
from gateway.wire import WireDevice, WireReading, WireReadings, WireValue
from simulators.physiology import PatientProfile, Sample, simulate_panel, simulate_patient

SERIAL_PREFIX: dict[DeviceKind, str] = {
    DeviceKind.SCALE: "SC",
    DeviceKind.BP_CUFF: "BP",
    DeviceKind.PULSE_OXIMETER: "OX",
    DeviceKind.GLUCOMETER: "GL",
}
DEVICE_MODEL: dict[DeviceKind, str] = {
    DeviceKind.SCALE: "SimScale WS-2",
    DeviceKind.BP_CUFF: "SimCuff BP-7",
    DeviceKind.PULSE_OXIMETER: "SimOx PO-3",
    DeviceKind.GLUCOMETER: "SimGluco GM-1",
}
MANUFACTURER = "Vitalgate Simulators"

_GIVEN = ("Ann", "Ben", "Cora", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivan", "Jo", "Kai", "Lena",
          "Milo", "Nia", "Omar", "Pia", "Quinn", "Rosa", "Sam", "Tess", "Uma", "Vic", "Wes", "Yara")
_FAMILY = ("Adams", "Baker", "Chen", "Diaz", "Evans", "Fox", "Garcia", "Hill", "Ito", "Jones",
           "Khan", "Lopez", "Moore", "Nolan", "Ortiz", "Patel", "Reed", "Silva", "Tran", "Wu")


def device_serial(patient_id: str, kind: DeviceKind) -> str:
    """Serial number of the patient's simulated device of ``kind``."""
    return f"{SERIAL_PREFIX[kind]}-{patient_id}"


def hub_id_for(patient_id: str) -> str:
    """Id of the patient's simulated hub."""
    return f"hub-{patient_id}"


def sample_reading_id(serial: str, sample: Sample) -> str:
    """Stable reading id of a fast-path sample: device serial + measured second."""
    return f"{serial}:{int(sample.measured_at.timestamp())}"


@dataclass(frozen=True, slots=True)
class Panel:
    """A simulated practice with its registry and the physiology of its patients."""

    practice: Practice
    patients: tuple[Patient, ...]
    enrollments: tuple[Enrollment, ...]
    profiles: tuple[PatientProfile, ...]
    devices: tuple[Device, ...]
    hubs: tuple[Hub, ...]
    assignments: tuple[DeviceAssignment, ...]
    start: date
    days: int
    seed: int

    def profile(self, patient_id: str) -> PatientProfile:
        """The physiology profile of a patient."""
        for p in self.profiles:
            if p.patient_id == patient_id:
                return p
        raise KeyError(patient_id)

    def samples(self) -> Iterator[Sample]:
        """Every patient's samples over the panel's days, in measured-time order."""
        return simulate_panel(self.profiles, start=self.start, days=self.days, seed=self.seed)

    def patient_samples(self, patient_id: str) -> list[Sample]:
        """One patient's samples, in measured-time order."""
        return simulate_patient(self.profile(patient_id), start=self.start, days=self.days,
                                seed=self.seed)

    def end(self) -> datetime:
        """UTC instant of the latest local midnight ending the simulated days."""
        last = self.start + timedelta(days=self.days)
        return max(datetime.combine(last, time(0), tzinfo=ZoneInfo(p.timezone)).astimezone(UTC)
                   for p in self.profiles)


def build_panel(profiles: Sequence[PatientProfile], *, start: date, days: int, seed: int,
                practice_id: str = "sim-practice", practice_name: str = "Simulated Practice",
                practice_tz: str = "America/New_York") -> Panel:
    """Registry objects for ``profiles``: one hub per patient, one device per kind."""
    practice = Practice(practice_id, practice_name, practice_tz)
    patients: list[Patient] = []
    enrollments: list[Enrollment] = []
    devices: list[Device] = []
    hubs: list[Hub] = []
    assignments: list[DeviceAssignment] = []
    consent = start - timedelta(days=1)
    for i, prof in enumerate(profiles):
        pid = prof.patient_id
        patients.append(Patient(
            pid, practice_id, f"SIM{i + 1:06d}", _GIVEN[i % len(_GIVEN)],
            _FAMILY[(i * 7 + seed) % len(_FAMILY)], date(1940 + (i * 3) % 40, 1 + i % 12,
                                                         1 + i % 28), prof.timezone))
        enrollments.append(Enrollment(pid, practice_id, frozenset({Program.RPM}),
                                      prof.conditions, consent))
        hub = Hub(hub_id_for(pid), practice_id, pid, hub_id_for(pid))
        hubs.append(hub)
        since = datetime.combine(consent, time(0), tzinfo=ZoneInfo(prof.timezone)).astimezone(UTC)
        for kind in prof.device_kinds:
            serial = device_serial(pid, kind)
            devices.append(Device(serial, practice_id, kind, DEVICE_MODEL[kind], MANUFACTURER))
            assignments.append(DeviceAssignment(serial, pid, hub.id, practice_id, since))
    return Panel(practice, tuple(patients), tuple(enrollments), tuple(profiles), tuple(devices),
                 tuple(hubs), tuple(assignments), start, days, seed)


def provision(store: Store, panel: Panel) -> None:
    """Write the panel's practice, patients, enrolments, devices, hubs and
    assignments into ``store`` (idempotent: existing assignments are kept)."""
    store.upsert_practice(panel.practice)
    for patient in panel.patients:
        store.upsert_patient(patient)
    for enrollment in panel.enrollments:
        store.upsert_enrollment(enrollment)
    for device in panel.devices:
        store.upsert_device(device)
    for hub in panel.hubs:
        store.upsert_hub(hub)
    for a in panel.assignments:
        if not any(x.patient_id == a.patient_id and x.start == a.start
                   for x in store.device_assignments(a.device_serial)):
            store.assign_device(a)


def sample_to_reading(sample: Sample, practice_id: str, *,
                      received_at: datetime | None = None) -> Reading:
    """The domain :class:`Reading` of a sample (fast path: no GATT, no edge)."""
    serial = device_serial(sample.patient_id, sample.kind)
    return Reading(
        id=sample_reading_id(serial, sample), practice_id=practice_id,
        patient_id=sample.patient_id, device_serial=serial,
        hub_id=hub_id_for(sample.patient_id), kind=sample.kind,
        measured_at=sample.measured_at, received_at=received_at or sample.measured_at,
        measurements=tuple(Measurement(m, v, v, CANONICAL_UNIT[m])
                           for m, v in sample.values.items()))


def sample_to_wire(sample: Sample, *, received_at: datetime | None = None) -> WireReading:
    """The wire reading of a sample (canonical units, stable id)."""
    serial = device_serial(sample.patient_id, sample.kind)
    return WireReading(
        id=sample_reading_id(serial, sample), measured_at=sample.measured_at,
        clock_offset_s=0.0, received_at=received_at or sample.measured_at,
        values=[WireValue(metric=m, value=v, unit=CANONICAL_UNIT[m])
                for m, v in sample.values.items()])


def wire_batches(samples: Iterable[Sample], *, sent_at: datetime | None = None,
                 received_at: datetime | None = None) -> Iterator[WireReadings]:
    """One ``vitalgate.readings/1`` payload per sample (hub and device from the sample)."""
    for s in samples:
        yield WireReadings(
            schema="vitalgate.readings/1", hub_id=hub_id_for(s.patient_id),
            sent_at=sent_at or received_at or s.measured_at,
            device=WireDevice(serial=device_serial(s.patient_id, s.kind), kind=s.kind,
                              model=DEVICE_MODEL[s.kind], manufacturer=MANUFACTURER),
            readings=[sample_to_wire(s, received_at=received_at)])
