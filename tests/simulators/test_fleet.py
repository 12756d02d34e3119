"""Fleets over a real Mosquitto: acknowledged ids, ACLs, the edge publisher, load, pacing.

Two brokers: the shipped configuration (deploy/mosquitto, password file and
ACL: a hub may publish only under its own id) and a plain anonymous one for
the shared-connection load paths.  Without mosquitto the tests skip with the
reason (fail under VITALGATE_REQUIRE_SERVICES=1).
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gateway.model import DeviceKind
from gateway.topics import readings_topic, subscription
from gateway.wire import WireReadings, decode_readings
from simulators.fleet import (
    FleetError,
    PublishStats,
    WindowedPublisher,
    load_payloads,
    publish_panel,
    publish_samples,
    read_credentials,
    run_full_path,
    run_load,
)
from simulators.panel import build_panel, device_serial, sample_reading_id
from simulators.physiology import PERFECT, Sample, stable_profile
from tests.support.mosquitto import Mosquitto
from tests.support.services import free_port

pytestmark = pytest.mark.services

START = date(2026, 3, 2)


class Collector:
    """A QoS 1 subscriber (the ingest service user) keeping every reading id seen."""

    def __init__(self, host: str, port: int, user: str | None = None,
                 password: str | None = None) -> None:
        self.ids: set[str] = set()
        self.payloads: list[WireReadings] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"collector-{port}")
        if user:
            self.client.username_pw_set(user, password)
        self.client.on_connect = lambda c, *a: c.subscribe(subscription("readings"), qos=1)
        self.client.on_subscribe = lambda *a: self._ready.set()
        self.client.on_message = self._on_message
        self.client.connect(host, port)
        self.client.loop_start()
        assert self._ready.wait(10), "subscription not confirmed"

    def _on_message(self, client: object, userdata: object, msg: mqtt.MQTTMessage) -> None:
        hub = msg.topic.split("/")[3]
        batch = decode_readings(msg.payload, expected_hub=hub)
        with self._lock:
            if isinstance(batch, WireReadings):
                self.payloads.append(batch)
                self.ids.update(r.id for r in batch.readings)
            else:
                self.errors.append(str(batch))

    def wait_for(self, n: int, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while len(self.ids) < n and time.monotonic() < deadline:
            time.sleep(0.05)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def small_panel(n: int = 4, days: int = 5, seed: int = 3):
    conds = [["CHF"], ["COPD"], ["HTN", "DM"], ["DM"], ["CHF", "HTN"]]
    profiles = [stable_profile(f"f{i}", conds[i % len(conds)], seed=seed) for i in range(n)]
    return build_panel(profiles, start=START, days=days, seed=seed)


def expected_ids(panel) -> set[str]:
    return {sample_reading_id(device_serial(s.patient_id, s.kind), s) for s in panel.samples()}


def test_fast_path_every_id_acknowledged_per_hub(shipped: Mosquitto) -> None:
    panel = small_panel()
    creds = shipped.add_hub_users([h.id for h in panel.hubs])
    collector = Collector(shipped.host, shipped.port, *shipped.service_credentials)
    try:
        stats = publish_panel(panel, f"mqtt://{shipped.host}:{shipped.port}", batch=10,
                              keep_ids=True, credentials=creds, mqtt5=True)
        ids = expected_ids(panel)
        assert stats.acked_ids == ids
        assert stats.readings_acked == stats.readings_sent == len(ids)
        assert stats.readings_rejected == 0
        assert sum(stats.acked_by_kind.values()) == len(ids)
        collector.wait_for(len(ids))
        assert collector.ids == ids and not collector.errors
    finally:
        collector.close()


def test_acl_refusal_is_rejected_not_acknowledged(shipped: Mosquitto) -> None:
    user, password = shipped.add_hub_user("hub-acl-a")
    pub = WindowedPublisher(f"mqtt://{shipped.host}:{shipped.port}", client_id=user,
                            username=user, password=password, mqtt5=True).connect()
    pub.publish(readings_topic("hub-acl-b"), b"{}", readings=3, kind="scale")
    pub.close()
    assert pub.stats.readings_rejected == 3 and pub.stats.readings_acked == 0
    assert "REJECTED" in pub.stats.summary()


def test_wrong_password_is_refused(shipped: Mosquitto) -> None:
    shipped.add_hub_user("hub-pw")
    with pytest.raises(FleetError, match="refused"):
        WindowedPublisher(f"mqtt://{shipped.host}:{shipped.port}", username="hub-pw",
                          password="wrong").connect()


def test_full_path_through_the_edge_publisher(shipped: Mosquitto, tmp_path: Path) -> None:
    panel = small_panel(n=3, days=4)
    creds = shipped.add_hub_users([h.id for h in panel.hubs])
    collector = Collector(shipped.host, shipped.port, *shipped.service_credentials)
    try:
        stats = run_full_path(panel, f"mqtt://{shipped.host}:{shipped.port}", tmp_path,
                              credentials=creds, keep_ids=True)
        n = sum(1 for _ in panel.samples())
        assert stats.readings_sent == stats.readings_acked == n
        assert len(stats.acked_ids) == n
        assert set(stats.sent_by_kind) <= {str(k) for k in DeviceKind}
        collector.wait_for(n)
        assert collector.ids == stats.acked_ids
        assert {p.hub_id for p in collector.payloads} == {h.id for h in panel.hubs}
    finally:
        collector.close()


def test_full_path_over_a_shared_connection(plain: str, tmp_path: Path) -> None:
    panel = small_panel(n=2, days=3)
    stats = run_full_path(panel, plain, tmp_path, edge_publisher=False, keep_ids=True)
    n = sum(1 for _ in panel.samples())
    assert stats.readings_acked == stats.readings_sent == n
    assert stats.payloads_acked == stats.payloads_sent > 0


def test_load_respects_window_and_rate(plain: str) -> None:
    t0 = time.monotonic()
    stats = run_load(plain, readings=3000, hubs=50, window=20, rate=5000, keep_ids=True)
    elapsed = time.monotonic() - t0
    assert stats.readings_acked == 3000 and len(stats.acked_ids) == 3000
    assert 1 <= stats.max_in_flight <= 20
    assert elapsed >= 0.5  # 3000 at 5000/s
    assert set(stats.acked_by_kind.values()) == {750}


def test_load_batches(plain: str) -> None:
    stats = run_load(plain, readings=1000, hubs=10, batch=25, window=100)
    assert stats.readings_acked == 1000 and stats.payloads_acked == 40


def test_load_payloads_are_schema_valid() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    items = list(load_payloads(hubs=3, total=50, batch=4, seed=1, start=t0))
    assert sum(n for _, _, n, _, _ in items) == 50
    ids = set()
    for topic, payload, n, kind, rids in items:
        batch = decode_readings(payload, expected_hub=topic.split("/")[3])
        assert isinstance(batch, WireReadings), batch
        assert len(batch.readings) == n and str(batch.device.kind) == kind
        assert [r.id for r in batch.readings] == rids
        ids.update(rids)
    assert len(ids) == 50


def test_pacing_follows_simulated_time(plain: str) -> None:
    clock = [0.0]
    sleeps: list[float] = []

    def sleep(s: float) -> None:
        sleeps.append(s)
        clock[0] += s

    t = datetime(2026, 3, 2, 12, tzinfo=UTC)
    samples = [Sample("pace", t + timedelta(hours=h), DeviceKind.SCALE, {"weight": 80.0})
               for h in (0, 1, 3)]
    stats = publish_samples(plain, samples, speed=3600, wall_clock=lambda: clock[0],
                            sleep=sleep)
    assert stats.readings_acked == 3
    assert sleeps == pytest.approx([1.0, 2.0])


def test_unreachable_broker() -> None:
    with pytest.raises(FleetError, match="cannot reach"):
        publish_panel(small_panel(1, 1), f"mqtt://127.0.0.1:{free_port()}")


def test_credentials_file(tmp_path: Path) -> None:
    f = tmp_path / "hubs.txt"
    f.write_text("# hub users\nhub-a:secret:with:colons\n\nhub-b:pw\n")
    assert read_credentials(f) == {"hub-a": "secret:with:colons", "hub-b": "pw"}
    f.write_text("nonsense\n")
    with pytest.raises(FleetError, match=r"hubs\.txt:1"):
        read_credentials(f)


def test_missing_hub_credentials(shipped: Mosquitto) -> None:
    panel = small_panel(1, 1)
    with pytest.raises(FleetError, match="no MQTT credentials"):
        publish_panel(panel, f"mqtt://{shipped.host}:{shipped.port}", credentials={},
                      status=False)


def test_summary_lists_kinds() -> None:
    s = PublishStats(readings_sent=3, readings_acked=3, elapsed_s=1.0)
    s.sent_by_kind["scale"] = 3
    s.acked_by_kind["scale"] = 3
    text = s.summary()
    assert "readings sent 3, acknowledged 3" in text and "scale" in text


def test_all_patients_hub_users_of_a_panel(shipped: Mosquitto) -> None:
    """Provisioned hubs use their id as MQTT user name (what the ACL needs)."""
    panel = small_panel(2, 1)
    assert all(h.mqtt_username == h.id for h in panel.hubs)
    ps = [stable_profile("x", ["CHF"], seed=1, adherence=PERFECT)]
    assert build_panel(ps, start=START, days=1, seed=1).hubs[0].id == "hub-x"


@pytest.mark.parametrize("mode", [["--fast", "--batch", "5"], [], ["--load", "400"]])
def test_cli_simulate(plain: str, mode: list[str], tmp_path: Path,
                      capsys: pytest.CaptureFixture[str]) -> None:
    from gateway.cli import main

    db = f"sqlite:///{tmp_path / 'sim.db'}"
    if "--load" not in mode:
        from gateway.store import open_store

        with open_store(db) as s:
            s.migrate()
        mode = [*mode, "--database", db]
    rc = main(["simulate", "--broker", plain, "--patients", "3", "--days", "2", "--seed", "4",
               *mode])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "readings sent" in out and "acknowledged" in out
    assert "sent" in err  # the progress line
    if "--load" in mode:
        assert "readings sent 400, acknowledged 400" in out
    else:
        from gateway.store import open_store

        with open_store(db) as s:
            assert len(s.list_patients("sim-practice")) == 3


def test_cli_simulate_with_hub_credentials(shipped: Mosquitto, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    from gateway.cli import main

    hubs = [f"hub-sim{i:05d}" for i in range(1, 3)]
    creds = shipped.add_hub_users(hubs)
    f = tmp_path / "hubs.txt"
    f.write_text("".join(f"{h}:{p}\n" for h, p in creds.items()))
    url = f"mqtt://{shipped.host}:{shipped.port}"
    assert main(["simulate", "--broker", url, "--patients", "2", "--days", "2", "--fast",
                 "--hub-credentials", str(f), "--mqtt5", "--quiet"]) == 0
    assert "REJECTED" not in capsys.readouterr().out
