"""paho-mqtt implementation of :class:`~ingest.source.MessageSource`.

Why manual acknowledgement: with paho's default, a QoS 1 PUBACK is sent as
soon as ``on_message`` returns, i.e. before the reading is committed; a crash
in between loses the reading (the broker considers it delivered).  paho 2.x
``Client(manual_ack=True)`` plus ``client.ack(mid, qos)`` lets the pipeline
acknowledge only after the batch commit, giving at-least-once end to end;
the store's dedupe by reading id makes the result exactly-once in the store.
An alternative (aiomqtt) receives at about half paho's rate and has no
manual acknowledgement, so paho stays on the hot path.

Sessions are persistent (fixed client id; MQTT 5 ``clean_start=False`` with
an infinite session expiry, or MQTT 3.1.1 ``clean_session=False``) so
messages published while ingest is down are queued by the broker.  With
MQTT 5 the client announces a Receive Maximum large enough for a whole
batch to be in flight unacknowledged (the broker would otherwise stall
after its default of 20 in-flight messages until the batch timer fires).

paho runs its network loop on its own thread; ``deliver`` is called there
and must only enqueue.  ``ack`` is called from the ingest worker thread
(paho queues the packet under its own lock and wakes the loop).
"""

from __future__ import annotations

import logging
import ssl
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from gateway.topics import KINDS, subscription
from ingest.source import Deliver, InboundMessage

log = logging.getLogger(__name__)

#: MQTT 5 session expiry meaning "never" (the broker's persistent_client_expiration applies).
SESSION_NEVER_EXPIRES = 0xFFFFFFFF
#: Keep-alive: a dead gateway's session is noticed within 1.5x this.
KEEPALIVE_S = 30
#: Reconnect back-off bounds (paho doubles between them).
RECONNECT_MIN_S, RECONNECT_MAX_S = 1, 30


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Where and how to connect, parsed from ``mqtt://`` / ``mqtts://`` URLs."""

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        """Parse ``mqtt[s]://[user[:password]@]host[:port]``."""
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
            raise ValueError(f"unsupported broker URL scheme {parts.scheme!r}")
        tls = parts.scheme in ("mqtts", "ssl")
        return cls(host=parts.hostname or "127.0.0.1", port=parts.port or (8883 if tls else 1883),
                   tls=tls, username=unquote(parts.username) if parts.username else None,
                   password=unquote(parts.password) if parts.password else None)


class PahoSource:
    """Persistent-session QoS 1 subscriber with manual acknowledgement."""

    def __init__(
        self,
        address: BrokerAddress,
        *,
        client_id: str,
        mqtt5: bool = True,
        share_group: str | None = None,
        receive_maximum: int = 10_000,
        ca_file: Path | None = None,
        kinds: tuple[str, ...] = KINDS,
    ) -> None:
        if share_group and not mqtt5:
            raise ValueError("shared subscriptions need MQTT 5")
        self.address = address
        self.client_id = client_id
        self.mqtt5 = mqtt5
        self.share_group = share_group
        self.receive_maximum = max(1, min(receive_maximum, 65535))
        self.ca_file = ca_file
        self.kinds = kinds
        self._client: mqtt.Client | None = None
        self._deliver: Deliver | None = None
        self._session = 0
        self._paused = False
        self._connected = threading.Event()

    # -- MessageSource -------------------------------------------------------
    def start(self, deliver: Deliver) -> None:
        """Connect (retrying in the background) and subscribe on every connect."""
        self._deliver = deliver
        if self.mqtt5:
            client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id,
                                 protocol=mqtt.MQTTv5, manual_ack=True)
        else:
            client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id,
                                 protocol=mqtt.MQTTv311, clean_session=False, manual_ack=True)
        if self.address.username is not None:
            client.username_pw_set(self.address.username, self.address.password)
        if self.address.tls:
            client.tls_set(ca_certs=str(self.ca_file) if self.ca_file else None,
                           cert_reqs=ssl.CERT_REQUIRED)
        client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        self._client = client
        kwargs: dict[str, Any] = {}
        if self.mqtt5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = SESSION_NEVER_EXPIRES
            props.ReceiveMaximum = self.receive_maximum
            kwargs = {"clean_start": False, "properties": props}
        client.connect_async(self.address.host, self.address.port, keepalive=KEEPALIVE_S,
                             **kwargs)
        client.loop_start()

    def wait_connected(self, timeout: float) -> bool:
        """Block until connected (and subscribed) or ``timeout``; return success."""
        return self._connected.wait(timeout)

    def ack(self, msg: InboundMessage) -> None:
        """Acknowledge to the broker unless the message came on an earlier connection."""
        if msg.qos == 0 or self._client is None or msg.session != self._session:
            return
        self._client.ack(msg.mid, msg.qos)

    def pause(self) -> None:
        """Stop handing over messages; they stay unacknowledged at the broker."""
        self._paused = True

    def stop(self) -> None:
        """Disconnect (the session, and undelivered messages, stay at the broker)."""
        self._paused = True
        client = self._client
        if client is None:
            return
        client.disconnect()
        client.loop_stop()
        self._client = None
        self._connected.clear()

    # -- paho callbacks (network thread) -------------------------------------
    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                    properties: Any) -> None:
        if reason.is_failure:
            log.error("broker refused the connection: %s", reason)
            return
        self._session += 1
        log.info("connected to %s:%d (session present: %s)", self.address.host,
                 self.address.port, flags.session_present)
        subs: list[tuple[str, Any]] = []
        for kind in self.kinds:
            topic = subscription(kind, self.share_group)
            if self.mqtt5:
                # retain_handling 1: retained status only on a new subscription
                subs.append((topic, SubscribeOptions(qos=1, retainHandling=1)))
            else:
                subs.append((topic, 1))
        client.subscribe(subs)
        self._connected.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                       properties: Any) -> None:
        self._connected.clear()
        if not self._paused:
            log.warning("disconnected from broker (%s); paho reconnects", reason)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        if self._paused or self._deliver is None:
            return
        self._deliver(InboundMessage(topic=message.topic, payload=bytes(message.payload),
                                     mid=message.mid, qos=message.qos,
                                     received_at=datetime.now(UTC), session=self._session))
