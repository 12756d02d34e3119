"""End to end against the real Mosquitto (shipped config) and PostgreSQL / SQLite.

Simulated hubs publish at QoS 1 through the broker; ingest commits, then
acknowledges.  Every test compares the exact set of stored reading ids.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.model import DeviceKind
from gateway.settings import Settings
from gateway.store import Store, open_store
from gateway.topics import readings_topic
from ingest.service import IngestService
from simulators.loadgen import SimHub, WindowedPublisher, readings_payload, seed_fleet

pytestmark = pytest.mark.services
ROOT = Path(__file__).resolve().parents[2]


def wait_count(store: Store, n: int, timeout: float = 60.0) -> int:
    deadline = time.monotonic() + timeout
    count = store.count_readings()
    while count < n and time.monotonic() < deadline:
        time.sleep(0.1)
        count = store.count_readings()
    return count


def plan(hubs: list[SimHub], total: int) -> dict[str, list[list[str]]]:
    """Per hub, payloads of 1-4 reading ids; ``total`` ids overall."""
    out: dict[str, list[list[str]]] = {h.hub_id: [] for h in hubs}
    n = 0
    i = 0
    while n < total:
        h = hubs[i % len(hubs)]
        size = min(1 + i % 4, total - n)
        out[h.hub_id].append([f"{h.hub_id}-r{n + k:06d}" for k in range(size)])
        n += size
        i += 1
    return out


def publish_all(broker, hubs: list[SimHub], payloads: dict[str, list[list[str]]],
                pace: float = 0.0) -> None:
    """One publisher thread per hub, QoS 1 with a window; waits for every PUBACK."""
    errors: list[BaseException] = []
    broker.add_hub_users([h.hub_id for h in hubs])

    def run(hub: SimHub) -> None:
        try:
            user, password = broker.add_hub_user(hub.hub_id)
            with WindowedPublisher(broker.host, broker.port, client_id=hub.hub_id,
                                   username=user, password=password) as pub:
                for ids in payloads[hub.hub_id]:
                    pub.publish(readings_topic(hub.hub_id),
                                readings_payload(hub, DeviceKind.BP_CUFF, ids))
                    if pace:
                        time.sleep(pace)
                pub.flush()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(h,)) for h in hubs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def settings_for(broker, db_url: str, tmp_path: Path, **kw) -> Settings:
    return Settings(broker_url=broker.url(), database_url=db_url, data_dir=tmp_path,
                    mqtt_client_id="vitalgate-ingest-test", **kw)


@pytest.fixture(params=["postgres", "sqlite"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ingest.db'}"
    else:
        yield request.getfixturevalue("pg_db")


@pytest.mark.slow
def test_10000_readings_land_exactly_once(mosquitto, db_url, tmp_path):
    store = open_store(db_url)
    store.migrate()
    hubs = seed_fleet(store, 10)
    mosquitto.add_hub_users([h.hub_id for h in hubs])
    payloads = plan(hubs, 10_000)
    expected = sorted(i for p in payloads.values() for ids in p for i in ids)
    consumed: list[str] = []
    svc = IngestService(settings_for(mosquitto, db_url, tmp_path), store=store,
                        consumer=lambda rs: consumed.extend(r.id for r in rs))
    svc.start()
    try:
        publish_all(mosquitto, hubs, payloads)
        # publish the first 1,000 again: the store must count them as duplicates
        publish_all(mosquitto, hubs[:1], {hubs[0].hub_id: payloads[hubs[0].hub_id][:300]})
        assert wait_count(store, 10_000) == 10_000
        dups = sum(len(ids) for ids in payloads[hubs[0].hub_id][:300])
        deadline = time.monotonic() + 20
        while (svc.metrics.value("vitalgate_ingest_readings_duplicate_total") < dups
               and time.monotonic() < deadline):
            time.sleep(0.1)
    finally:
        svc.stop()
    assert store.reading_ids() == expected
    assert sorted(consumed) == expected
    assert svc.metrics.value("vitalgate_ingest_readings_duplicate_total") == dups
    assert store.list_quarantine() == []
    store.close()


def spawn_ingest(broker, db_url: str, tmp_path: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), VITALGATE_DATABASE_URL=db_url,
               VITALGATE_BROKER_URL=broker.url(), VITALGATE_DATA_DIR=str(tmp_path),
               VITALGATE_MQTT_CLIENT_ID="vitalgate-ingest-kill", VITALGATE_INGEST_BATCH_MS="20")
    log = open(tmp_path / "ingest.log", "ab")
    return subprocess.Popen([sys.executable, "-m", "gateway.cli", "ingest"], env=env,
                            stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)


def wait_subscribed(store: Store, broker, proc) -> None:
    deadline = time.monotonic() + 20
    log = Path(broker.workdir / "mosquitto.log")
    while time.monotonic() < deadline:
        if "as vitalgate-ingest-kill" in log.read_text(errors="replace"):
            return
        assert proc.poll() is None, "ingest exited early"
        time.sleep(0.05)
    raise AssertionError("ingest did not connect")


@pytest.mark.slow
def test_sigkill_twice_mid_stream_still_exactly_once(mosquitto, pg_db, tmp_path):
    store = open_store(pg_db)
    store.migrate()
    hubs = seed_fleet(store, 10)
    mosquitto.add_hub_users([h.hub_id for h in hubs])
    payloads = plan(hubs, 10_000)
    expected = sorted(i for p in payloads.values() for ids in p for i in ids)
    # create the persistent session first so nothing is published before it exists
    proc = spawn_ingest(mosquitto, pg_db, tmp_path)
    wait_subscribed(store, mosquitto, proc)
    publisher = threading.Thread(target=publish_all, args=(mosquitto, hubs, payloads, 0.004))
    publisher.start()
    kills = 0
    for threshold in (2_000, 5_000):
        while store.count_readings() < threshold:
            assert proc.poll() is None, (tmp_path / "ingest.log").read_text()[-3000:]
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        time.sleep(0.5)  # readings keep arriving at the broker while ingest is down
        proc = spawn_ingest(mosquitto, pg_db, tmp_path)
    publisher.join()
    try:
        assert wait_count(store, 10_000, timeout=60) == 10_000
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    ids = store.reading_ids()
    assert kills == 2
    assert len(ids) == len(set(ids)) == 10_000
    assert ids == expected
    store.close()


def test_readings_published_while_ingest_is_down_arrive_after_restart(mosquitto, tmp_path):
    url = f"sqlite:///{tmp_path / 'down.db'}"
    store = open_store(url)
    store.migrate()
    hubs = seed_fleet(store, 2)
    settings = settings_for(mosquitto, url, tmp_path)
    svc = IngestService(settings, store=store)
    svc.start()
    svc.stop()  # graceful: the persistent session stays at the broker
    payloads = plan(hubs, 600)
    publish_all(mosquitto, hubs, payloads)
    mosquitto.restart()  # even across a broker restart
    svc = IngestService(settings, store=store)
    svc.start()
    try:
        assert wait_count(store, 600) == 600
    finally:
        svc.stop()
    store.close()


def test_malformed_payloads_are_quarantined_and_later_readings_land(mosquitto, pg_store,
                                                                    tmp_path):
    hubs = seed_fleet(pg_store, 1)
    hub = hubs[0]
    good = json.loads(readings_payload(hub, DeviceKind.BP_CUFF, ["x"]))

    def variant(**change) -> bytes:
        doc = json.loads(json.dumps(good))
        doc.update(change)
        return json.dumps(doc).encode()

    missing = json.loads(json.dumps(good))
    del missing["readings"][0]["received_at"]
    nan = json.dumps(good).replace('"value": 128', '"value": NaN').replace(
        '"value":128', '"value":NaN').encode()
    assert b"NaN" in nan
    bad = {
        "not_json": b"{this is not json",
        "schema_version": variant(schema="vitalgate.readings/0"),
        "schema": json.dumps(missing).encode(),
        "nan": nan,
        "too_large": b'{"pad":"' + b"y" * 10_000_000 + b'"}',
    }
    svc = IngestService(settings_for(mosquitto, pg_store.url, tmp_path), store=pg_store)
    svc.start()
    try:
        user, password = mosquitto.add_hub_user(hub.hub_id)
        with WindowedPublisher(mosquitto.host, mosquitto.port, client_id=hub.hub_id,
                               username=user, password=password) as pub:
            for i, payload in enumerate(bad.values()):
                pub.publish(readings_topic(hub.hub_id), payload)
                pub.publish(readings_topic(hub.hub_id),
                            readings_payload(hub, DeviceKind.BP_CUFF, [f"after-{i}"]))
            pub.flush()
        # a hub with broker credentials but not in the registry
        u2, p2 = mosquitto.add_hub_user("hub-999")
        ghost = SimHub("hub-999", "pat-x", "prac-1", {DeviceKind.BP_CUFF: "ghost-1"})
        with WindowedPublisher(mosquitto.host, mosquitto.port, client_id="hub-999",
                               username=u2, password=p2) as pub:
            pub.publish(readings_topic("hub-999"),
                        readings_payload(ghost, DeviceKind.BP_CUFF, ["ghost-r"]))
            pub.flush()
        with WindowedPublisher(mosquitto.host, mosquitto.port, client_id=hub.hub_id,
                               username=user, password=password) as pub:
            pub.publish(readings_topic(hub.hub_id),
                        readings_payload(hub, DeviceKind.BP_CUFF, ["last"]))
            pub.flush()
        assert wait_count(pg_store, len(bad) + 1, timeout=30) == len(bad) + 1
        deadline = time.monotonic() + 10
        while len(pg_store.list_quarantine()) < len(bad) + 1 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        svc.stop()
    codes = sorted(i.reason_code for i in pg_store.list_quarantine())
    assert codes == sorted(["not_json", "schema_version", "schema", "not_json", "too_large",
                            "unknown_hub"])
    big = next(i for i in pg_store.list_quarantine() if i.reason_code == "too_large")
    assert big.payload_size > 10_000_000 and len(big.payload) == 64 * 1024
    assert sorted(pg_store.reading_ids()) == sorted(
        [f"after-{i}" for i in range(len(bad))] + ["last"])


def test_metrics_render(mosquitto, tmp_path):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    store = open_store(url)
    store.migrate()
    (hub,) = seed_fleet(store, 1)
    svc = IngestService(settings_for(mosquitto, url, tmp_path), store=store)
    svc.start()
    try:
        publish_all(mosquitto, [hub], {hub.hub_id: [["m1", "m2"]]})
        assert wait_count(store, 2) == 2
        time.sleep(0.1)
    finally:
        svc.stop()
    text = svc.metrics.render().decode()
    assert "vitalgate_ingest_readings_stored_total 2.0" in text
    assert "vitalgate_ingest_commit_seconds_count" in text
    lag = svc.metrics.value("vitalgate_ingest_lag_seconds_sum")
    assert math.isfinite(lag) and lag >= 0
    assert datetime.now(UTC) - timedelta(minutes=1) < datetime.now(UTC)
    store.close()


class NoAckSource:
    """Wraps the real paho source but never acknowledges: a crash between commit and ack."""

    def __init__(self, inner):
        self.inner = inner

    def start(self, deliver):
        self.inner.start(deliver)

    def ack(self, msg):
        pass

    def pause(self):
        self.inner.pause()

    def stop(self):
        self.inner.stop()


def test_committed_but_unacknowledged_messages_are_redelivered_and_deduped(mosquitto,
                                                                           tmp_path):
    from ingest.service import source_from_settings

    url = f"sqlite:///{tmp_path / 'noack.db'}"
    store = open_store(url)
    store.migrate()
    hubs = seed_fleet(store, 2)
    settings = settings_for(mosquitto, url, tmp_path)
    first = IngestService(settings, store=store, source=NoAckSource(source_from_settings(settings)))
    first.start()
    first.source.inner.wait_connected(10)
    payloads = plan(hubs, 500)
    publish_all(mosquitto, hubs, payloads)
    assert wait_count(store, 500) == 500
    time.sleep(0.2)
    first.stop()
    assert first.metrics.value("vitalgate_ingest_readings_duplicate_total") == 0
    second = IngestService(settings, store=store)
    second.start()
    try:
        deadline = time.monotonic() + 20
        while (second.metrics.value("vitalgate_ingest_readings_duplicate_total") < 500
               and time.monotonic() < deadline):
            time.sleep(0.1)
    finally:
        second.stop()
    assert second.metrics.value("vitalgate_ingest_readings_duplicate_total") == 500
    assert second.metrics.value("vitalgate_ingest_readings_stored_total") == 0
    assert store.count_readings() == 500
    store.close()


def test_two_workers_on_a_shared_subscription_store_each_reading_once(mosquitto, tmp_path):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    store = open_store(url)
    store.migrate()
    hubs = seed_fleet(store, 4)
    workers = []
    for i in range(2):
        settings = Settings(broker_url=mosquitto.url(), database_url=url, data_dir=tmp_path,
                            mqtt_client_id=f"vitalgate-ingest-{i}", mqtt_share_group="vitalgate")
        svc = IngestService(settings, store=store)
        svc.start()
        workers.append(svc)
    try:
        payloads = plan(hubs, 2000)
        publish_all(mosquitto, hubs, payloads)
        assert wait_count(store, 2000) == 2000
    finally:
        for svc in workers:
            svc.stop()
    per_worker = [w.metrics.value("vitalgate_ingest_readings_received_total") for w in workers]
    assert sum(per_worker) == 2000 and all(n > 0 for n in per_worker)
    assert len(set(store.reading_ids())) == 2000
    store.close()


def test_retained_status_and_last_will_reach_hub_status(mosquitto, tmp_path):
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from gateway.topics import status_topic

    url = f"sqlite:///{tmp_path / 'status.db'}"
    store = open_store(url)
    store.migrate()
    (hub,) = seed_fleet(store, 1)
    user, password = mosquitto.add_hub_user(hub.hub_id)
    online = json.dumps({"schema": "vitalgate.status/1", "hub_id": hub.hub_id,
                         "state": "online", "at": datetime.now(UTC).isoformat()})
    offline = json.dumps({"schema": "vitalgate.status/1", "hub_id": hub.hub_id,
                          "state": "offline",
                          "at": (datetime.now(UTC) + timedelta(seconds=1)).isoformat()})
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=hub.hub_id)
    client.username_pw_set(user, password)
    client.will_set(status_topic(hub.hub_id), offline, qos=1, retain=True)
    client.connect(mosquitto.host, mosquitto.port)
    client.loop_start()
    client.publish(status_topic(hub.hub_id), online, qos=1, retain=True).wait_for_publish(5)
    # ingest starts later: the retained status is delivered on subscribe
    svc = IngestService(settings_for(mosquitto, url, tmp_path), store=store)
    svc.start()
    try:
        deadline = time.monotonic() + 10
        while store.get_hub_status(hub.hub_id) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        status = store.get_hub_status(hub.hub_id)
        assert status is not None and status.state == "online"
        client._sock_close()  # die without DISCONNECT: the broker publishes the will
        client.loop_stop()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status = store.get_hub_status(hub.hub_id)
            if status is not None and status.state == "offline":
                break
            time.sleep(0.1)
        assert status is not None and status.state == "offline"
    finally:
        svc.stop()
    store.close()
