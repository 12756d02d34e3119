"""Builders shared by the ingest tests."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.model import Device, DeviceAssignment, DeviceKind, Hub
from gateway.wire import SCHEMA_READINGS, WireReadings, decode_readings

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
ASSIGNED = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class MemRegistry:
    """In-memory RegistryView (validation is pure; the store-backed one is tested apart)."""

    hubs: dict[str, Hub] = field(default_factory=dict)
    devices: dict[str, Device] = field(default_factory=dict)
    assigned: dict[str, list[DeviceAssignment]] = field(default_factory=dict)

    def hub(self, hub_id: str) -> Hub | None:
        return self.hubs.get(hub_id)

    def device(self, serial: str) -> Device | None:
        return self.devices.get(serial)

    def assignments(self, serial: str) -> list[DeviceAssignment]:
        return self.assigned.get(serial, [])


@dataclass
class MemWeights:
    last: dict[str, tuple[datetime, float]] = field(default_factory=dict)

    def previous_weight(self, patient_id: str, before: datetime) -> float | None:
        v = self.last.get(patient_id)
        return v[1] if v and v[0] < before else None

    def note_weight(self, patient_id: str, at: datetime, kg: float) -> None:
        self.last[patient_id] = (at, kg)


def registry(kind: DeviceKind = DeviceKind.BP_CUFF, serial: str = "dev-1",
             hub_id: str = "hub-001", end: datetime | None = None) -> MemRegistry:
    reg = MemRegistry()
    reg.hubs[hub_id] = Hub(id=hub_id, practice_id="prac-1", patient_id="pat-1")
    reg.devices[serial] = Device(serial=serial, practice_id="prac-1", kind=kind)
    reg.assigned[serial] = [DeviceAssignment(serial, "pat-1", hub_id, "prac-1", ASSIGNED, end)]
    return reg


def reading_doc(rid: str = "r1", values: list[dict[str, Any]] | None = None,
                measured_at: datetime | None = NOW - timedelta(minutes=5),
                **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": rid, "received_at": (NOW - timedelta(minutes=1)).isoformat(),
        "values": values if values is not None else [
            {"metric": "systolic", "value": 128, "unit": "mmHg"},
            {"metric": "diastolic", "value": 82, "unit": "mmHg"},
            {"metric": "pulse", "value": 70, "unit": "/min"}],
    }
    if measured_at is not None:
        doc["measured_at"] = measured_at.isoformat()
    doc.update(extra)
    return doc


def payload(*readings: dict[str, Any], hub_id: str = "hub-001", serial: str = "dev-1",
            kind: str = "bp_cuff", **device: Any) -> bytes:
    doc = {"schema": SCHEMA_READINGS, "hub_id": hub_id,
           "device": {"serial": serial, "kind": kind, **device},
           "readings": list(readings) or [reading_doc()]}
    return json.dumps(doc).encode()


def wire(*readings: dict[str, Any], **kw: Any) -> WireReadings:
    batch = decode_readings(payload(*readings, **kw))
    assert isinstance(batch, WireReadings), batch
    return batch
