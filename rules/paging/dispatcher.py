"""The dispatcher: advance expired policy waits, then deliver due pages.

How this works: :meth:`Dispatcher.run_once` first claims escalations whose
policy wait is over and lets the engine re-page or escalate (pages due at
once), then claims due pending pages with a lease (``FOR UPDATE SKIP LOCKED``
on PostgreSQL), sends each on its channel and records the attempt: sent with
the provider's answer, or pending again after :func:`retry_delay`, or failed
after :data:`MAX_TRIES` or a non-retryable answer.  A dispatcher that dies
between sending and recording leaves the page leased; after the lease
expires another dispatcher sends it again with the same page id, which
receivers use as the idempotency key (PagerDuty also dedupes by escalation).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.store.base import NotFound
from gateway.store.paging_store import Page
from rules.paging.channels import Channel, DeliveryResult, PageMessage, build_message
from rules.paging.outbox import PagingEngine

log = logging.getLogger(__name__)

#: First retry after a failed delivery; doubled each further failure, capped.
RETRY_BASE = timedelta(seconds=30)
RETRY_FACTOR = 2
RETRY_MAX = timedelta(minutes=10)
#: Attempts before a page is marked failed.
MAX_TRIES = 8
#: How long a claimed page or policy position is this worker's.
LEASE = timedelta(seconds=60)
BATCH = 50


def retry_delay(tries: int) -> timedelta:
    """Wait before the next attempt after ``tries`` failed ones (>= 1)."""
    factor: int = RETRY_FACTOR ** min(max(tries - 1, 0), 20)  # 2**20 x 30 s >> RETRY_MAX
    return min(RETRY_BASE * factor, RETRY_MAX)


@dataclass(slots=True)
class DispatchStats:
    """What one :meth:`Dispatcher.run_once` did."""

    advanced: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0


class Dispatcher:
    """Delivers pages from the outbox; any number may run against one store."""

    def __init__(self, store: Any, channels: Mapping[str, Channel],
                 clock: Callable[[], datetime] | None = None, worker: str = "w1", *,
                 engine: PagingEngine | None = None, lease: timedelta = LEASE,
                 max_tries: int = MAX_TRIES) -> None:
        self.store, self.channels, self.worker = store, dict(channels), worker
        self.clock = clock or (lambda: datetime.now(UTC))
        engine = engine or store.paging_engine
        if engine is None:
            raise ValueError("install_paging(store, ...) before starting a Dispatcher")
        self.engine: PagingEngine = engine
        self.lease, self.max_tries = lease, max_tries

    def run_once(self) -> DispatchStats:
        """Advance due policy steps, then send due pages."""
        stats = DispatchStats()
        now = self.clock()
        for esc_id in self.store.claim_due_paging(now, self.worker, now + self.lease, BATCH):
            try:
                self.engine.advance(esc_id, now)
                stats.advanced += 1
            except Exception:  # one bad escalation must not stop the others
                log.exception("advancing paging policy of escalation %s failed", esc_id)
        now = self.clock()
        for page in self.store.claim_due_pages(now, self.worker, now + self.lease, BATCH):
            if self.store.page_status(page.id) != "pending":  # cancelled since the claim
                continue
            result = self._send(page, now)
            done = self.clock()
            if result.ok:
                self.store.finish_page(page, done, self.worker, ok=True,
                                       status_code=result.status_code,
                                       provider_id=result.provider_id, answer=result.answer)
                stats.sent += 1
            elif result.retryable and page.tries + 1 < self.max_tries:
                self.store.finish_page(page, done, self.worker, ok=False,
                                       status_code=result.status_code, error=result.error,
                                       retry_at=done + retry_delay(page.tries + 1))
                stats.retried += 1
            else:
                self.store.finish_page(page, done, self.worker, ok=False,
                                       status_code=result.status_code, error=result.error)
                log.warning("page %s (%s) failed for good: %s", page.id, page.channel,
                            result.error)
                stats.failed += 1
        return stats

    def _send(self, page: Page, now: datetime) -> DeliveryResult:
        channel = self.channels.get(page.channel)
        if channel is None:
            return DeliveryResult(False, error=f"channel {page.channel} is not configured")
        try:
            message = self._message(page, now)
        except Exception as exc:  # e.g. the policy cannot be loaded: retry later
            log.exception("building page %s failed", page.id)
            return DeliveryResult(False, error=f"{type(exc).__name__}: {exc}", retryable=True)
        try:
            return channel.send(message)
        except Exception as exc:  # a channel bug is a failed, retryable attempt
            log.exception("channel %s raised", page.channel)
            return DeliveryResult(False, error=f"{type(exc).__name__}: {exc}", retryable=True)

    def _message(self, page: Page, now: datetime) -> PageMessage:
        esc = self.store.get_escalation(page.escalation_id)
        try:
            patient = self.store.get_patient(esc.patient_id)
        except NotFound:
            patient = None
        contact = self.engine.policy_for_practice(esc.practice_id).contacts.get(page.recipient)
        return build_message(
            page_id=page.id, kind=page.kind, escalation=esc, patient=patient,
            recipient=page.recipient, address=contact.address(page.channel) if contact else None,
            public_url=self.engine.public_url, secret_key=self.engine.secret_key, now=now,
            ack_ttl=self.engine.ack_ttl)
