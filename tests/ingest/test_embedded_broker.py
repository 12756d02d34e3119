"""The embedded amqtt broker: QoS 1 persistent sessions with paho, and ingest on it."""

from __future__ import annotations

import threading
import time

from gateway.model import DeviceKind
from gateway.settings import Settings
from gateway.store import open_store
from gateway.topics import readings_topic
from ingest.broker import EmbeddedBroker
from ingest.mqtt import BrokerAddress, PahoSource
from ingest.service import IngestService
from simulators.loadgen import WindowedPublisher, readings_payload, seed_fleet
from tests.support.services import free_port


def test_persistent_session_gets_messages_published_while_offline():
    port = free_port()
    with EmbeddedBroker("127.0.0.1", port):
        got: list[bytes] = []
        lock = threading.Lock()

        def make() -> PahoSource:
            return PahoSource(BrokerAddress("127.0.0.1", port, username="ingest"),
                              client_id="emb-ingest", mqtt5=False)

        def deliver_and_ack(src):
            def deliver(msg):
                with lock:
                    got.append(msg.payload)
                src.ack(msg)
            return deliver

        src = make()
        src.start(deliver_and_ack(src))
        assert src.wait_connected(5)
        time.sleep(0.3)
        src.stop()
        with WindowedPublisher("127.0.0.1", port, client_id="hub-001",
                               username="hub-001") as pub:
            for i in range(300):
                pub.publish(readings_topic("hub-001"), str(i).encode())
            pub.flush()
        src = make()
        src.start(deliver_and_ack(src))
        deadline = time.monotonic() + 15
        while len(got) < 300 and time.monotonic() < deadline:
            time.sleep(0.05)
        src.stop()
    assert sorted(int(p) for p in got) == list(range(300))


def test_ingest_service_with_embedded_broker(tmp_path):
    port = free_port()
    url = f"sqlite:///{tmp_path / 'emb.db'}"
    settings = Settings(database_url=url, data_dir=tmp_path, embedded_broker_port=port)
    assert settings.embedded_broker
    svc = IngestService(settings)
    svc.start()
    try:
        (hub,) = seed_fleet(svc.store, 1)
        with WindowedPublisher("127.0.0.1", port, client_id=hub.hub_id,
                               username=hub.hub_id) as pub:
            for i in range(50):
                pub.publish(readings_topic(hub.hub_id),
                            readings_payload(hub, DeviceKind.BP_CUFF, [f"e{i}a", f"e{i}b"]))
            pub.flush()
        deadline = time.monotonic() + 15
        while svc.store.count_readings() < 100 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        svc.stop()
    with open_store(url) as store:
        assert store.count_readings() == 100


def test_embedded_broker_refuses_a_network_address():
    """No passwords and no per-hub ACL: it must not listen beyond loopback."""
    import pytest

    from ingest.broker import EmbeddedBrokerError, is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert is_loopback("127.0.0.2") and is_loopback("[::1]")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.10")
    assert not is_loopback("::") and not is_loopback("hub-gw.example.org")
    broker = EmbeddedBroker("0.0.0.0", free_port())
    with pytest.raises(EmbeddedBrokerError, match=r"loopback only.*Mosquitto"):
        broker.start()
    assert broker._thread is None  # nothing started, nothing to stop


def test_serve_with_the_embedded_broker_on_a_network_address_exits_with_the_reason(
        tmp_path, monkeypatch, capsys):
    from gateway.cli import main

    monkeypatch.setenv("VITALGATE_EMBEDDED_BROKER_HOST", "0.0.0.0")
    monkeypatch.setenv("VITALGATE_EMBEDDED_BROKER_PORT", str(free_port()))
    monkeypatch.delenv("VITALGATE_BROKER_URL", raising=False)
    monkeypatch.setenv("VITALGATE_DATABASE_URL", f"sqlite:///{tmp_path / 'v.db'}")
    assert main(["ingest"]) == 1
    err = capsys.readouterr().err
    assert "loopback only" in err and "Traceback" not in err
