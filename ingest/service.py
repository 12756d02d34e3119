"""``IngestService``: broker connection + pipeline + worker thread, start/stop.

How this works: the source (paho) enqueues :class:`InboundMessage` values
from its network thread; one worker thread takes them off the queue, feeds
the :class:`~ingest.pipeline.Pipeline` and flushes when a batch is due.  The
queue needs no bound of its own: the broker never has more than the
announced Receive Maximum of unacknowledged messages in flight to us, and
nothing is acknowledged before it is committed (back-pressure, not loss).

A failing commit is retried with :func:`backoff`; after
:data:`ISOLATE_AFTER` failures in a row the batch is committed message by
message so one poison message is quarantined instead of blocking everything.

``stop()`` is graceful: stop taking messages from the broker, drain the
queue, commit and acknowledge the last batch, disconnect, close.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from gateway.settings import Settings
from gateway.store import Store, open_store
from ingest.broker import EmbeddedBroker
from ingest.metrics import IngestMetrics
from ingest.mqtt import BrokerAddress, PahoSource
from ingest.pipeline import Consumer, Pipeline
from ingest.registry import Registry, WeightHistory
from ingest.source import InboundMessage, MessageSource

log = logging.getLogger(__name__)

#: Commit failures in a row before committing message by message.
ISOLATE_AFTER = 3
#: Retry back-off: first delay and cap (a database restart takes seconds).
BACKOFF_FIRST_S, BACKOFF_CAP_S = 0.1, 5.0
#: How long the worker blocks on an empty queue before re-checking stop.
IDLE_POLL_S = 0.2
#: Username the embedded broker session uses (amqtt keeps offline messages
#: only for named sessions).
EMBEDDED_USERNAME = "ingest"


def backoff(failures: int) -> float:
    """Delay before retry number ``failures`` (1-based): doubling, capped."""
    return float(min(BACKOFF_CAP_S, BACKOFF_FIRST_S * 2.0 ** max(0, failures - 1)))


def source_from_settings(settings: Settings) -> PahoSource:
    """The paho source the settings describe (embedded broker: MQTT 3.1.1)."""
    address = BrokerAddress.parse(settings.resolved_broker_url)
    if settings.embedded_broker:
        address = BrokerAddress(address.host, address.port, username=EMBEDDED_USERNAME)
    return PahoSource(
        address, client_id=settings.mqtt_client_id, mqtt5=not settings.embedded_broker,
        share_group=settings.mqtt_share_group,
        receive_maximum=max(1000, 2 * settings.ingest_batch_max),
        ca_file=settings.mqtt_ca_file)


class IngestService:
    """Runs ingest: ``start()`` returns once running, ``stop()`` flushes and closes.

    Everything is injectable: ``store`` (else opened from settings and
    migrated; closed on stop), ``source`` (else paho from settings),
    ``consumer`` (called with committed readings), ``metrics``, and the
    clocks.  ``start_broker`` runs the embedded amqtt broker when the settings
    name none (default: when ``settings.embedded_broker``).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        store: Store | None = None,
        source: MessageSource | None = None,
        consumer: Consumer | None = None,
        metrics: IngestMetrics | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
        start_broker: bool | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics or IngestMetrics()
        self._store = store
        self._own_store = store is None
        self._source = source
        self._consumer = consumer
        self._now = now
        self._monotonic = monotonic
        self._start_broker = (settings.embedded_broker and source is None
                              if start_broker is None else start_broker)
        self.broker: EmbeddedBroker | None = None
        self.registry: Registry | None = None
        self.pipeline: Pipeline | None = None
        self._queue: queue.SimpleQueue[InboundMessage] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._committer_idle = threading.Event()
        self._worker: threading.Thread | None = None

    @property
    def store(self) -> Store:
        """The store in use (after ``start``)."""
        assert self._store is not None, "IngestService not started"
        return self._store

    @property
    def source(self) -> MessageSource:
        """The message source in use (after ``start``)."""
        assert self._source is not None, "IngestService not started"
        return self._source

    def start(self, connect_timeout: float | None = 10.0) -> None:
        """Open the store, start the broker if embedded, connect and start the worker."""
        s = self.settings
        if self._store is None:
            self._store = open_store(s.resolved_database_url, s.db_pool_size)
            self._store.migrate()
        if self._start_broker:
            self.broker = EmbeddedBroker(s.embedded_broker_host, s.embedded_broker_port)
            self.broker.start()
        if self._source is None:
            self._source = source_from_settings(s)
        self.registry = Registry(self._store, self._monotonic)
        self.pipeline = Pipeline(
            self._store, self._source.ack, registry=self.registry,
            weights=WeightHistory(self._store), metrics=self.metrics, now=self._now,
            consumer=self._consumer, monotonic=self._monotonic,
            batch_max=s.ingest_batch_max, batch_ms=s.ingest_batch_ms,
            max_payload_bytes=s.max_payload_bytes, future_tolerance_s=s.future_tolerance_s,
            late_bound_hours=s.late_bound_hours)
        self._stopping.clear()
        self._worker = threading.Thread(target=self._run, name="ingest-worker", daemon=True)
        self._worker.start()
        self._source.start(self._queue.put)
        if connect_timeout is not None and isinstance(self._source, PahoSource) \
                and not self._source.wait_connected(connect_timeout):
            log.warning("not connected to the broker after %.0f s; still trying",
                        connect_timeout)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop consuming, commit and acknowledge what was received, disconnect, close."""
        if self._source is not None:
            self._source.pause()
        self._stopping.set()
        if self._worker is not None:
            self._worker.join(timeout)
            if self._worker.is_alive():
                log.error("ingest worker did not finish within %.0f s; unacknowledged "
                          "messages will be redelivered", timeout)
            self._worker = None
        if self._source is not None:
            self._source.stop()
        if self.broker is not None:
            self.broker.stop()
            self.broker = None
        if self._own_store and self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> IngestService:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- worker and committer ---------------------------------------------------
    def _run(self) -> None:
        """Decode and validate; hand due batches to the committer thread.

        Committing runs on its own thread so decoding the next batch overlaps
        the database round trips (psycopg and sqlite3 release the GIL while
        waiting).  The hand-off holds one batch: if the committer falls
        behind, this thread waits (back-pressure towards the broker).
        """
        p = self.pipeline
        assert p is not None
        batches: queue.Queue[list[Any] | None] = queue.Queue(maxsize=1)
        self._committer_idle = threading.Event()
        self._committer_idle.set()
        committer = threading.Thread(target=self._commit_loop, args=(batches,),
                                     name="ingest-committer", daemon=True)
        committer.start()
        try:
            while True:
                wait = p.seconds_until_due()
                wait = IDLE_POLL_S if wait is None else min(wait, IDLE_POLL_S)
                try:
                    msg = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
                    p.handle(msg)
                    while not p.full():
                        p.handle(self._queue.get_nowait())
                except queue.Empty:
                    pass
                drained = self._stopping.is_set() and self._queue.empty()
                # Group commit: besides the size/time bounds, commit at once when
                # nothing else is waiting and the committer is idle, so light load
                # sees one round trip of latency and heavy load gets big batches.
                idle = (p.pending_messages and self._queue.empty()
                        and self._committer_idle.is_set())
                if p.due() or idle or (drained and p.pending_messages):
                    self._committer_idle.clear()
                    batches.put(p.take())
                if drained and not p.pending_messages:
                    return
        finally:
            batches.put(None)
            committer.join()

    def _commit_loop(self, batches: queue.Queue[list[Any] | None]) -> None:
        p = self.pipeline
        assert p is not None
        while True:
            if batches.empty():
                self._committer_idle.set()
            work = batches.get()
            if work is None:
                return
            self._committer_idle.clear()
            failures = 0
            while work:
                try:
                    if failures >= ISOLATE_AFTER:
                        p.commit_isolating(work)
                    else:
                        p.commit(work)
                    break
                except Exception:  # keep the batch, retry after a pause
                    failures += 1
                    self.metrics.flush_failures.inc()
                    log.exception("commit failed (%d in a row); retrying", failures)
                    if self._stopping.wait(backoff(failures)) and failures > ISOLATE_AFTER + 3:
                        log.error("giving up on %d messages at stop; the broker redelivers "
                                  "them", len(work))
                        break
