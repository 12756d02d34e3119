"""Quarantine review: release (re-validate and store) or discard an item.

Release re-runs the full validation on the stored payload; only when the
item was quarantined for time review (:data:`~ingest.validate.TIME_REVIEW_CODES`)
is the time check skipped, because a person has looked at it.  An item that
still fails stays pending and the caller is told why.  Truncated payloads
(oversized originals) can never pass and are only discarded.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from gateway.store import NotFound, Store
from gateway.topics import READINGS, Topic, TopicError
from gateway.wire import WireError, decode_readings
from ingest.registry import Registry, WeightHistory
from ingest.validate import TIME_REVIEW_CODES, Rejection, validate_readings


class ReviewError(Exception):
    """The item cannot be released or discarded (not pending, not a readings payload)."""


@dataclass(frozen=True, slots=True)
class ReleaseResult:
    """Outcome of a release: stored/duplicate counts, or why it still fails."""

    item_id: int
    stored: int = 0
    duplicates: int = 0
    still_refused: Rejection | None = None

    @property
    def released(self) -> bool:
        """True when the item's readings are now in the store."""
        return self.still_refused is None


def release(store: Store, item_id: int, *, by: str, now: datetime,
            future_tolerance_s: float = 600, late_bound_hours: float = 12.0,
            max_payload_bytes: int = 1024 * 1024) -> ReleaseResult:
    """Re-validate a pending item's payload and store its readings; mark it released."""
    item = store.get_quarantine(item_id)
    if item.status != "pending":
        raise ReviewError(f"quarantine item {item_id} is {item.status}, not pending")
    try:
        topic = Topic.parse(item.topic)
    except TopicError as exc:
        raise ReviewError(f"item {item_id}: {exc}") from None
    if topic.kind != READINGS:
        raise ReviewError(f"item {item_id} is a {topic.kind} payload; only readings are released")
    if item.payload_size > len(item.payload.encode()):
        return ReleaseResult(item_id, still_refused=Rejection(
            "too_large", f"only the first {len(item.payload)} characters of a "
            f"{item.payload_size}-byte payload were kept; it can only be discarded"))
    batch = decode_readings(item.payload, max_bytes=max_payload_bytes,
                            expected_hub=topic.hub_id)
    if isinstance(batch, WireError):
        return ReleaseResult(item_id, still_refused=Rejection(batch.code, batch.reason,
                                                              batch.field))
    outcome = validate_readings(
        batch, registry=Registry(store, time.monotonic), weights=WeightHistory(store), now=now,
        future_tolerance_s=future_tolerance_s, late_bound_hours=late_bound_hours,
        skip_time_review=item.reason_code in TIME_REVIEW_CODES)
    if outcome.rejections:
        return ReleaseResult(item_id, still_refused=outcome.rejections[0])
    res = store.add_readings(outcome.readings, now)
    store.resolve_quarantine(item_id, "released", by, now)
    return ReleaseResult(item_id, len(res.stored), len(res.duplicates))


def discard(store: Store, item_id: int, *, by: str, now: datetime) -> None:
    """Mark a pending item discarded by ``by`` (kept for audit, never stored)."""
    try:
        store.resolve_quarantine(item_id, "discarded", by, now)
    except NotFound:
        raise ReviewError(f"no pending quarantine item {item_id}") from None
