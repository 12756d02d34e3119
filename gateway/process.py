"""``vitalgate up``: ingest, rules, timers, paging and the API in one process.

This is the one module that wires every package together (the CLI's
composition root), so it imports them lazily inside functions.  Lifetimes:
the store is opened and migrated first; the rules runtime catches up on
anything ingested since its checkpoint before ingest starts consuming; the
ingest service (with the embedded broker when no broker URL is set) hands
every committed batch to the rules runtime; a timer thread fires due rule
timers and, when paging is configured, the dispatcher delivers pages; the API
serves on ``api_host:api_port``.  ``stop()`` runs in the reverse order:
stop consuming and flush the batch first, then timers, then the store.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.settings import Settings, redact_url
from gateway.store import Store, open_store

log = logging.getLogger(__name__)

#: How often due rule timers and idle-state eviction are checked.
TIMER_TICK_S = 1.0
#: How often billing outreach (at-risk periods, minutes short) is recomputed.
OUTREACH_EVERY = timedelta(hours=1)


def wall_clock() -> datetime:
    """The real clock (the only place Vitalgate reads it)."""
    return datetime.now(UTC)


class Gateway:
    """Runs every server-side component of Vitalgate in one process."""

    def __init__(self, settings: Settings, *, clock: Callable[[], datetime] = wall_clock,
                 store: Store | None = None) -> None:
        self.settings = settings
        self.clock = clock
        self._store = store
        self._own_store = store is None
        self.rules: Any = None
        self.ingest: Any = None
        self.metrics: Any = None
        self.paging: Any = None
        self._stop = threading.Event()
        self._timer_thread: threading.Thread | None = None

    @property
    def store(self) -> Store:
        """The open store (after :meth:`start`)."""
        assert self._store is not None, "gateway not started"
        return self._store

    def start(self) -> None:
        """Open the store, catch up the rules, start ingest and the timer loop."""
        from ingest.metrics import IngestMetrics
        from ingest.service import IngestService
        from rules.runtime import RulesRuntime

        s = self.settings
        if self._store is None:
            self._store = open_store(s.resolved_database_url, s.db_pool_size)
        self._store.migrate()
        self.rules = RulesRuntime(self._store, clock=self.clock,
                                  late_bound=timedelta(hours=s.late_bound_hours))
        self.rules.catch_up()
        self.paging = self._start_paging()
        self.metrics = IngestMetrics()
        self.ingest = IngestService(s, store=self._store, consumer=self.rules.on_committed,
                                    metrics=self.metrics, now=self.clock)
        self.ingest.start()
        self._stop.clear()
        self._timer_thread = threading.Thread(target=self._timer_loop, name="rule-timers",
                                              daemon=True)
        self._timer_thread.start()
        log.info("gateway running: store %s, broker %s", self._store.url.split(":", 1)[0],
                 redact_url(s.resolved_broker_url))

    def _start_paging(self) -> Any:
        """Hook paging into the store (queue only unless a paging policy is configured)."""
        from rules.paging.wiring import start_paging

        return start_paging(self.settings, self.store, clock=self.clock)

    def _timer_loop(self) -> None:
        from gateway.outreach import run_outreach

        last_evict = self.clock()
        last_outreach: datetime | None = None
        while not self._stop.wait(TIMER_TICK_S):
            now = self.clock()
            try:
                self.rules.run_due_timers(now)
                if now - last_evict > timedelta(minutes=10):
                    self.rules.evict_idle(now)
                    last_evict = now
                if last_outreach is None or now - last_outreach >= OUTREACH_EVERY:
                    last_outreach = now
                    run_outreach(self.store, now)
                    self._retention(now)
            except Exception:  # a timer failure must not stop the loop
                log.exception("rule timers failed; retrying on the next tick")

    def _retention(self, now: datetime) -> None:
        """Vitalgate's own retention job (``drop_chunks`` on TimescaleDB), hourly."""
        days = self.settings.retention_days
        if days is not None:
            dropped = self.store.drop_readings_before(now - timedelta(days=days))  # type: ignore[attr-defined]
            if dropped:
                log.info("retention: dropped readings older than %d days (%d)", days, dropped)

    def app(self) -> Any:
        """The FastAPI app bound to this gateway's store and metrics."""
        from api.app import create_app
        from ingest.quarantine import release
        from rules.paging.trace import trace_rows

        s = self.settings
        return create_app(s, self.store, clock=self.clock, metrics_render=self.render_metrics,
                          notification_trace=trace_rows(self.store),
                          quarantine_release=lambda item_id, by, now: release(
                              self.store, item_id, by=by, now=now,
                              future_tolerance_s=s.future_tolerance_s,
                              late_bound_hours=s.late_bound_hours,
                              max_payload_bytes=s.max_payload_bytes))

    def render_metrics(self) -> bytes:
        """Prometheus text of ingest (and rules) metrics."""
        return self.metrics.render() if self.metrics is not None else b""

    def stop(self) -> None:
        """Stop consuming (flushing the batch), the timers, paging, then close the store."""
        if self.ingest is not None:
            self.ingest.stop()
            self.ingest = None
        self._stop.set()
        if self._timer_thread is not None:
            self._timer_thread.join(10)
            self._timer_thread = None
        if self.paging is not None:
            self.paging.stop()
            self.paging = None
        if self._own_store and self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> Gateway:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(settings: Settings, gateway: Gateway,
          on_started: Callable[[], None] | None = None,
          before_stop: Callable[[], None] | None = None) -> None:
    """Run the API with uvicorn in this thread until Ctrl-C, then stop the gateway.

    ``before_stop`` runs first on the way out (e.g. stop the demo's publishers
    so nothing new arrives while ingest flushes).
    """
    import uvicorn

    config = uvicorn.Config(gateway.app(), host=settings.api_host, port=settings.api_port,
                            log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    if on_started is not None:
        def _watch() -> None:
            while not server.started and not server.should_exit:
                threading.Event().wait(0.05)
            if server.started:
                on_started()

        threading.Thread(target=_watch, name="on-started", daemon=True).start()
    try:
        server.run()
    finally:
        if before_stop is not None:
            before_stop()
        gateway.stop()
