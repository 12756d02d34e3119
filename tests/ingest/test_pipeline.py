"""Pipeline logic with the in-memory FakeSource and a real SQLite store."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from gateway.model import DeviceKind
from gateway.store import open_store
from gateway.store.sqlite import SqliteStore
from gateway.topics import devices_topic, readings_topic, status_topic
from ingest.metrics import IngestMetrics
from ingest.pipeline import QUARANTINE_PAYLOAD_MAX, Pipeline
from ingest.registry import Registry, WeightHistory
from ingest.source import FakeSource
from tests.ingest.helpers import NOW, payload, reading_doc


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def store(tmp_path: Path):
    s = open_store(f"sqlite:///{tmp_path / 's.db'}")
    s.migrate()
    from simulators.loadgen import seed_fleet
    seed_fleet(s, 3, kinds=(DeviceKind.BP_CUFF, DeviceKind.SCALE))
    yield s
    s.close()


def make(store, *, batch_max=100, consumer=None, source=None, clock=None):
    source = source or FakeSource()
    clock = clock or Clock()
    metrics = IngestMetrics()
    p = Pipeline(store, source.ack, registry=Registry(store, clock), weights=WeightHistory(store),
                 metrics=metrics, now=lambda: NOW, consumer=consumer, monotonic=clock,
                 batch_max=batch_max, batch_ms=50)
    source.start(p.handle)
    return p, source, metrics, clock


def pl(*readings, hub="hub-000", serial="bp_cuff-hub-000", kind="bp_cuff", **device):
    return payload(*readings, hub_id=hub, serial=serial, kind=kind, **device)


def test_acks_only_after_commit_then_consumer_in_patient_time_order(store):
    order = []
    source = FakeSource(on_ack=lambda m: order.append(("ack", store.count_readings())))
    p, src, metrics, clock = make(store, source=source,
                                  consumer=lambda rs: order.append(("consume", rs)))
    src.push(readings_topic("hub-001"), pl(reading_doc("b2", measured_at=NOW - timedelta(1)),
                                           hub="hub-001", serial="bp_cuff-hub-001"), NOW)
    src.push(readings_topic("hub-000"), pl(reading_doc("a2")), NOW)
    src.push(readings_topic("hub-000"), pl(reading_doc("a1", measured_at=NOW - timedelta(2))),
             NOW)
    assert src.acked == [] and store.count_readings() == 0
    assert not p.due()
    clock.t += 0.051
    assert p.due()
    res = p.flush()
    assert res.stored == 3
    assert [o[0] for o in order] == ["ack", "ack", "ack", "consume"]
    assert all(n == 3 for kind, n in order[:3])  # every ack saw the committed rows
    assert [r.id for r in order[3][1]] == ["a1", "a2", "b2"]
    assert [m.mid for m in src.acked] == [1, 2, 3]  # receive order
    assert metrics.value("vitalgate_ingest_readings_stored_total") == 3


def test_size_bound_and_duplicates_counted(store):
    p, src, metrics, _ = make(store, batch_max=5)
    for i in range(4):
        src.push(readings_topic("hub-000"), pl(reading_doc(f"r{i}")), NOW)
    assert not p.due()
    src.push(readings_topic("hub-000"), pl(reading_doc("r0")), NOW)  # repeat in batch
    assert p.due()
    res = p.flush()
    assert (res.stored, res.duplicates) == (4, 1)
    src.push(readings_topic("hub-000"), pl(reading_doc("r1"), reading_doc("r9")), NOW)
    p.flush()
    assert store.count_readings() == 5
    assert metrics.value("vitalgate_ingest_readings_duplicate_total") == 2
    assert len(src.acked) == 6


@pytest.mark.parametrize(("raw", "code"), [
    (b"\x00\xffnot json", "not_json"),
    (json.dumps({"schema": "vitalgate.readings/2"}).encode(), "schema_version"),
    (json.dumps({"schema": "vitalgate.readings/1", "hub_id": "hub-000"}).encode(), "schema"),
    (pl().replace(b'"value": 128', b'"value": NaN'), "not_json"),
    (pl(hub="hub-001", serial="bp_cuff-hub-001"), "hub_mismatch"),
])
def test_malformed_payloads_are_quarantined_and_acked(store, raw, code):
    p, src, metrics, _ = make(store)
    src.push(readings_topic("hub-000"), raw, NOW)
    src.push(readings_topic("hub-000"), pl(reading_doc("after")), NOW)
    p.flush()
    (item,) = store.list_quarantine()
    assert item.reason_code == code and item.hub_id == "hub-000"
    assert store.reading_ids() == ["after"]
    assert len(src.acked) == 2
    assert metrics.value("vitalgate_ingest_quarantined_total", reason=code) == 1


def test_oversized_payload_keeps_a_truncated_copy(store):
    p, src, _, _ = make(store)
    big = b'{"schema": "vitalgate.readings/1", "pad": "' + b"x" * 10_000_000 + b'"}'
    src.push(readings_topic("hub-000"), big, NOW)
    p.flush()
    (item,) = store.list_quarantine()
    assert item.reason_code == "too_large"
    assert item.payload_size == len(big)
    assert len(item.payload) == QUARANTINE_PAYLOAD_MAX


def test_bad_reading_quarantined_rest_stored(store):
    p, src, _, _ = make(store)
    bad = reading_doc("bad", [{"metric": "systolic", "value": 400, "unit": "mmHg"}])
    src.push(readings_topic("hub-000"), pl(reading_doc("g1"), bad, reading_doc("g2")), NOW)
    p.flush()
    assert store.reading_ids() == ["g1", "g2"]
    (item,) = store.list_quarantine()
    assert item.reading_id == "bad" and item.reason_code == "implausible"
    assert json.loads(item.payload)["readings"][0]["id"] == "bad"


def test_unknown_topic_and_unknown_hub(store):
    p, src, _, _ = make(store)
    src.push("vitalgate/v1/hubs/hub-000/other", b"{}", NOW)
    src.push(readings_topic("hub-zzz"), pl(hub="hub-zzz"), NOW)
    p.flush()
    codes = sorted(i.reason_code for i in store.list_quarantine())
    assert codes == ["bad_topic", "unknown_hub"]


def test_internal_error_quarantines_the_message_and_continues(store):
    p, src, _metrics, _ = make(store)

    class Boom:
        def hub(self, hub_id):
            if hub_id == "hub-001":
                raise RuntimeError("registry exploded")
            return Registry(store, lambda: 0.0).hub(hub_id)

        def device(self, serial):
            return Registry(store, lambda: 0.0).device(serial)

        def assignments(self, serial):
            return Registry(store, lambda: 0.0).assignments(serial)

    p.registry = Boom()
    src.push(readings_topic("hub-001"), pl(hub="hub-001", serial="bp_cuff-hub-001"), NOW)
    src.push(readings_topic("hub-000"), pl(reading_doc("fine")), NOW)
    p.flush()
    (item,) = store.list_quarantine()
    assert item.reason_code == "internal_error" and "registry exploded" in item.reason
    assert store.reading_ids() == ["fine"]
    assert len(src.acked) == 2


class FlakyStore(SqliteStore):
    """A real SQLite store whose add_readings fails on chosen calls (fault injection)."""

    fail_ids: set[str] = set()
    fail_times = 0

    def add_readings(self, readings, ingested_at):
        if self.fail_times:
            self.fail_times -= 1
            raise OSError("disk on fire")
        if any(r.id in self.fail_ids for r in readings):
            raise ValueError("store refuses this reading")
        return super().add_readings(readings, ingested_at)


@pytest.fixture
def flaky(tmp_path: Path):
    s = FlakyStore(f"sqlite:///{tmp_path / 'f.db'}")
    s.migrate()
    from simulators.loadgen import seed_fleet
    seed_fleet(s, 2)
    yield s
    s.close()


def test_failed_commit_acks_nothing_and_keeps_the_batch(flaky):
    p, src, _, _ = make(flaky)
    flaky.fail_times = 1
    src.push(readings_topic("hub-000"), pl(reading_doc("x1")), NOW)
    with pytest.raises(OSError):
        p.flush()
    assert src.acked == [] and p.pending_messages == 1
    p.flush()
    assert flaky.reading_ids() == ["x1"] and len(src.acked) == 1


def test_isolating_flush_quarantines_only_the_poison_message(flaky):
    p, src, _, _ = make(flaky)
    flaky.fail_ids = {"poison"}
    src.push(readings_topic("hub-000"), pl(reading_doc("a")), NOW)
    src.push(readings_topic("hub-000"), pl(reading_doc("poison")), NOW)
    src.push(readings_topic("hub-000"), pl(reading_doc("b")), NOW)
    with pytest.raises(ValueError):
        p.flush()
    p.flush_isolating()
    assert flaky.reading_ids() == ["a", "b"]
    (item,) = flaky.list_quarantine()
    assert item.reason_code == "internal_error" and "poison" in item.payload
    assert len(src.acked) == 3 and p.pending_messages == 0


def test_status_and_devices_payloads_update_state_tables(store):
    p, src, _, _ = make(store)
    status = {"schema": "vitalgate.status/1", "hub_id": "hub-000", "state": "online",
              "at": NOW.isoformat(), "outbox_depth": 3}
    will = dict(status, state="offline", at=(NOW - timedelta(hours=1)).isoformat())
    devices = {"schema": "vitalgate.devices/1", "hub_id": "hub-000", "at": NOW.isoformat(),
               "devices": [{"serial": "scale-hub-000", "kind": "scale", "battery": 12,
                            "clock_offset_s": 42.0, "firmware": "1.2"}]}
    src.push(status_topic("hub-000"), json.dumps(status), NOW)
    src.push(status_topic("hub-000"), json.dumps(will), NOW)  # older: ignored
    src.push(devices_topic("hub-000"), json.dumps(devices), NOW)
    p.flush()
    st = store.get_hub_status("hub-000")
    assert st is not None and st.state == "online" and st.outbox_depth == 3
    (dev,) = store.list_device_status("hub-000")
    assert (dev.battery, dev.clock_offset_s, dev.firmware) == (12, 42.0, "1.2")
    assert len(src.acked) == 3


def test_readings_update_device_last_seen(store):
    p, src, _, _ = make(store)
    src.push(readings_topic("hub-000"), pl(reading_doc("s1"), battery=55), NOW)
    p.flush()
    (dev,) = store.list_device_status("hub-000")
    assert dev.battery == 55 and dev.last_seen == NOW - timedelta(minutes=1)


def test_registry_cache_invalidation(store):
    clock = Clock()
    reg = Registry(store, clock)
    assert reg.hub("hub-new") is None
    from gateway.model import Hub
    store.upsert_hub(Hub(id="hub-new", practice_id="prac-1"))
    assert reg.hub("hub-new") is None  # negative answer cached
    reg.invalidate(hub_id="hub-new")
    assert reg.hub("hub-new") is not None
    store.upsert_hub(Hub(id="hub-new2", practice_id="prac-1"))
    assert reg.hub("hub-zz") is None
    clock.t += 31
    assert reg.hub("hub-zz") is None and reg.hub("hub-new2") is not None
