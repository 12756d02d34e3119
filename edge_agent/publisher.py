"""MQTT publisher: drains the outbox to the broker, deleting rows only on PUBACK.

How this works
--------------
One paho-mqtt 2.x client per connection (MQTT 3.1.1, clean session, TLS
and username/password optional) with paho's own reconnect disabled: the
reconnect loop is explicit here and waits :func:`edge_agent.backoff.backoff`
between attempts.  paho's network thread only turns callbacks into events
handed to the asyncio loop (``call_soon_threadsafe``); all outbox access
happens on the loop thread.

On connect the client has a last will -- retained ``offline`` status
(``vitalgate.status/1``) on the status topic -- and publishes a retained
``online`` status carrying the outbox depth, then the devices snapshot.
Then it drains the outbox oldest first: rows are grouped per device into
``vitalgate.readings/1`` payloads of up to ``batch_size`` readings, each
published at QoS 1, with at most ``window`` payloads unacknowledged (paho
stalls past 65,535 and ~100 keeps ~10k msg/s).  ``on_publish(mid)`` -- the
PUBACK -- is the only thing that deletes rows.  A connection that drops
leaves unacknowledged rows in the outbox; the next connection sends them
again (the broker may see a payload twice; the server dedupes by id).

Nothing paho-shaped leaves this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.backoff import backoff
from edge_agent.outbox import Outbox, OutboxRow
from gateway.topics import devices_topic, readings_topic, status_topic
from gateway.wire import (
    WireDevice,
    WireDevices,
    WireReading,
    WireReadings,
    WireStatus,
    encode,
)

log = logging.getLogger(__name__)

#: Unacknowledged QoS 1 payloads at most (DESIGN.md: ~100 gives ~10k msg/s;
#: paho stalls past 65,535 because message ids are 16 bit).
DEFAULT_WINDOW = 100
#: Readings per payload: ~0.5 KB each, so ~25 KB payloads -- far below the
#: 1 MiB server limit, small enough that a lost payload costs little to resend.
DEFAULT_BATCH = 50
#: CONNACK must arrive within this; a TLS handshake over a poor uplink can be slow.
CONNECT_TIMEOUT_S = 15.0
#: MQTT keepalive: home routers drop idle NAT entries after a few minutes.
KEEPALIVE_S = 60
#: A connection that lasted this long resets the backoff; one the broker drops
#: right away (ACL kick, overload) keeps backing off instead of looping.
STABLE_CONNECTION_S = 30.0
#: On a clean stop, wait this long for the PUBACK of the ``offline`` status.
STOP_GRACE_S = 2.0


class PublishError(Exception):
    """The broker could not be reached or refused the connection."""


@dataclass(frozen=True, slots=True)
class BrokerSettings:
    """Where and how to connect: ``mqtt://host:1883`` or ``mqtts://host:8883``."""

    url: str
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    client_id: str | None = None
    keepalive_s: int = KEEPALIVE_S

    @property
    def host(self) -> str:
        """Broker host."""
        return urlparse(self.url).hostname or "localhost"

    @property
    def tls(self) -> bool:
        """True for ``mqtts://`` or when a CA file is configured."""
        return urlparse(self.url).scheme in ("mqtts", "ssl", "tls") or self.ca_file is not None

    @property
    def port(self) -> int:
        """Broker port (1883, or 8883 with TLS, unless the URL says otherwise)."""
        return urlparse(self.url).port or (8883 if self.tls else 1883)


def batches(rows: list[OutboxRow], size: int) -> Iterator[tuple[str, list[OutboxRow]]]:
    """Group rows per device (first appearance order), chunks of at most ``size``."""
    groups: dict[str, list[OutboxRow]] = {}
    for row in rows:
        groups.setdefault(row.serial, []).append(row)
    for serial, group in groups.items():
        for i in range(0, len(group), size):
            yield serial, group[i : i + size]


def readings_payload(hub_id: str, rows: list[OutboxRow], sent_at: datetime) -> bytes:
    """A ``vitalgate.readings/1`` payload for rows of one device (latest device block)."""
    batch = WireReadings(
        schema="vitalgate.readings/1",
        hub_id=hub_id,
        sent_at=sent_at,
        device=WireDevice.model_validate_json(rows[-1].device_json),
        readings=[WireReading.model_validate_json(r.reading_json) for r in rows],
    )
    # Not gateway.wire.encode(): it drops nulls, and WireValue.value is a
    # required nullable field (a failed measurement sends "value": null).
    return batch.model_dump_json(by_alias=True).encode()


