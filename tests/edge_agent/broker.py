"""A real Mosquitto for edge tests (own port, temp config, stoppable) and a QoS 1 consumer."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gateway.topics import Topic
from gateway.wire import WireReadings, decode_devices, decode_readings, decode_status
from tests.support.mosquitto import PlainMosquitto as Mosquitto

__all__ = ["Consumer", "Mosquitto", "wait_for"]


@dataclass
class Consumer:
    """A persistent-session QoS 1 subscriber that counts reading ids (duplicates allowed)."""

    port: int
    hub_id: str
    username: str | None = None
    password: str | None = None
    ids: dict[str, int] = field(default_factory=dict)
    payloads: list[WireReadings] = field(default_factory=list)
    statuses: list[tuple[str, bool, int | None]] = field(default_factory=list)
    devices: list[object] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                                  client_id=f"consumer-{uuid.uuid4().hex[:8]}",
                                  clean_session=False)
        self.client.reconnect_delay_set(0.05, 0.3)
        if self.username is not None:
            self.client.username_pw_set(self.username, self.password)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.connect("127.0.0.1", self.port)
        self.client.loop_start()

    def _on_connect(self, client, userdata, flags, reason, properties) -> None:
        client.subscribe(f"vitalgate/v1/hubs/{self.hub_id}/#", qos=1)

    def _on_message(self, client, userdata, msg) -> None:
        kind = Topic.parse(msg.topic).kind
        with self._lock:
            if kind == "readings":
                batch = decode_readings(msg.payload, expected_hub=self.hub_id)
                if not isinstance(batch, WireReadings):
                    self.errors.append(str(batch))
                    return
                self.payloads.append(batch)
                for r in batch.readings:
                    self.ids[r.id] = self.ids.get(r.id, 0) + 1
            elif kind == "status":
                st = decode_status(msg.payload, expected_hub=self.hub_id)
                if hasattr(st, "state"):
                    self.statuses.append((st.state, bool(msg.retain), st.outbox_depth))
                else:
                    self.errors.append(str(st))
            else:
                dv = decode_devices(msg.payload, expected_hub=self.hub_id)
                (self.devices if hasattr(dv, "devices") else self.errors).append(dv)

    def count(self) -> int:
        with self._lock:
            return len(self.ids)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)
