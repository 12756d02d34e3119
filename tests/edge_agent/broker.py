"""A real Mosquitto for edge tests (own port, temp config, stoppable) and a QoS 1 consumer."""

from __future__ import annotations

import os
import pwd
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gateway.topics import Topic
from gateway.wire import WireReadings, decode_devices, decode_readings, decode_status
from tests.support.services import free_port, mosquitto_binary, port_open, require_service


class Mosquitto:
    """mosquitto on 127.0.0.1:<free port>, persistence in a temp dir, unlimited queues."""

    def __init__(self, workdir: Path, listener: str = "", extra: str = "") -> None:
        binary = mosquitto_binary()
        if binary is None:
            require_service("Mosquitto", "no mosquitto binary on PATH or /usr/sbin")
        self.binary = str(binary)
        self.port = free_port()
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.conf = self.dir / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            + (listener or "allow_anonymous true\n")
            + extra +
            "persistence true\n"
            f"persistence_location {self.dir}/\n"
            "max_queued_messages 0\n"
            f"log_dest file {self.dir}/mosquitto.log\n"
            # As root mosquitto drops to user "mosquitto", which cannot write
            # persistence into pytest's 0700 temp dirs: stay the current user.
            + (f"user {pwd.getpwuid(os.geteuid()).pw_name}\n" if os.geteuid() == 0 else "")
        )
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen([self.binary, "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not port_open("127.0.0.1", self.port, 0.2):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                log = (self.dir / "mosquitto.log")
                text = log.read_text()[-500:] if log.exists() else ""
                require_service("Mosquitto", f"did not start on port {self.port}: {text}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None


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
