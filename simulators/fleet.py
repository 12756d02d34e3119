"""Hubs and fleets over MQTT: history replay, compressed or real time, and load.

How this works
--------------
:class:`WindowedPublisher` is the one MQTT seam: a paho client publishing at
QoS 1 with its *own* bounded in-flight window (paho stalls past 65,535
unacknowledged QoS 1 messages; about 100 in flight gives ~10k msg/s on a
small machine), an optional rate limit in readings per second, and ack
accounting (readings and ids acknowledged, by device kind).  paho invokes
``on_publish`` while holding its internal message lock, so the publisher
never holds its own lock across ``publish()``: an ack that beats the
bookkeeping is parked and matched right after.

Three ways to feed it:

* the **fast path** (:func:`publish_samples`): physiology samples become
  ``vitalgate.readings/1`` payloads directly (one device per payload,
  ``batch`` readings at most), paced by simulated time at ``speed`` x real
  time (``speed=None``: as fast as the window and rate allow);
* the **full path** (:class:`FullPathHub`): simulated devices produce GATT
  bytes, the edge agent's :class:`~edge_agent.session.DeviceSession` decodes
  them into its durable outbox, and the outbox is drained to the broker and
  acknowledged row by row;
* the **load generator** (:func:`run_load`): synthetic but schema-valid
  readings for many hubs, JSON built without pydantic, for millions of
  readings at a controlled rate.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, Literal, TextIO
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gateway.model import DeviceKind
from gateway.topics import Topic, readings_topic, status_topic
from gateway.units import CANONICAL_UNIT, Metric
from gateway.wire import WireStatus, encode
from simulators.devices import DeviceClock, SimulatedDevice, make_device
from simulators.panel import (
    DEVICE_MODEL,
    Panel,
    device_serial,
    hub_id_for,
    provision,
    wire_batches,
)
from simulators.physiology import Sample

__all__ = ["FullPathHub", "PublishStats", "WindowedPublisher", "provision", "publish_panel",
           "publish_samples", "run_full_path", "run_load"]

#: Unacknowledged QoS 1 publishes allowed at once (DESIGN.md: ~100 gives ~10k msg/s).
DEFAULT_WINDOW = 100
#: paho's message ids are 16 bit: a window must stay well below this.
MAX_WINDOW = 60_000
CONNECT_TIMEOUT_S = 10.0
#: User name sent when the URL names none (the embedded amqtt broker requires one).
DEFAULT_USERNAME = "vitalgate-simulator"


class FleetError(Exception):
    """The broker could not be reached or refused the simulator."""


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Host, port and credentials parsed from ``mqtt://user:pass@host:port``."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        """Parse a broker URL (``mqtt://`` or ``tcp://``; default port 1883)."""
        u = urlparse(url if "://" in url else f"mqtt://{url}")
        if u.scheme not in ("mqtt", "tcp"):
            raise FleetError(f"unsupported broker URL scheme {u.scheme!r} (use mqtt://)")
        return cls(u.hostname or "127.0.0.1", u.port or 1883, u.username, u.password)


@dataclass(slots=True)
class PublishStats:
    """What was published and what the broker acknowledged."""

    payloads_sent: int = 0
    payloads_acked: int = 0
    readings_sent: int = 0
    readings_acked: int = 0
    sent_by_kind: Counter[str] = field(default_factory=Counter)
    acked_by_kind: Counter[str] = field(default_factory=Counter)
    acked_ids: set[str] = field(default_factory=set)
    elapsed_s: float = 0.0
    max_in_flight: int = 0
    payloads_rejected: int = 0
    readings_rejected: int = 0

    @property
    def acknowledged(self) -> int:
        """Readings acknowledged by the broker."""
        return self.readings_acked

    def summary(self) -> str:
        """Multi-line human summary (readings sent, acknowledged, by device kind)."""
        rate = self.readings_acked / self.elapsed_s if self.elapsed_s > 0 else 0.0
        payloads = (f" ({self.payloads_acked}/{self.payloads_sent} payloads)"
                    if self.payloads_sent else "")
        lines = [f"readings sent {self.readings_sent}, acknowledged {self.readings_acked}"
                 f"{payloads} in {self.elapsed_s:.1f} s ({rate:,.0f} readings/s)"]
        if self.payloads_rejected:
            lines.append(f"  REJECTED by the broker: {self.readings_rejected} readings "
                         f"({self.payloads_rejected} payloads)")
        for kind in sorted(k for k in set(self.sent_by_kind) | set(self.acked_by_kind)
                           if self.sent_by_kind[k] or self.acked_by_kind[k]):
            lines.append(f"  {kind:<15} sent {self.sent_by_kind[kind]:>9}  "
                         f"acknowledged {self.acked_by_kind[kind]:>9}")
        return "\n".join(lines)


@dataclass(slots=True)
class _Pending:
    readings: int
    kind: str
    ids: tuple[str, ...]
    on_ack: Callable[[], None] | None


class _Shared:
    """Accounting shared by the connections of one run: stats, window, pacing."""

    def __init__(self, window: int, rate: float | None, clock: Callable[[], float],
                 sleep: Callable[[float], None]) -> None:
        if not 1 <= window <= MAX_WINDOW:
            raise ValueError(f"window must be 1..{MAX_WINDOW}")
        self.stats = PublishStats()
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.slots = threading.BoundedSemaphore(window)
        self.in_flight = 0
        self.rate = rate
        self.clock = clock
        self.sleep = sleep
        self.t0: float | None = None
        self.paced = 0

    def pace(self, readings: int) -> None:
        """Sleep until ``readings`` more are due under the rate limit."""
        if not self.rate:
            return
        if self.t0 is None:
            self.t0 = self.clock()
        due = self.t0 + self.paced / self.rate
        self.paced += readings
        delay = due - self.clock()
        if delay > 0:
            self.sleep(delay)

    def start(self) -> None:
        """Mark the start of publishing (for elapsed time and rates)."""
        if self.t0 is None:
            self.t0 = self.clock()

    def elapsed(self) -> None:
        """Update ``stats.elapsed_s`` (caller holds the lock or is the only thread)."""
        if self.t0 is not None:
            self.stats.elapsed_s = self.clock() - self.t0


class WindowedPublisher:
    """QoS 1 publisher with a bounded in-flight window, rate limit and ack accounting.

    ``username``/``password`` override the URL's; ``mqtt5`` makes the broker's
    PUBACK reason code count (an ACL refusal is then *rejected*, not acked --
    with MQTT 3.1.1 a broker acknowledges a refused publish all the same).
    """

    def __init__(self, broker_url: str, *, client_id: str = "", window: int = DEFAULT_WINDOW,
                 rate: float | None = None, keep_ids: bool = False,
                 username: str | None = None, password: str | None = None,
                 mqtt5: bool = False, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep,
                 shared: _Shared | None = None) -> None:
        self.address = BrokerAddress.parse(broker_url)
        self.keep_ids = keep_ids
        self._shared = shared or _Shared(window, rate, clock, sleep)
        self._lock = self._shared.lock
        self._pending: dict[int, _Pending] = {}
        self._early: set[int] = set()
        self._early_failed: set[int] = set()
        self._connected = threading.Event()
        self._connect_rc: Any = None
        self.mqtt5 = mqtt5
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=mqtt.MQTTv5 if mqtt5 else mqtt.MQTTv311)
        self.client.max_inflight_messages_set(min(window, MAX_WINDOW))
        self.client.max_queued_messages_set(0)
        user = username or self.address.username or DEFAULT_USERNAME
        self.client.username_pw_set(user, password if username else self.address.password)
        self.client.on_connect = self._on_connect
        self.client.on_publish = self._on_publish

    @property
    def stats(self) -> PublishStats:
        """Statistics of the run (shared with sibling connections)."""
        return self._shared.stats

    # -- lifecycle ----------------------------------------------------------------
    def connect(self, will: tuple[str, bytes] | None = None,
                timeout_s: float = CONNECT_TIMEOUT_S) -> WindowedPublisher:
        """Connect and start the network thread; raises :class:`FleetError`."""
        if will is not None:
            self.client.will_set(will[0], will[1], qos=1, retain=True)
        try:
            self.client.connect(self.address.host, self.address.port, keepalive=30)
        except OSError as e:
            raise FleetError(f"cannot reach broker {self.address.host}:{self.address.port}: "
                             f"{e}") from None
        self.client.loop_start()
        if not self._connected.wait(timeout_s) or self._connect_rc != 0:
            self.client.loop_stop()
            raise FleetError(f"broker {self.address.host}:{self.address.port} refused or did "
                             f"not answer: {self._connect_rc}")
        self._shared.start()
        return self

    def close(self, timeout_s: float = 30.0) -> bool:
        """Wait for outstanding acks (up to ``timeout_s``), then disconnect."""
        ok = self.drain(timeout_s)
        self.client.disconnect()
        self.client.loop_stop()
        return ok

    def __enter__(self) -> WindowedPublisher:
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, rc: Any,
                    properties: Any = None) -> None:
        self._connect_rc = rc.value if hasattr(rc, "value") else rc
        self._connected.set()

    # -- publishing -----------------------------------------------------------------
    def publish(self, topic: str, payload: bytes, *, readings: int = 1, kind: str = "",
                ids: Sequence[str] = (), on_ack: Callable[[], None] | None = None,
                retain: bool = False) -> None:
        """Publish at QoS 1; blocks while the window is full or the rate is ahead."""
        sh = self._shared
        sh.pace(readings)
        sh.slots.acquire()
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            sh.slots.release()
            raise FleetError(f"publish failed: {mqtt.error_string(info.rc)}")
        entry = _Pending(readings, kind, tuple(ids) if self.keep_ids else (), on_ack)
        with self._lock:
            st = sh.stats
            st.payloads_sent += 1
            st.readings_sent += readings
            st.sent_by_kind[kind] += readings
            sh.in_flight += 1
            st.max_in_flight = max(st.max_in_flight, sh.in_flight)
            if info.mid in self._early:
                self._early.discard(info.mid)
                self._done(entry, failed=info.mid in self._early_failed)
                self._early_failed.discard(info.mid)
            else:
                self._pending[info.mid] = entry

    def _on_publish(self, client: Any, userdata: Any, mid: int, rc: Any = None,
                    properties: Any = None) -> None:
        failed = bool(self.mqtt5 and rc is not None and getattr(rc, "is_failure", False))
        with self._lock:
            entry = self._pending.pop(mid, None)
            if entry is None:
                # the ack beat our bookkeeping (paho calls this under its own lock)
                self._early.add(mid)
                if failed:
                    self._early_failed.add(mid)
                return
            self._done(entry, failed=failed)

    def _done(self, entry: _Pending, *, failed: bool) -> None:
        # called with the shared lock held
        sh = self._shared
        s = sh.stats
        sh.in_flight -= 1
        if failed:
            s.payloads_rejected += 1
            s.readings_rejected += entry.readings
        else:
            s.payloads_acked += 1
            s.readings_acked += entry.readings
            s.acked_by_kind[entry.kind] += entry.readings
            s.acked_ids.update(entry.ids)
        sh.elapsed()
        sh.slots.release()
        if entry.on_ack is not None and not failed:
            entry.on_ack()
        sh.changed.notify_all()

    @property
    def in_flight(self) -> int:
        """Publishes of this connection not yet acknowledged."""
        with self._lock:
            return len(self._pending)

    def drain(self, timeout_s: float = 30.0) -> bool:
        """Wait until every publish is acknowledged; False on timeout."""
        sh = self._shared
        deadline = sh.clock() + timeout_s
        with self._lock:
            while self._pending:
                left = deadline - sh.clock()
                if left <= 0:
                    return False
                sh.changed.wait(min(left, 0.5))
            sh.elapsed()
        return True


