"""Fault tests: the server side keeps every reading through infrastructure failures.

Each test streams readings through the real broker into the real database,
breaks something mid-stream, and then checks that every reading id is stored
exactly once and nothing went to quarantine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from gateway.model import DeviceKind
from gateway.process import Gateway
from gateway.settings import load_settings
from gateway.store import Store, open_store
from simulators.loadgen import SimHub, WindowedPublisher, publish_readings, seed_fleet
from tests.support.mosquitto import Mosquitto
from tests.support.services import require_service

pytestmark = [pytest.mark.services, pytest.mark.slow]

N_HUBS = 3
PER_HUB = 1000


def _cluster() -> tuple[str, str] | None:
    if shutil.which("pg_ctlcluster") is None or not os.path.isdir("/etc/postgresql"):
        return None
    versions = sorted(os.listdir("/etc/postgresql"))
    return (versions[-1], "main") if versions else None


def _publish(broker: Mosquitto, hubs: list[SimHub], creds: dict[str, str],
             errors: list[BaseException]) -> None:
    def run(hub: SimHub) -> None:
        try:
            with WindowedPublisher(broker.host, broker.port, client_id=f"pub-{hub.hub_id}",
                                   username=hub.hub_id, password=creds[hub.hub_id]) as pub:
                now = datetime.now(UTC)
                for i in range(PER_HUB):
                    publish_readings(pub, hub, DeviceKind.BP_CUFF, [f"{hub.hub_id}-{i}"],
                                     measured_at=now, received_at=now)
                    if i % 50 == 0:
                        time.sleep(0.01)  # a steady stream, not one burst
                pub.flush(120)
        except BaseException as exc:  # reported to the test thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(h,)) for h in hubs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


@pytest.fixture
def running(mosquitto: Mosquitto, pg_db: str) -> Iterator[tuple[Gateway, Store, list[SimHub]]]:
    store = open_store(pg_db)
    store.migrate()
    hubs = seed_fleet(store, N_HUBS, prefix="f")
    user, password = mosquitto.service_credentials
    gw = Gateway(load_settings(database_url=pg_db, broker_url=mosquitto.url(user, password),
                               mqtt_client_id="vitalgate-faults"), store=store)
    gw.start()
    try:
        yield gw, store, hubs
    finally:
        gw.stop()
        store.close()


def _expected(hubs: list[SimHub]) -> list[str]:
    return sorted(f"{h.hub_id}-{i}" for h in hubs for i in range(PER_HUB))


def _wait_count(store: Store, n: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if store.count_readings() >= n:
                return
        except Exception:  # the database may be restarting
            pass
        time.sleep(0.1)


def test_postgres_restart_mid_stream_loses_nothing(
        running: tuple[Gateway, Store, list[SimHub]], mosquitto: Mosquitto) -> None:
    cluster = _cluster()
    if cluster is None or os.geteuid() != 0:
        require_service("pg_ctlcluster", "restarting PostgreSQL needs root and pg_ctlcluster")
    assert cluster is not None
    _gw, store, hubs = running
    creds = mosquitto.add_hub_users([h.hub_id for h in hubs])
    errors: list[BaseException] = []
    pub = threading.Thread(target=_publish, args=(mosquitto, hubs, creds, errors))
    pub.start()
    _wait_count(store, 600, 60)
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", *cluster, "restart",
                    "-m", "fast"], check=True, capture_output=True, timeout=60)
    pub.join(180)
    assert not errors, errors
    _wait_count(store, N_HUBS * PER_HUB, 90)
    assert store.reading_ids() == _expected(hubs)
    assert store.list_quarantine() == []


def test_mosquitto_restart_mid_stream_loses_nothing(
        running: tuple[Gateway, Store, list[SimHub]], mosquitto: Mosquitto) -> None:
    gw, store, hubs = running
    creds = mosquitto.add_hub_users([h.hub_id for h in hubs])
    errors: list[BaseException] = []
    first = hubs[:1]
    _publish(mosquitto, first, creds, errors)  # one hub's readings acknowledged by the broker
    assert not errors
    mosquitto.stop()  # persistence saved; ingest loses its connection
    time.sleep(1.0)
    mosquitto.start()
    _publish(mosquitto, hubs[1:], creds, errors)
    assert not errors
    _wait_count(store, N_HUBS * PER_HUB, 90)
    assert store.reading_ids() == _expected(hubs)
    # the counter is bumped just after the commit: give it a moment to catch up
    deadline = time.monotonic() + 10
    while gw.metrics.value("vitalgate_ingest_readings_stored_total") < N_HUBS * PER_HUB and \
            time.monotonic() < deadline:
        time.sleep(0.05)
    assert gw.metrics.value("vitalgate_ingest_readings_stored_total") == N_HUBS * PER_HUB


def _start_worker(db_url: str, broker_url: str, log_path: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "VITALGATE_DATABASE_URL": db_url, "VITALGATE_BROKER_URL": broker_url,
           "VITALGATE_MQTT_CLIENT_ID": "vitalgate-worker"}
    log = open(log_path, "ab")
    proc = subprocess.Popen([os.sys.executable, "-m", "gateway.cli", "up", "--no-api"],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with open(log_path, "rb") as f:
            if f.read().count(b"worker running") > getattr(_start_worker, "seen", 0):
                _start_worker.seen = getattr(_start_worker, "seen", 0) + 1  # type: ignore[attr-defined]
                return proc
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise AssertionError(open(log_path, errors="replace").read()[-3000:])


def test_worker_killed_twice_keeps_readings_and_escalations_exactly_once(
        mosquitto: Mosquitto, pg_db: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json
    import signal

    from gateway.model import Condition, Enrollment, Program
    from gateway.wire import SCHEMA_READINGS

    store = open_store(pg_db)
    store.migrate()
    hubs = seed_fleet(store, N_HUBS, prefix="k", kinds=(DeviceKind.BP_CUFF,))
    for h in hubs:
        store.upsert_enrollment(Enrollment(h.patient_id, h.practice_id,
                                           frozenset({Program.RPM}), frozenset({Condition.HTN}),
                                           None))
    creds = mosquitto.add_hub_users([h.hub_id for h in hubs])
    user, password = mosquitto.service_credentials
    url = mosquitto.url(user, password)
    _start_worker.seen = 0  # type: ignore[attr-defined]
    log_path = str(tmp_path / "worker.log")
    worker = _start_worker(pg_db, url, log_path)
    total = 600
    try:
        def severe(hub: SimHub, i: int) -> bytes:  # every 100th reading is 190/95: bp.severe
            now = datetime.now(UTC).isoformat()
            sys_ = 190 if i % 100 == 0 else 128
            return json.dumps({"schema": SCHEMA_READINGS, "hub_id": hub.hub_id,
                               "device": {"serial": hub.devices[DeviceKind.BP_CUFF],
                                          "kind": "bp_cuff"},
                               "readings": [{"id": f"{hub.hub_id}-{i}", "measured_at": now,
                                             "received_at": now, "values": [
                                                 {"metric": "systolic", "value": sys_,
                                                  "unit": "mmHg"},
                                                 {"metric": "diastolic", "value": 95,
                                                  "unit": "mmHg"}]}]}).encode()

        pubs = [WindowedPublisher(mosquitto.host, mosquitto.port, client_id=f"p-{h.hub_id}",
                                  username=h.hub_id, password=creds[h.hub_id]) for h in hubs]
        for i in range(total):
            for h, p in zip(hubs, pubs, strict=True):
                p.publish(f"vitalgate/v1/hubs/{h.hub_id}/readings", severe(h, i))
            if i in (200, 400):  # kill -9 mid-stream, restart
                worker.send_signal(signal.SIGKILL)
                worker.wait(10)
                worker = _start_worker(pg_db, url, log_path)
        for p in pubs:
            p.flush(60)
            p.close()
        _wait_count(store, N_HUBS * total, 90)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            escs = store.list_escalations(hubs[0].practice_id, rule_id="bp.severe")
            if len(escs) == N_HUBS and all(e.trigger_count == total // 100 for e in escs):
                break
            time.sleep(0.2)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
    assert store.count_readings() == N_HUBS * total
    assert len(set(store.reading_ids())) == N_HUBS * total
    escs = store.list_escalations(hubs[0].practice_id, rule_id="bp.severe")
    # one escalation per patient; each severe reading applied exactly once
    assert len(escs) == N_HUBS
    assert sorted(e.trigger_count for e in escs) == [total // 100] * N_HUBS
    store.close()


def test_hub_offline_72h_then_drains_exactly_once_with_late_flag(
        mosquitto: Mosquitto, pg_db: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A hub collects 72 h of readings while offline, then drains through the broker."""
    import asyncio
    from datetime import timedelta

    from edge_agent.outbox import Outbox, QueuedReading
    from edge_agent.publisher import BrokerSettings, Publisher
    from gateway.model import Condition, Enrollment, Program
    from gateway.units import Metric, Unit
    from gateway.wire import WireDevice, WireReading, WireValue
    from tests.edge_agent.test_publisher import until

    store = open_store(pg_db)
    store.migrate()
    [hub] = seed_fleet(store, 1, prefix="off", kinds=(DeviceKind.BP_CUFF,))
    store.upsert_enrollment(Enrollment(hub.patient_id, hub.practice_id,
                                       frozenset({Program.RPM}), frozenset({Condition.HTN}),
                                       None))
    user, password = mosquitto.service_credentials
    gw = Gateway(load_settings(database_url=pg_db, broker_url=mosquitto.url(user, password),
                               mqtt_client_id="vitalgate-offline"), store=store)
    gw.start()
    now = datetime.now(UTC)
    box = Outbox(tmp_path / "outbox.db")
    device = WireDevice(serial=hub.devices[DeviceKind.BP_CUFF], kind=DeviceKind.BP_CUFF)
    n = 72 * 4  # a reading every 15 minutes for 72 hours
    for k in range(n):
        at = now - timedelta(hours=72) + timedelta(minutes=15 * k)
        sys_ = 185.0 if k == 10 else 126.0  # one severe reading, ~69 h ago
        box.add(QueuedReading(device=device, reading=WireReading(
            id=f"off-{k}", measured_at=at, received_at=at, values=[
                WireValue(metric=Metric.SYSTOLIC, value=sys_, unit=Unit.MMHG),
                WireValue(metric=Metric.DIASTOLIC, value=84, unit=Unit.MMHG)])))
    assert box.depth() == n  # the hub was offline: everything waits in the outbox
    hub_user, hub_password = mosquitto.add_hub_user(hub.hub_id)

    async def drain() -> None:
        pub = Publisher(box, hub_id=hub.hub_id, now=lambda: datetime.now(UTC), jitter=None,
                        broker=BrokerSettings(f"mqtt://{mosquitto.host}:{mosquitto.port}",
                                              username=hub_user, password=hub_password))
        stop = asyncio.Event()
        task = asyncio.create_task(pub.run(stop))
        await until(lambda: box.depth() == 0, 60, "outbox drained")
        stop.set()
        await task

    try:
        asyncio.run(drain())
        assert box.depth() == 0
        _wait_count(store, n, 60)
        deadline = time.monotonic() + 20
        while not store.list_escalations(hub.practice_id, rule_id="bp.severe") and \
                time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        gw.stop()
    assert store.reading_ids() == sorted(f"off-{k}" for k in range(n))
    [esc] = store.list_escalations(hub.practice_id, rule_id="bp.severe")
    assert esc.late  # measured ~69 h before it arrived: queued, not paged
    assert esc.trigger_count == 1
    # the hub is online again: its backlog must not raise hub.offline once per old reading
    assert store.list_escalations(hub.practice_id, rule_id="hub.offline") == []
    store.close()


