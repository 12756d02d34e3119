"""The shipped Mosquitto config: hub ACLs and no dropped QoS 1 backlog."""

from __future__ import annotations

import threading
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gateway.topics import readings_topic, status_topic
from ingest.mqtt import BrokerAddress, PahoSource
from ingest.source import InboundMessage
from simulators.loadgen import WindowedPublisher

pytestmark = pytest.mark.services


class Collector:
    """Collects messages from a PahoSource and acks each at once."""

    def __init__(self, broker, client_id="vitalgate-ingest-test"):
        user, password = broker.service_credentials
        self.source = PahoSource(BrokerAddress(broker.host, broker.port, username=user,
                                               password=password), client_id=client_id)
        self.messages: list[InboundMessage] = []
        self.lock = threading.Lock()

    def _deliver(self, msg):
        with self.lock:
            self.messages.append(msg)
        self.source.ack(msg)

    def start(self):
        self.source.start(self._deliver)
        assert self.source.wait_connected(10)
        time.sleep(0.2)  # SUBACK

    def stop(self):
        self.source.stop()

    def wait_for(self, n, timeout=30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) >= n:
                    return
            time.sleep(0.05)


@pytest.mark.parametrize("protocol", [mqtt.MQTTv311, mqtt.MQTTv5])
def test_hub_cannot_publish_under_another_hubs_id(mosquitto, protocol):
    sink = Collector(mosquitto)
    sink.start()
    u1, p1 = mosquitto.add_hub_user("hub-001")
    mosquitto.add_hub_user("hub-002")
    acks: list[object] = []
    forger = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="hub-001", protocol=protocol)
    forger.username_pw_set(u1, p1)
    forger.on_publish = lambda c, u, mid, rc, props: acks.append(rc)
    forger.connect(mosquitto.host, mosquitto.port)
    forger.loop_start()
    time.sleep(0.3)
    forger.publish(readings_topic("hub-002"), b"forged", qos=1)
    forger.publish(status_topic("hub-002"), b"forged-status", qos=1, retain=True)
    time.sleep(0.5)
    forger.disconnect()
    forger.loop_stop()
    # Mosquitto 2.0 refuses the PUBLISH: MQTT 5 gets PUBACK "Not authorized",
    # MQTT 3.1.1 (no reason codes) is disconnected.  Either way nothing is routed.
    with WindowedPublisher(mosquitto.host, mosquitto.port, client_id="hub-001", username=u1,
                           password=p1) as pub:
        pub.publish(readings_topic("hub-001"), b"own")
        pub.flush()
    sink.wait_for(1)
    time.sleep(0.5)
    sink.stop()
    assert [(m.topic, m.payload) for m in sink.messages] == [(readings_topic("hub-001"), b"own")]


def test_hub_cannot_subscribe_to_other_hubs(mosquitto):
    u2, p2 = mosquitto.add_hub_user("hub-002")
    u1, p1 = mosquitto.add_hub_user("hub-001")
    got: list[bytes] = []
    spy = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="hub-002")
    spy.username_pw_set(u2, p2)
    spy.on_message = lambda c, u, m: got.append(m.payload)
    spy.connect(mosquitto.host, mosquitto.port)
    spy.loop_start()
    spy.subscribe("vitalgate/v1/hubs/#", qos=1)
    time.sleep(0.3)
    with WindowedPublisher(mosquitto.host, mosquitto.port, client_id="hub-001", username=u1,
                           password=p1) as pub:
        pub.publish(readings_topic("hub-001"), b"private")
        pub.flush()
    time.sleep(0.5)
    spy.disconnect()
    spy.loop_stop()
    assert got == []


def test_wrong_password_is_refused(mosquitto):
    from simulators.loadgen import PublishError

    mosquitto.add_hub_user("hub-001")
    with pytest.raises(PublishError):
        WindowedPublisher(mosquitto.host, mosquitto.port, client_id="hub-001",
                          username="hub-001", password="wrong", connect_timeout=2)


@pytest.mark.slow
def test_offline_subscriber_gets_all_5000_queued_messages(mosquitto):
    sink = Collector(mosquitto)
    sink.start()
    sink.stop()  # persistent session stays at the broker
    user, password = mosquitto.add_hub_user("hub-001")
    with WindowedPublisher(mosquitto.host, mosquitto.port, client_id="hub-001",
                           username=user, password=password) as pub:
        for i in range(5000):
            pub.publish(readings_topic("hub-001"), str(i).encode())
        pub.flush()
    mosquitto.restart()  # and the queue survives a broker restart (persistence)
    sink = Collector(mosquitto)
    sink.start()
    sink.wait_for(5000, timeout=60)
    sink.stop()
    assert {int(m.payload) for m in sink.messages} == set(range(5000))