class HubPublishers:
    """One MQTT connection per hub, each logged in as its hub (broker ACLs).

    A hub may publish only under its own id, so against a broker with the
    shipped ACL every simulated hub connects with its own user name (= hub
    id) and password from ``credentials``.  The window, the rate limit and
    the statistics are shared by all connections; the interface is that of
    :class:`WindowedPublisher`.
    """

    def __init__(self, broker_url: str, credentials: Mapping[str, str], *,
                 window: int = DEFAULT_WINDOW, rate: float | None = None,
                 keep_ids: bool = False, mqtt5: bool = False,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.broker_url = broker_url
        self.credentials = dict(credentials)
        self.keep_ids = keep_ids
        self.mqtt5 = mqtt5
        self.window = window
        self._shared = _Shared(window, rate, clock, sleep)
        self.hubs: dict[str, WindowedPublisher] = {}

    @property
    def stats(self) -> PublishStats:
        """Statistics of the run."""
        return self._shared.stats

    def connect(self) -> HubPublishers:
        """Connections open lazily, one per hub, on first publish."""
        self._shared.start()
        return self

    def hub(self, hub_id: str) -> WindowedPublisher:
        """The (connected) publisher of ``hub_id``."""
        pub = self.hubs.get(hub_id)
        if pub is None:
            if hub_id not in self.credentials:
                raise FleetError(f"no MQTT credentials for hub {hub_id!r}")
            pub = WindowedPublisher(self.broker_url, client_id=hub_id, window=self.window,
                                    keep_ids=self.keep_ids, username=hub_id,
                                    password=self.credentials[hub_id], mqtt5=self.mqtt5,
                                    shared=self._shared)
            status = WireStatus(schema="vitalgate.status/1", hub_id=hub_id,
                                state="offline", agent_version="simulator")
            pub.connect(will=(status_topic(hub_id), encode(status)))
            self.hubs[hub_id] = pub
        return pub

    def publish(self, topic: str, payload: bytes, **kw: Any) -> None:
        """Publish on the connection of the topic's hub."""
        self.hub(Topic.parse(topic).hub_id).publish(topic, payload, **kw)

    def drain(self, timeout_s: float = 30.0) -> bool:
        """Wait for every connection's acknowledgements."""
        results = [p.drain(timeout_s) for p in self.hubs.values()]  # all, even after a failure
        return all(results)

    def close(self, timeout_s: float = 30.0) -> bool:
        """Drain and disconnect every hub."""
        results = [p.close(timeout_s) for p in self.hubs.values()]  # close all of them
        return all(results)


Publisher = WindowedPublisher | HubPublishers


def open_publisher(broker_url: str, *, client_id: str = "",
                   credentials: Mapping[str, str] | None = None, window: int = DEFAULT_WINDOW,
                   rate: float | None = None, keep_ids: bool = False,
                   mqtt5: bool = False) -> Publisher:
    """A connected publisher: one shared connection, or one per hub with ``credentials``."""
    if credentials is not None:
        return HubPublishers(broker_url, credentials, window=window, rate=rate,
                             keep_ids=keep_ids, mqtt5=mqtt5).connect()
    return WindowedPublisher(broker_url, client_id=client_id, window=window, rate=rate,
                             keep_ids=keep_ids, mqtt5=mqtt5).connect()


def read_credentials(path: str | Path) -> dict[str, str]:
    """Hub credentials from a file of ``hub_id:password`` lines (``#`` comments)."""
    out: dict[str, str] = {}
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        hub, sep, password = line.partition(":")
        if not sep or not hub:
            raise FleetError(f"{path}:{n}: expected hub_id:password")
        out[hub] = password
    return out


# --------------------------------------------------------------------------- progress

class Progress:
    """A one-line progress indicator on stderr (``\\r``-rewritten, at most 4 Hz)."""

    def __init__(self, total: int | None, *, out: TextIO | None = None,
                 enabled: bool = True) -> None:
        self.total = total
        self.out = out or sys.stderr
        self.enabled = enabled
        self._last = 0.0
        self._t0 = time.monotonic()

    def __call__(self, sent: int, acked: int | None, sim_time: datetime | None = None,
                 force: bool = False) -> None:
        """Redraw the line (throttled unless ``force``)."""
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < 0.25:
            return
        self._last = now
        rate = (acked if acked is not None else sent) / max(now - self._t0, 1e-9)
        total = f"/{self.total}" if self.total else ""
        pct = f" {100 * sent / self.total:5.1f}%" if self.total else ""
        when = f" sim {sim_time:%Y-%m-%d %H:%M}Z" if sim_time else ""
        ack = f"  acked {acked}" if acked is not None else ""
        self.out.write(f"\r sent {sent}{total}{pct}{ack}  {rate:,.0f}/s{when}   ")
        self.out.flush()

    def done(self) -> None:
        """End the line."""
        if self.enabled:
            self.out.write("\n")
            self.out.flush()


# --------------------------------------------------------------------------- fast path

def _group(samples: Iterable[Sample], batch: int) -> Iterator[list[Sample]]:
    """Consecutive samples of one device, at most ``batch`` per group."""
    group: list[Sample] = []
    for s in samples:
        if group and (len(group) >= batch or group[0].patient_id != s.patient_id
                      or group[0].kind != s.kind):
            yield group
            group = []
        group.append(s)
    if group:
        yield group


def publish_samples(broker_url: str, samples: Iterable[Sample], *, batch: int = 1,
                    speed: float | None = None, window: int = DEFAULT_WINDOW,
                    rate: float | None = None, keep_ids: bool = False,
                    receive_delay: timedelta = timedelta(seconds=20),
                    progress: Callable[..., None] | None = None,
                    client_id: str = "", credentials: Mapping[str, str] | None = None,
                    mqtt5: bool = False, publisher: Publisher | None = None,
                    sim_start: datetime | None = None,
                    wall_clock: Callable[[], float] = time.monotonic,
                    sleep: Callable[[float], None] = time.sleep) -> PublishStats:
    """Fast path: publish samples as wire payloads (QoS 1) and wait for the acks.

    ``speed`` paces by simulated time (1 = real time, 86400 = a day per
    second; ``None`` = no pacing) from ``sim_start`` (default: the first
    sample).  Samples must come in measured-time order when paced.
    ``received_at`` is the measured time plus ``receive_delay``.  With
    ``credentials`` (hub id -> password) every hub publishes on its own
    connection, logged in as itself (see :class:`HubPublishers`).
    """
    pub = publisher or open_publisher(broker_url, client_id=client_id, credentials=credentials,
                                      window=window, rate=rate, keep_ids=keep_ids, mqtt5=mqtt5)
    sim0: datetime | None = sim_start
    wall0 = wall_clock()
    try:
        for group in _group(samples, max(1, batch)):
            first = group[0]
            if speed:
                if sim0 is None:
                    sim0 = first.measured_at
                due = wall0 + (first.measured_at - sim0).total_seconds() / speed
                delay = due - wall_clock()
                if delay > 0:
                    sleep(delay)
            rx = first.measured_at + receive_delay
            payload = next(wire_batches([first], received_at=rx))
            if len(group) > 1:
                readings = [next(wire_batches([s], received_at=rx)).readings[0] for s in group]
                payload = payload.model_copy(update={"readings": readings})
            pub.publish(readings_topic(payload.hub_id), encode(payload),
                        readings=len(group), kind=str(first.kind),
                        ids=[r.id for r in payload.readings])
            if progress is not None:
                progress(pub.stats.readings_sent, pub.stats.readings_acked, first.measured_at)
    finally:
        if publisher is None:
            pub.close()
        else:
            pub.drain()
    if progress is not None:
        progress(pub.stats.readings_sent, pub.stats.readings_acked, None, force=True)
    return pub.stats


def publish_status(pub: Publisher, hub_ids: Iterable[str], at: datetime,
                   state: Literal["online", "offline"] = "online") -> None:
    """Retained ``vitalgate.status/1`` for each hub."""
    for hub in hub_ids:
        msg = WireStatus(schema="vitalgate.status/1", hub_id=hub,
                         state=state, at=at, agent_version="simulator")
        pub.publish(status_topic(hub), encode(msg), readings=0, kind="status", retain=True)


def publish_panel(panel: Panel, broker_url: str, *, speed: float | None = None,
                  batch: int = 50, window: int = DEFAULT_WINDOW, rate: float | None = None,
                  keep_ids: bool = False, progress: Callable[..., None] | None = None,
                  status: bool = True, credentials: Mapping[str, str] | None = None,
                  mqtt5: bool = False) -> PublishStats:
    """Publish a panel's whole history (fast path), hub status first."""
    pub = open_publisher(broker_url, client_id=f"sim-{panel.practice.id}",
                         credentials=credentials, window=window, rate=rate, keep_ids=keep_ids,
                         mqtt5=mqtt5)
    try:
        if status:
            publish_status(pub, (h.id for h in panel.hubs),
                           datetime.combine(panel.start, datetime.min.time(), UTC))
        # history in per-patient order batches well; pacing needs global time order
        samples: Iterable[Sample] = (
            panel.samples() if speed else
            (s for p in panel.profiles
             for s in sorted(panel.patient_samples(p.patient_id),
                             key=lambda x: (x.kind, x.measured_at))))
        stats = publish_samples(broker_url, samples, batch=batch if not speed else 1,
                                speed=speed, progress=progress, publisher=pub)
    finally:
        pub.close()
    return stats


# --------------------------------------------------------------------------- full path

def _counting_outbox(path: str | Path) -> Any:
    """An edge :class:`~edge_agent.outbox.Outbox` that remembers what was added."""
    from edge_agent.outbox import Outbox, QueuedReading

    class CountingOutbox(Outbox):
        added: list[tuple[str, str]]

        def add(self, item: QueuedReading) -> bool:
            new = super().add(item)
            if new:
                self.added.append((item.id, str(item.device.kind)))
            return new

    box = CountingOutbox(path)
    box.added = []
    return box


class FullPathHub:
    """One patient's hub running the real edge session over simulated devices.

    Samples are measured on :class:`~simulators.devices.SimulatedDevice`\\ s;
    when the hub is online it connects shortly after each measurement and the
    edge :class:`~edge_agent.session.DeviceSession` decodes the GATT bytes into
    its SQLite outbox.  The outbox is drained either by the edge agent's own
    :class:`~edge_agent.publisher.Publisher` (:meth:`edge_publisher`, one
    connection per hub, as deployed) or by :meth:`drain` over a shared
    simulator connection; rows leave the outbox only when the broker acked.
    """

    def __init__(self, hub_id: str, patient_id: str, kinds: Iterable[DeviceKind], *,
                 timezone: str, outbox_path: str | Path, seed: int = 0,
                 clocks: dict[DeviceKind, DeviceClock] | None = None,
                 device_options: dict[DeviceKind, dict[str, Any]] | None = None) -> None:
        from edge_agent.session import DeviceSession, PairedDevice

        self.hub_id = hub_id
        self.tz = ZoneInfo(timezone)
        self.outbox = _counting_outbox(outbox_path)
        self.now = datetime(2000, 1, 1, tzinfo=UTC)
        self.devices: dict[DeviceKind, SimulatedDevice] = {}
        self.sessions: dict[DeviceKind, Any] = {}
        for kind in kinds:
            opts = dict((device_options or {}).get(kind, {}))
            clock = (clocks or {}).get(kind)
            if clock is not None:
                opts["clock"] = clock
            d = make_device(kind, device_serial(patient_id, kind), timezone=timezone,
                            seed=seed, model=DEVICE_MODEL[kind], **opts)
            self.devices[kind] = d
            self.sessions[kind] = DeviceSession(PairedDevice(d.address, kind), self.outbox,
                                                tz=self.tz, now=lambda: self.now)
        self.results: list[Any] = []
        # filled on paho's network thread, applied to the outbox on the caller's
        self._acks: deque[list[int]] = deque()
        self._published_seq = 0

    def edge_publisher(self, broker_url: str, password: str | None = None,
                       window: int = DEFAULT_WINDOW) -> Any:
        """The edge agent's publisher for this hub's outbox (logs in as the hub)."""
        from edge_agent.publisher import BrokerSettings, Publisher

        addr = BrokerAddress.parse(broker_url)
        broker = BrokerSettings(f"mqtt://{addr.host}:{addr.port}", username=self.hub_id,
                                password=password, client_id=self.hub_id)
        return Publisher(self.outbox, hub_id=self.hub_id, broker=broker, now=lambda: self.now,
                         window=window, jitter=None, max_delay_s=1.0,
                         agent_version="simulator")

    def stats(self, stats: PublishStats | None = None, *, keep_ids: bool = False,
              ) -> PublishStats:
        """Add this hub's counts (added to / acknowledged out of the outbox) to ``stats``."""
        out = stats or PublishStats()
        for rid, kind in self.outbox.added:
            out.readings_sent += 1
            out.sent_by_kind[kind] += 1
            if self.outbox.was_published(rid):
                out.readings_acked += 1
                out.acked_by_kind[kind] += 1
                if keep_ids:
                    out.acked_ids.add(rid)
        return out

    async def sync(self, kind: DeviceKind, at: datetime) -> None:
        """Connect to the device of ``kind`` at ``at`` and run one session."""
        from simulators.gattlink import SimGattLink

        self.now = at
        device = self.devices[kind]
        self.results.append(await self.sessions[kind].run(SimGattLink(device, lambda: self.now)))

    async def live(self, samples: Iterable[Sample], *, connect_after: timedelta =
                   timedelta(seconds=30), offline: Sequence[tuple[datetime, datetime]] = (),
                   failed_every: int = 0) -> int:
        """Measure each sample and sync right after it unless the hub is ``offline``
        then; after an outage the backlog goes on the next sync.  Every
        ``failed_every``-th measurement first fails once (NaN / 0xFFFF)."""
        n = 0
        outages = sorted(offline)
        reconnects = [b for _, b in outages]

        async def reconnect_until(t: datetime) -> None:
            # after an outage the hub reconnects and the devices' backlogs go out
            while reconnects and reconnects[0] <= t:
                b = reconnects.pop(0)
                for kind, device in self.devices.items():
                    if device.pending or kind is DeviceKind.GLUCOMETER:
                        await self.sync(kind, b)

        for i, s in enumerate(samples):
            device = self.devices.get(s.kind)
            if device is None:
                continue
            await reconnect_until(s.measured_at)
            if failed_every and i % failed_every == failed_every - 1:
                device.measure(None, at=s.measured_at - timedelta(minutes=1), failed=True)
            device.measure(s)
            n += 1
            at = s.measured_at + connect_after
            if not any(a <= at < b for a, b in outages):
                await self.sync(s.kind, at)
        await reconnect_until(datetime.max.replace(tzinfo=UTC))
        return n

    def drain(self, pub: Publisher, *, limit: int = 500, wait: bool = True) -> int:
        """Publish outbox rows not yet published (one payload per device run); the
        outbox rows are acknowledged by :meth:`commit_acks` once the broker acked them."""
        sent = 0
        while True:
            rows = self.outbox.pending(after_seq=self._published_seq, limit=limit)
            if not rows:
                break
            self._published_seq = rows[-1].seq
            for group in _rows_by_device(rows):
                device = json.loads(group[0].device_json)
                readings = [json.loads(r.reading_json) for r in group]
                payload = json.dumps({"schema": "vitalgate.readings/1", "hub_id": self.hub_id,
                                      "sent_at": self.now.isoformat(), "device": device,
                                      "readings": readings}, separators=(",", ":")).encode()
                seqs = [r.seq for r in group]
                pub.publish(readings_topic(self.hub_id), payload, readings=len(group),
                            kind=str(device.get("kind", "")), ids=[r.reading_id for r in group],
                            on_ack=partial(self._acks.append, seqs))
                sent += len(group)
        if wait:
            pub.drain()
        return sent

    def commit_acks(self) -> int:
        """Remove acknowledged rows from the outbox (on the caller's thread)."""
        n = 0
        while self._acks:
            n += self.outbox.ack(self._acks.popleft())
        return n

    def close(self) -> None:
        """Close the outbox."""
        self.outbox.close()


def _rows_by_device(rows: Sequence[Any]) -> Iterator[list[Any]]:
    group: list[Any] = []
    for r in rows:
        if group and r.serial != group[0].serial:
            yield group
            group = []
        group.append(r)
    if group:
        yield group


def run_full_path(panel: Panel, broker_url: str, workdir: str | Path, *,
                  speed: float | None = None, window: int = DEFAULT_WINDOW,
                  keep_ids: bool = False, progress: Callable[..., None] | None = None,
                  samples: Iterable[Sample] | None = None,
                  credentials: Mapping[str, str] | None = None, mqtt5: bool = False,
                  edge_publisher: bool = True, drain_timeout_s: float = 60.0,
                  wall_clock: Callable[[], float] = time.monotonic) -> PublishStats:
    """Full path for a whole panel: devices -> GATT -> edge session -> outbox -> MQTT.

    Samples (default: the panel's history) are played in measured-time order;
    each hub syncs its device right after a measurement.  With
    ``edge_publisher`` (default) every hub runs the edge agent's own
    publisher (one connection per hub, user = hub id, password from
    ``credentials``); otherwise outboxes drain over one simulator connection
    (``mqtt5`` applies to that one).  ``speed`` paces simulated time as in
    :func:`publish_samples`.  Counts come from the outboxes: a reading is
    acknowledged when the outbox recorded its PUBACK.
    """
    hubs = {p.patient_id: FullPathHub(hub_id_for(p.patient_id), p.patient_id, p.device_kinds,
                                      timezone=p.timezone, seed=panel.seed,
                                      outbox_path=Path(workdir) / f"{p.patient_id}.db")
            for p in panel.profiles}
    shared = None if edge_publisher else open_publisher(
        broker_url, client_id=f"sim-full-{panel.practice.id}", credentials=credentials,
        window=window, keep_ids=keep_ids, mqtt5=mqtt5)
    t0 = wall_clock()

    def current() -> PublishStats:
        st = PublishStats()
        for hub in hubs.values():
            hub.stats(st, keep_ids=keep_ids)
        st.elapsed_s = wall_clock() - t0
        return st

    async def play() -> None:
        stop = asyncio.Event()
        pubs: dict[str, Any] = {}
        tasks = []
        if edge_publisher:
            for pid, hub in hubs.items():
                pubs[pid] = hub.edge_publisher(broker_url, (credentials or {}).get(hub.hub_id),
                                               window)
                tasks.append(asyncio.create_task(pubs[pid].run(stop)))
        sim0: datetime | None = None
        wall0 = wall_clock()
        stream = samples if samples is not None else panel.samples()
        for sent, s in enumerate(stream, 1):
            if speed:
                sim0 = sim0 or s.measured_at
                delay = wall0 + (s.measured_at - sim0).total_seconds() / speed - wall_clock()
                if delay > 0:
                    await asyncio.sleep(delay)
            hub = hubs[s.patient_id]
            await hub.live([s])
            if shared is not None:
                hub.drain(shared, wait=False)
                hub.commit_acks()
            else:
                pubs[s.patient_id].notify()
                await asyncio.sleep(0)
            if progress is not None:
                progress(sent, None, s.measured_at)
        if edge_publisher:
            deadline = wall_clock() + drain_timeout_s
            # the outbox has no "empty" event to wait on: poll it like the agent's status does
            while any(h.outbox.depth() for h in hubs.values()) and wall_clock() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            stop.set()
            await asyncio.gather(*tasks)

    try:
        asyncio.run(play())
        if shared is not None:
            shared.drain()
            for hub in hubs.values():
                hub.commit_acks()
        stats = current()
        if shared is not None:
            stats.payloads_sent = shared.stats.payloads_sent
            stats.payloads_acked = shared.stats.payloads_acked
            stats.max_in_flight = shared.stats.max_in_flight
            stats.readings_rejected = shared.stats.readings_rejected
            stats.payloads_rejected = shared.stats.payloads_rejected
    finally:
        if shared is not None:
            shared.close()
        for hub in hubs.values():
            hub.close()
    if progress is not None:
        progress(stats.readings_sent, stats.readings_acked, None, force=True)
    return stats


# --------------------------------------------------------------------------- load

_LOAD_KINDS: tuple[tuple[DeviceKind, tuple[tuple[Metric, float, float], ...]], ...] = (
    (DeviceKind.SCALE, ((Metric.WEIGHT, 85.0, 12.0),)),
    (DeviceKind.BP_CUFF, ((Metric.SYSTOLIC, 128.0, 10.0), (Metric.DIASTOLIC, 79.0, 6.0),
                          (Metric.PULSE, 72.0, 6.0))),
    (DeviceKind.PULSE_OXIMETER, ((Metric.SPO2, 96.0, 1.0), (Metric.PULSE, 72.0, 6.0))),
    (DeviceKind.GLUCOMETER, ((Metric.GLUCOSE, 130.0, 20.0),)),
)


def load_payloads(*, hubs: int, total: int, batch: int = 1, seed: int = 0,
                  start: datetime, step: timedelta = timedelta(minutes=10),
                  prefix: str = "load") -> Iterator[tuple[str, bytes, int, str, list[str]]]:
    """Synthetic ``(topic, payload, readings, kind, ids)`` for load runs (schema-valid).

    Hub ``h`` owns patient ``{prefix}{h:06d}`` and one device of each kind; readings
    rotate over hubs and kinds, ``step`` apart per device, values from a normal
    distribution around typical means.  JSON is built directly (no pydantic).
    """
    rng = np.random.default_rng(seed)
    made = 0
    counter = 0
    while made < total:
        h = counter % hubs
        kind, metrics = _LOAD_KINDS[(counter // hubs) % len(_LOAD_KINDS)]
        round_no = counter // (hubs * len(_LOAD_KINDS))
        counter += 1
        pid = f"{prefix}{h:06d}"
        serial = device_serial(pid, kind)
        n = min(batch, total - made)
        noise = rng.normal(size=(n, len(metrics)))
        readings = []
        ids = []
        for j in range(n):
            at = start + step * (round_no * batch + j)
            rid = f"{serial}:{int(at.timestamp())}"
            ids.append(rid)
            iso = at.isoformat()
            values = [{"metric": str(m), "value": round(mean + sd * float(noise[j, k]), 1),
                       "unit": str(CANONICAL_UNIT[m])} for k, (m, mean, sd) in enumerate(metrics)]
            readings.append({"id": rid, "measured_at": iso, "clock_offset_s": 0.0,
                             "received_at": iso, "values": values})
        doc = {"schema": "vitalgate.readings/1", "hub_id": hub_id_for(pid),
               "device": {"serial": serial, "kind": str(kind), "model": DEVICE_MODEL[kind]},
               "readings": readings}
        made += n
        yield (readings_topic(hub_id_for(pid)), json.dumps(doc, separators=(",", ":")).encode(),
               n, str(kind), ids)


def run_load(broker_url: str, *, readings: int, hubs: int = 1000, rate: float | None = None,
             window: int = DEFAULT_WINDOW, batch: int = 1, seed: int = 0,
             start: datetime | None = None, keep_ids: bool = False,
             credentials: Mapping[str, str] | None = None, mqtt5: bool = False,
             progress: Callable[..., None] | None = None) -> PublishStats:
    """Benchmark load: ``readings`` synthetic readings from ``hubs`` hubs at ``rate``/s."""
    t0 = start or datetime(2026, 1, 1, tzinfo=UTC)
    pub = open_publisher(broker_url, client_id=f"sim-load-{seed}", credentials=credentials,
                         window=window, rate=rate, keep_ids=keep_ids, mqtt5=mqtt5)
    try:
        for topic, payload, n, kind, ids in load_payloads(hubs=hubs, total=readings, batch=batch,
                                                          seed=seed, start=t0):
            pub.publish(topic, payload, readings=n, kind=kind, ids=ids)
            if progress is not None:
                progress(pub.stats.readings_sent, pub.stats.readings_acked, None)
    finally:
        pub.close(timeout_s=120.0)
    if progress is not None:
        progress(pub.stats.readings_sent, pub.stats.readings_acked, None, force=True)
    return pub.stats
