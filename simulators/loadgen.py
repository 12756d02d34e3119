"""Load publishing for tests and benchmarks: simulated hubs over real MQTT.

(The publisher itself is :class:`simulators.fleet.WindowedPublisher`; this
module adds the host/port form, a fleet registered in a store, and payloads.)

:class:`WindowedPublisher` publishes QoS 1 with a bounded window of
unacknowledged messages (DESIGN.md: paho stalls beyond 65,535 in flight and
``mosquitto_pub -l`` is unusable at QoS 1; a window of about 100 gives
~10k msg/s).  :func:`seed_fleet` registers practice, patients, hubs and
devices in a store; :func:`readings_payload` builds ``vitalgate.readings/1``
payloads for them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.model import Device, DeviceAssignment, DeviceKind, Hub, Patient, Practice
from gateway.store import Store
from gateway.topics import readings_topic
from gateway.wire import SCHEMA_READINGS
from simulators.fleet import FleetError
from simulators.fleet import WindowedPublisher as FleetPublisher

#: Default publish window (unacknowledged QoS 1 messages per client).
WINDOW = 100


class PublishError(RuntimeError):
    """The broker did not accept the publishes in time (or refused the login)."""


class WindowedPublisher(FleetPublisher):
    """:class:`simulators.fleet.WindowedPublisher` addressed by host and port.

    Connects at once (the tests' and benchmarks' form); ``flush`` raises
    :class:`PublishError` when acknowledgements do not come in time.
    """

    def __init__(self, host: str, port: int, *, client_id: str, username: str | None = None,
                 password: str | None = None, window: int = WINDOW,
                 mqtt5: bool = False, connect_timeout: float = 10.0) -> None:
        super().__init__(f"mqtt://{host}:{port}", client_id=client_id, window=window,
                         username=username, password=password, mqtt5=mqtt5)
        try:
            self.connect(timeout_s=connect_timeout)
        except FleetError as exc:
            raise PublishError(f"could not connect to {host}:{port} as {username!r}: "
                               f"{exc}") from None

    def __enter__(self) -> WindowedPublisher:
        return self  # already connected

    def flush(self, timeout: float = 60.0) -> None:
        """Wait until every publish has been acknowledged by the broker."""
        if not self.drain(timeout):
            raise PublishError(f"{self.in_flight} publishes unacknowledged after {timeout} s")

    @property
    def refused(self) -> int:
        """Publishes the broker refused (MQTT 5 reason codes)."""
        return self.stats.payloads_rejected


@dataclass(frozen=True, slots=True)
class SimHub:
    """A seeded hub with one device of each kind listed."""

    hub_id: str
    patient_id: str
    practice_id: str
    devices: dict[DeviceKind, str]  # kind -> serial


def seed_fleet(store: Store, n_hubs: int, *, practice_id: str = "prac-1",
               kinds: Sequence[DeviceKind] = (DeviceKind.BP_CUFF,),
               since: datetime | None = None, prefix: str = "hub") -> list[SimHub]:
    """Register ``n_hubs`` hubs (ids ``{prefix}-000``...) with patients and devices."""
    since = since or datetime(2020, 1, 1, tzinfo=UTC)
    store.upsert_practice(Practice(id=practice_id, name="Test practice",
                                   timezone="America/New_York"))
    out = []
    for i in range(n_hubs):
        hub_id = f"{prefix}-{i:03d}"
        patient_id = f"pat-{prefix}-{i:03d}"
        store.upsert_patient(Patient(id=patient_id, practice_id=practice_id,
                                     mrn=f"MRN{prefix}{i:05d}", given_name="Test",
                                     family_name=f"Patient{i}", birth_date=None,
                                     timezone="America/New_York"))
        store.upsert_hub(Hub(id=hub_id, practice_id=practice_id, patient_id=patient_id,
                             mqtt_username=hub_id))
        devices = {}
        for kind in kinds:
            serial = f"{kind.value}-{prefix}-{i:03d}"
            store.upsert_device(Device(serial=serial, practice_id=practice_id, kind=kind))
            store.assign_device(DeviceAssignment(device_serial=serial, patient_id=patient_id,
                                                 hub_id=hub_id, practice_id=practice_id,
                                                 start=since))
            devices[kind] = serial
        out.append(SimHub(hub_id, patient_id, practice_id, devices))
    return out


_VALUES: dict[DeviceKind, list[tuple[str, float, str]]] = {
    DeviceKind.BP_CUFF: [("systolic", 128, "mmHg"), ("diastolic", 82, "mmHg"),
                         ("pulse", 70, "/min")],
    DeviceKind.SCALE: [("weight", 81.5, "kg")],
    DeviceKind.PULSE_OXIMETER: [("spo2", 96, "%"), ("pulse", 72, "/min")],
    DeviceKind.GLUCOMETER: [("glucose", 110, "mg/dL")],
}


def readings_payload(hub: SimHub, kind: DeviceKind, ids: Sequence[str], *,
                     measured_at: datetime | None = None,
                     received_at: datetime | None = None) -> bytes:
    """A ``vitalgate.readings/1`` payload with one plausible reading per id."""
    received = received_at or datetime.now(UTC)
    measured = measured_at or received
    readings = []
    for k, rid in enumerate(ids):
        at = measured - timedelta(seconds=len(ids) - k)
        readings.append({
            "id": rid, "measured_at": at.isoformat(), "received_at": received.isoformat(),
            "values": [{"metric": m, "value": v, "unit": u} for m, v, u in _VALUES[kind]],
        })
    doc = {"schema": SCHEMA_READINGS, "hub_id": hub.hub_id,
           "device": {"serial": hub.devices[kind], "kind": kind.value},
           "readings": readings}
    return json.dumps(doc, separators=(",", ":")).encode()


def publish_readings(pub: WindowedPublisher, hub: SimHub, kind: DeviceKind,
                     ids: Sequence[str], **kw: Any) -> None:
    """Publish one payload of readings for ``hub``."""
    pub.publish(readings_topic(hub.hub_id), readings_payload(hub, kind, ids, **kw))