class Publisher:
    """Drains an :class:`Outbox` to MQTT (see the module docstring)."""

    def __init__(
        self,
        outbox: Outbox,
        *,
        hub_id: str,
        broker: BrokerSettings,
        now: Callable[[], datetime],
        window: int = DEFAULT_WINDOW,
        batch_size: int = DEFAULT_BATCH,
        jitter: Callable[[], float] | None = random.random,
        max_delay_s: float | None = None,
        agent_version: str = "",
    ) -> None:
        self.outbox = outbox
        self.hub_id = hub_id
        self.broker = broker
        self.now = now
        self.window = window
        self.batch_size = batch_size
        self.jitter = jitter
        self.max_delay_s = max_delay_s
        self.agent_version = agent_version
        self.connected = False
        self.published_readings = 0
        self.peak_inflight = 0
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connack: asyncio.Future[int] | None = None
        self._inflight: dict[int, list[int]] = {}
        self._control: dict[int, str] = {}
        self._acked: list[int] = []
        self._devices_dirty = True
        self._devices_mid: int | None = None
        self._status_depth = 0
        self._generation = 0

    # -- signals from the rest of the agent ------------------------------------

    def notify(self) -> None:
        """New rows are in the outbox."""
        self._wake.set()

    def devices_changed(self) -> None:
        """Device info (battery, clock offset) changed: publish the devices payload."""
        self._devices_dirty = True
        self._wake.set()

    # -- the reconnect loop ---------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Connect, drain, reconnect with backoff -- until ``stop`` is set."""
        self._loop = asyncio.get_running_loop()
        attempt = 0
        while not stop.is_set():
            self._set_state("connecting", attempt=attempt)
            started = asyncio.get_running_loop().time()
            try:
                await self._connection(stop)
                if stop.is_set():
                    break
                if asyncio.get_running_loop().time() - started >= STABLE_CONNECTION_S:
                    attempt = 0
            except (PublishError, OSError, TimeoutError) as exc:
                log.warning("broker unavailable", extra={"attempt": attempt,
                                                         "error": str(exc)[:200]})
                self._set_state("disconnected", attempt=attempt, error=str(exc)[:200])
            delay = backoff(attempt, jitter=self.jitter)
            if self.max_delay_s is not None:
                delay = min(delay, self.max_delay_s)
            attempt += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
        self._set_state("stopped")

    def _set_state(self, state: str, **extra: Any) -> None:
        self.outbox.set_state("broker", {"state": state, "since": self.now().isoformat(),
                                         "url": self.broker.url, **extra})

    def _client(self) -> mqtt.Client:
        b = self.broker
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=b.client_id or f"vitalgate-hub-{self.hub_id}",
            clean_session=True,
            protocol=mqtt.MQTTv311,
            reconnect_on_failure=False,
            userdata=self._generation,
        )
        if b.username is not None:
            client.username_pw_set(b.username, b.password)
        if b.tls:
            client.tls_set(ca_certs=b.ca_file, certfile=b.cert_file, keyfile=b.key_file)
        client.max_inflight_messages_set(self.window + 64)
        client.max_queued_messages_set(0)
        client.will_set(status_topic(self.hub_id), self._status("offline"), qos=1, retain=True)
        client.on_connect = self._cb_connect
        client.on_disconnect = self._cb_disconnect
        client.on_publish = self._cb_publish
        return client

    def _status(self, state: str) -> bytes:
        stats = self.outbox.stats() if state == "online" else None
        return encode(WireStatus(
            schema="vitalgate.status/1", hub_id=self.hub_id, state="online" if state == "online"
            else "offline", at=self.now(),
            outbox_depth=None if stats is None else stats.depth,
            outbox_oldest_s=None if stats is None else stats.oldest_age_s,
            agent_version=self.agent_version,
        ))

    async def _connection(self, stop: asyncio.Event) -> None:
        assert self._loop is not None
        self._generation += 1
        client = self._client()
        self._connack = self._loop.create_future()
        self._inflight.clear()
        self._control.clear()
        self._devices_mid = None
        await asyncio.to_thread(client.connect, self.broker.host, self.broker.port,
                                self.broker.keepalive_s)
        client.loop_start()
        try:
            rc = await asyncio.wait_for(self._connack, CONNECT_TIMEOUT_S)
            if rc != 0:
                raise PublishError(f"broker refused the connection (reason {rc})")
            self.connected = True
            self._set_state("connected")
            log.info("broker connected", extra={"depth": self.outbox.depth()})
            self._publish_online(client)
            self._devices_dirty = True
            await self._drain(client, stop)
            if stop.is_set() and self.connected:
                await self._goodbye(client)
        finally:
            self.connected = False
            self._flush_acks()
            client.disconnect()
            await asyncio.to_thread(client.loop_stop)

    async def _goodbye(self, client: mqtt.Client) -> None:
        """Clean stop: the will is not sent on a clean disconnect, so say offline."""
        mid = self._publish_control(client, "offline", status_topic(self.hub_id),
                                    self._status("offline"), retain=True)
        deadline = asyncio.get_running_loop().time() + STOP_GRACE_S
        while mid in self._control and self.connected:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                break
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), left)
        self._flush_acks()

    # -- draining -------------------------------------------------------------------

    async def _drain(self, client: mqtt.Client, stop: asyncio.Event) -> None:
        cursor = 0
        stopper = asyncio.ensure_future(stop.wait())
        try:
            while self.connected and not stop.is_set():
                self._wake.clear()
                self._flush_acks()
                cursor = self._fill(client, cursor)
                if self._devices_dirty and self._devices_mid is None:
                    self._publish_devices(client)
                if self._status_depth and not self._inflight and self.outbox.depth() == 0:
                    # Backlog delivered: refresh the retained status (depth 0).
                    self._publish_online(client)
                if not self.connected:
                    break
                waker = asyncio.ensure_future(self._wake.wait())
                await asyncio.wait([waker, stopper], return_when=asyncio.FIRST_COMPLETED)
                waker.cancel()
        finally:
            stopper.cancel()

    def _fill(self, client: mqtt.Client, cursor: int) -> int:
        free = self.window - len(self._inflight)
        while free > 0 and self.connected:
            rows = self.outbox.pending(after_seq=cursor, limit=self.batch_size * free)
            if not rows:
                break
            sent_at = self.now()
            for _serial, group in batches(rows, self.batch_size):
                info = client.publish(readings_topic(self.hub_id),
                                      readings_payload(self.hub_id, group, sent_at), qos=1)
                if info.rc != mqtt.MQTT_ERR_SUCCESS:
                    # Connection lost under us: the disconnect event follows.
                    return cursor
                self._inflight[info.mid] = [r.seq for r in group]
            cursor = rows[-1].seq
            self.peak_inflight = max(self.peak_inflight, len(self._inflight))
            free = self.window - len(self._inflight)
        return cursor

    def _publish_control(self, client: mqtt.Client, kind: str, topic: str, payload: bytes,
                         *, retain: bool = False) -> int:
        info = client.publish(topic, payload, qos=1, retain=retain)
        self._control[info.mid] = kind
        return int(info.mid)

    def _publish_online(self, client: mqtt.Client) -> None:
        payload = self._status("online")
        self._status_depth = self.outbox.depth()
        self._publish_control(client, "status", status_topic(self.hub_id), payload, retain=True)

    def _publish_devices(self, client: mqtt.Client) -> None:
        devices = []
        for value in self.outbox.states("device:").values():
            with contextlib.suppress(ValueError):
                devices.append(WireDevice.model_validate(value["device"]))
        if not devices:
            self._devices_dirty = False
            return
        payload = encode(WireDevices(schema="vitalgate.devices/1", hub_id=self.hub_id,
                                     at=self.now(), devices=devices[:32]))
        self._devices_dirty = False
        self._devices_mid = self._publish_control(client, "devices", devices_topic(self.hub_id),
                                                  payload, retain=True)

    def _flush_acks(self) -> None:
        if self._acked:
            acked, self._acked = self._acked, []
            self.published_readings += self.outbox.ack(acked)

    # -- paho callbacks (network thread) -> loop thread --------------------------------

    def _post(self, generation: int, fn: Callable[..., None], *args: Any) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return

        def deliver() -> None:
            # Message ids restart with every client: an event from an earlier
            # connection must never acknowledge rows of the current one.
            if generation == self._generation:
                fn(*args)

        with contextlib.suppress(RuntimeError):  # loop shutting down
            loop.call_soon_threadsafe(deliver)

    def _cb_connect(self, client: Any, userdata: int, flags: Any, reason: Any,
                    properties: Any) -> None:
        rc = int(reason.value if hasattr(reason, "value") else reason)
        self._post(userdata, self._on_connack, rc)

    def _cb_disconnect(self, client: Any, userdata: int, flags: Any, reason: Any,
                       properties: Any) -> None:
        self._post(userdata, self._on_disconnected)

    def _cb_publish(self, client: Any, userdata: int, mid: int, reason: Any,
                    properties: Any) -> None:
        self._post(userdata, self._on_puback, mid)

    def _on_connack(self, rc: int) -> None:
        if self._connack is not None and not self._connack.done():
            self._connack.set_result(rc)

    def _on_disconnected(self) -> None:
        if self._connack is not None and not self._connack.done():
            self._connack.set_exception(PublishError("connection closed before CONNACK"))
        if self.connected:
            log.warning("broker connection lost", extra={"inflight": len(self._inflight)})
        self.connected = False
        self._wake.set()

    def _on_puback(self, mid: int) -> None:
        seqs = self._inflight.pop(mid, None)
        if seqs is not None:
            self._acked.extend(seqs)
        kind = self._control.pop(mid, None)
        if kind == "devices" and mid == self._devices_mid:
            self._devices_mid = None
        self._wake.set()