def test_hub_clock_jump_goes_to_review_not_alerts(mosquitto: Mosquitto, pg_db: str) -> None:
    """A hub whose clock jumps two days ahead: its readings wait in review, none is lost."""
    import json
    from datetime import timedelta

    from gateway.wire import SCHEMA_READINGS
    from ingest.quarantine import release

    store = open_store(pg_db)
    store.migrate()
    [hub] = seed_fleet(store, 1, prefix="clk", kinds=(DeviceKind.BP_CUFF,))
    user, password = mosquitto.service_credentials
    gw = Gateway(load_settings(database_url=pg_db, broker_url=mosquitto.url(user, password),
                               mqtt_client_id="vitalgate-clock"), store=store)
    gw.start()
    hub_user, hub_password = mosquitto.add_hub_user(hub.hub_id)
    true_now = datetime.now(UTC)
    ids = []
    try:
        with WindowedPublisher(mosquitto.host, mosquitto.port, client_id="clk",
                               username=hub_user, password=hub_password) as pub:
            for k, skew in enumerate([timedelta(0), timedelta(days=2), timedelta(days=2),
                                      timedelta(0)]):
                at = (true_now + skew + timedelta(seconds=k)).isoformat()
                rid = f"clk-{k}"
                ids.append(rid)
                pub.publish(f"vitalgate/v1/hubs/{hub.hub_id}/readings", json.dumps({
                    "schema": SCHEMA_READINGS, "hub_id": hub.hub_id,
                    "device": {"serial": hub.devices[DeviceKind.BP_CUFF], "kind": "bp_cuff"},
                    "readings": [{"id": rid, "measured_at": at, "received_at": at, "values": [
                        {"metric": "systolic", "value": 190, "unit": "mmHg"},
                        {"metric": "diastolic", "value": 95, "unit": "mmHg"}]}]}).encode())
            pub.flush()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and (
                store.count_readings() + len(store.list_quarantine())) < 4:
            time.sleep(0.05)
    finally:
        gw.stop()
    stored = set(store.reading_ids())
    held = {q.reading_id: q for q in store.list_quarantine()}
    assert stored == {"clk-0", "clk-3"}
    assert set(held) == {"clk-1", "clk-2"}
    assert {q.reason_code for q in held.values()} == {"time_future"}
    assert stored.isdisjoint(held)  # each id in exactly one place
    # the future-dated severe readings drove no alert; the two good ones did (once)
    [esc] = store.list_escalations(hub.practice_id, rule_id="bp.severe")
    assert {r["id"] for ev in esc.evidence for r in ev["readings"]} <= {"clk-0", "clk-3"}
    # once the clock is understood, a reviewer can release them: review, not loss
    for q in held.values():
        release(store, q.id, by="reviewer", now=true_now + timedelta(days=3))
    assert set(store.reading_ids()) == set(ids)
    store.close()
