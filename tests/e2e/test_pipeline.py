"""End to end: hub -> Mosquitto (shipped config) -> ingest -> rules -> escalation row.

The gateway runs as ``vitalgate up`` wires it (``gateway.process.Gateway``)
against a private Mosquitto and a fresh PostgreSQL database; a hub publishes
like the edge agent does (QoS 1, its own credentials, its own topic).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest

from gateway.model import (
    Condition,
    Device,
    DeviceAssignment,
    DeviceKind,
    Enrollment,
    Hub,
    Patient,
    Practice,
    Program,
)
from gateway.process import Gateway
from gateway.settings import load_settings
from gateway.store import Store, open_store
from gateway.topics import readings_topic
from gateway.units import Metric, lb_to_kg
from gateway.wire import SCHEMA_READINGS
from simulators.loadgen import WindowedPublisher
from tests.support.mosquitto import Mosquitto

pytestmark = pytest.mark.services


def provision(store: Store, hub_id: str = "hub-e2e", tz: str = "America/New_York") -> None:
    store.upsert_practice(Practice("prac", "E2E practice", tz))
    store.upsert_patient(Patient("pat", "prac", "MRN-0001", "Ann", "Lee", None, tz))
    store.upsert_enrollment(Enrollment("pat", "prac", frozenset({Program.RPM}),
                                       frozenset({Condition.CHF}), date(2025, 1, 1)))
    store.upsert_hub(Hub(hub_id, "prac", "pat", hub_id))
    store.upsert_device(Device("SCALE-1", "prac", DeviceKind.SCALE, "UC-352BLE", "A&D"))
    store.assign_device(DeviceAssignment("SCALE-1", "pat", hub_id, "prac",
                                         datetime(2025, 1, 1, tzinfo=UTC)))


def weight_payload(hub_id: str, rid: str, at: datetime, lb: float) -> bytes:
    return json.dumps({
        "schema": SCHEMA_READINGS, "hub_id": hub_id,
        "device": {"serial": "SCALE-1", "kind": "scale"},
        "readings": [{"id": rid, "measured_at": at.isoformat(), "device_time": None,
                      "received_at": at.isoformat(),
                      "values": [{"metric": "weight", "value": lb, "unit": "lb"}]}],
    }).encode()


@pytest.fixture
def gateway(mosquitto: Mosquitto, pg_db: str) -> Iterator[Gateway]:
    store = open_store(pg_db)
    store.migrate()
    provision(store)
    user, password = mosquitto.service_credentials
    settings = load_settings(database_url=pg_db, broker_url=mosquitto.url(user, password),
                             mqtt_client_id="vitalgate-e2e")
    gw = Gateway(settings, store=store)
    gw.start()
    try:
        yield gw
    finally:
        gw.stop()
        store.close()


def wait_for(predicate, timeout: float = 20.0, step: float = 0.02):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("condition not met in time")


def test_chf_overnight_gain_opens_one_escalation(gateway: Gateway, mosquitto: Mosquitto,
                                                  record_property) -> None:  # type: ignore[no-untyped-def]
    store = gateway.store
    user, password = mosquitto.add_hub_user("hub-e2e")
    now = datetime.now(UTC)
    yesterday = now - timedelta(days=1)
    topic = readings_topic("hub-e2e")
    with WindowedPublisher(mosquitto.host, mosquitto.port, client_id="hub-e2e",
                           username=user, password=password) as hub:
        hub.publish(topic, weight_payload("hub-e2e", "w-day1", yesterday, 184.0))
        hub.flush()
        wait_for(lambda: store.count_readings() == 1)
        published = time.monotonic()
        hub.publish(topic, weight_payload("hub-e2e", "w-day2", now, 186.4))
        hub.flush()
        [esc] = wait_for(lambda: store.list_escalations("prac", rule_id="chf.weight_gain_24h"))
        latency = time.monotonic() - published
        # the hub re-sends the same reading (e.g. after a reconnect): still one escalation
        hub.publish(topic, weight_payload("hub-e2e", "w-day2", now, 186.4))
        hub.flush()
    wait_for(lambda: gateway.metrics.value("vitalgate_ingest_readings_duplicate_total") >= 1)
    escs = store.list_escalations("prac", rule_id="chf.weight_gain_24h")
    assert len(escs) == 1 and escs[0].id == esc.id
    assert escs[0].trigger_count == 1
    assert "up 2.4 lb" in esc.summary and "threshold 2.0 lb / 24 h" in esc.summary
    assert store.count_readings() == 2
    assert {r["id"] for r in esc.evidence[0]["readings"]} == {"w-day1", "w-day2"}
    assert abs((store.get_readings("pat")[-1].value(Metric.WEIGHT) or 0) - lb_to_kg(186.4)) < 1e-9
    # the rules runtime checkpointed what it evaluated (so a restart does not redo it all)
    checkpoint = store.rules_checkpoint("rules")
    assert checkpoint is not None and checkpoint >= now - timedelta(minutes=5)
    record_property("publish_to_escalation_s", round(latency, 4))
    print(f"publish-to-escalation latency: {latency * 1000:.1f} ms")
