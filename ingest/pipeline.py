"""The ingest pipeline: decode, validate, batch, commit, then acknowledge.

How this works: :meth:`Pipeline.handle` turns one :class:`InboundMessage`
into pending work (readings to store, quarantine entries, hub/device
status) and never raises: a crash while handling a message quarantines that
message as ``internal_error`` and the pipeline goes on.  Work accumulates
until :meth:`due` (``batch_max`` readings or messages, or ``batch_ms`` since
the first pending message); :meth:`flush` then

1. stores the readings with one ``store.add_readings`` (dedupe + day rollup
   in one transaction), then the quarantine entries and status rows,
2. acknowledges every message of the batch to the broker, in receive order,
3. hands the newly stored readings to the consumer (the rules engine),
   ordered by patient and measured time.

If the store fails nothing is acknowledged and the batch stays pending for
the caller to retry (the broker keeps the messages meanwhile; redelivery
after a crash is absorbed by dedupe).  :meth:`flush_isolating` commits
message by message so one message the store refuses cannot block the rest.
Consumer delivery is at most once: a crash between commit and hand-off
skips the consumer for that batch, which rebuilds from the store.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TypeVar

from gateway.model import Reading
from gateway.store import NewQuarantine, Store
from gateway.store.ingest_state import DeviceStatus, HubStatus
from gateway.topics import DEVICES, READINGS, STATUS, Topic, TopicError
from gateway.wire import (
    WireDevices,
    WireError,
    WireReadings,
    WireStatus,
    decode_devices,
    decode_readings,
    decode_status,
)
from ingest.metrics import IngestMetrics
from ingest.source import InboundMessage
from ingest.validate import (
    INTERNAL_ERROR,
    UNKNOWN_HUB,
    RegistryView,
    WeightView,
    validate_readings,
)

log = logging.getLogger(__name__)

#: Quarantine keeps at most this much of a payload (oversized ones are cut).
QUARANTINE_PAYLOAD_MAX = 64 * 1024
BAD_TOPIC = "bad_topic"

Consumer = Callable[[Sequence[Reading]], None]
"""Called after each commit with the newly stored readings, ordered by
(patient_id, measured_at); runs on the ingest committer thread."""


def payload_text(payload: bytes, limit: int = QUARANTINE_PAYLOAD_MAX) -> str:
    """Payload as storable text: first ``limit`` bytes, bad UTF-8 and NUL replaced."""
    return payload[:limit].decode("utf-8", errors="replace").replace("\x00", "\ufffd")


#: A decoded hub payload that names its hub (status or devices).
_Payload = TypeVar("_Payload", WireStatus, WireDevices)


@dataclass(slots=True)
class _Work:
    """What one message contributes to a batch."""

    msg: InboundMessage
    readings: list[Reading] = field(default_factory=list)
    quarantine: list[NewQuarantine] = field(default_factory=list)
    hub_status: list[HubStatus] = field(default_factory=list)
    device_status: list[DeviceStatus] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class FlushResult:
    """What one flush committed."""

    messages: int
    stored: int
    duplicates: int
    quarantined: int


class Pipeline:
    """Sans-thread core of ingest; the service drives it from one worker thread."""

    def __init__(
        self,
        store: Store,
        ack: Callable[[InboundMessage], None],
        *,
        registry: RegistryView,
        weights: WeightView,
        metrics: IngestMetrics,
        now: Callable[[], datetime],
        consumer: Consumer | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        batch_max: int = 2000,
        batch_ms: int = 50,
        max_payload_bytes: int = 1024 * 1024,
        future_tolerance_s: float = 600,
        late_bound_hours: float = 12.0,
    ) -> None:
        self.store = store
        self._ack = ack
        self.registry = registry
        self.weights = weights
        self.metrics = metrics
        self._now = now
        self.consumer = consumer
        self._monotonic = monotonic
        self.batch_max = batch_max
        self.batch_s = batch_ms / 1000.0
        self.max_payload_bytes = max_payload_bytes
        self.future_tolerance_s = future_tolerance_s
        self.late_bound_hours = late_bound_hours
        self._work: list[_Work] = []
        self._n_readings = 0
        self._opened: float | None = None

    # -- batching ------------------------------------------------------------
    @property
    def pending_messages(self) -> int:
        """Messages handled but not yet committed and acknowledged."""
        return len(self._work)

    def full(self) -> bool:
        """True when the batch has reached its size bound."""
        return self._n_readings >= self.batch_max or len(self._work) >= self.batch_max

    def due(self) -> bool:
        """True when the batch should be committed now (size or time bound)."""
        if not self._work:
            return False
        return self.full() or self._monotonic() - (self._opened or 0.0) >= self.batch_s

    def seconds_until_due(self) -> float | None:
        """Seconds until the time bound (``None`` when nothing is pending)."""
        if self._opened is None:
            return None
        return max(0.0, self._opened + self.batch_s - self._monotonic())

    # -- handling ------------------------------------------------------------
    def handle(self, msg: InboundMessage) -> None:
        """Decode and validate one message into the pending batch; never raises."""
        work = _Work(msg)
        try:
            self._handle(msg, work)
        except Exception as exc:  # a poison message must not block the rest
            log.exception("internal error handling a message on %s", msg.topic)
            work = _Work(msg, quarantine=[self._quarantine(
                msg, INTERNAL_ERROR, f"{type(exc).__name__}: {str(exc)[:200]}")])
        for q in work.quarantine:
            self.metrics.quarantined.labels(q.reason_code).inc()
        if self._opened is None:
            self._opened = self._monotonic()
        self._work.append(work)
        self._n_readings += len(work.readings)

    def _quarantine(self, msg: InboundMessage, code: str, reason: str, *,
                    hub_id: str | None = None, field: str | None = None,
                    reading_id: str | None = None, payload: str | None = None,
                    practice_id: str | None = None) -> NewQuarantine:
        if hub_id is None:
            try:
                hub_id = Topic.parse(msg.topic).hub_id
            except TopicError:
                hub_id = None
        return NewQuarantine(
            topic=msg.topic[:512], reason_code=code, reason=reason[:1000],
            payload=payload if payload is not None else payload_text(msg.payload),
            payload_size=len(msg.payload), received_at=msg.received_at, hub_id=hub_id,
            practice_id=practice_id, reading_id=reading_id, field=field,
        )

    def _handle(self, msg: InboundMessage, work: _Work) -> None:
        try:
            topic = Topic.parse(msg.topic)
        except TopicError as exc:
            self.metrics.messages.labels("unknown").inc()
            work.quarantine.append(self._quarantine(msg, BAD_TOPIC, str(exc)))
            return
        self.metrics.messages.labels(topic.kind).inc()
        if topic.kind == READINGS:
            self._handle_readings(msg, topic, work)
        elif topic.kind == STATUS:
            self._handle_status(msg, topic, work)
        elif topic.kind == DEVICES:
            self._handle_devices(msg, topic, work)

    def _wire_error(self, msg: InboundMessage, err: WireError, work: _Work,
                    hub_id: str) -> None:
        work.quarantine.append(self._quarantine(msg, err.code, err.reason, hub_id=hub_id,
                                                field=err.field))

    def _handle_readings(self, msg: InboundMessage, topic: Topic, work: _Work) -> None:
        batch = decode_readings(msg.payload, max_bytes=self.max_payload_bytes,
                                expected_hub=topic.hub_id)
        if isinstance(batch, WireError):
            self._wire_error(msg, batch, work, topic.hub_id)
            return
        self.metrics.received.inc(len(batch.readings))
        self.validate_into(batch, msg, work)

    def validate_into(self, batch: WireReadings, msg: InboundMessage, work: _Work,
                      skip_time_review: bool = False) -> None:
        """Validate a decoded payload; readings and rejections go into ``work``."""
        outcome = validate_readings(
            batch, registry=self.registry, weights=self.weights, now=self._now(),
            future_tolerance_s=self.future_tolerance_s, late_bound_hours=self.late_bound_hours,
            skip_time_review=skip_time_review)
        hub = self.registry.hub(batch.hub_id)
        practice = hub.practice_id if hub is not None else None
        work.readings.extend(outcome.readings)
        for rej in outcome.rejections:
            work.quarantine.append(self._quarantine(
                msg, rej.code, rej.reason, hub_id=batch.hub_id, field=rej.field,
                reading_id=rej.reading_id, payload=rej.payload, practice_id=practice))
        if outcome.readings:
            d = batch.device
            work.device_status.append(DeviceStatus(
                serial=d.serial, hub_id=batch.hub_id, kind=d.kind.value,
                last_seen=max(r.received_at for r in outcome.readings), battery=d.battery,
                clock_offset_s=d.clock_offset_s, firmware=d.firmware, model=d.model,
                manufacturer=d.manufacturer))

    def _from_registered_hub(self, decoded: _Payload | WireError, msg: InboundMessage,
                             topic: Topic, work: _Work) -> _Payload | None:
        """A decoded status/devices payload of a registered hub; otherwise ``None`` and
        the message is quarantined with its reason."""
        if isinstance(decoded, WireError):
            self._wire_error(msg, decoded, work, topic.hub_id)
            return None
        if self.registry.hub(decoded.hub_id) is None:
            work.quarantine.append(self._quarantine(
                msg, UNKNOWN_HUB, f"hub {decoded.hub_id!r} is not registered", field="hub_id"))
            return None
        return decoded

    def _handle_status(self, msg: InboundMessage, topic: Topic, work: _Work) -> None:
        st = self._from_registered_hub(decode_status(msg.payload, expected_hub=topic.hub_id),
                                       msg, topic, work)
        if st is None:
            return
        work.hub_status.append(HubStatus(
            hub_id=st.hub_id, state=st.state, at=st.at or msg.received_at,
            outbox_depth=st.outbox_depth, outbox_oldest_s=st.outbox_oldest_s,
            agent_version=st.agent_version))

    def _handle_devices(self, msg: InboundMessage, topic: Topic, work: _Work) -> None:
        devs = self._from_registered_hub(
            decode_devices(msg.payload, expected_hub=topic.hub_id), msg, topic, work)
        if devs is None:
            return
        work.device_status.extend(_device_statuses(devs))

    # -- committing ----------------------------------------------------------
    def take(self) -> list[_Work]:
        """Detach the pending batch (to commit it elsewhere with :meth:`commit`)."""
        work = self._work
        self._reset()
        return work

    def flush(self) -> FlushResult:
        """Commit the pending batch, acknowledge it, hand it to the consumer.

        Raises whatever the store raises; the batch then stays pending.
        """
        work = self.take()
        try:
            return self.commit(work)
        except BaseException:
            self._work = work + self._work
            self._recount()
            self._opened = self._monotonic()
            raise

    def commit(self, work: list[_Work]) -> FlushResult:
        """Commit a detached batch, then acknowledge it, then call the consumer.

        Raises whatever the store raises (nothing is acknowledged then).
        """
        if not work:
            return FlushResult(0, 0, 0, 0)
        result, stored = self._commit(work)
        for w in work:
            self._ack(w.msg)
        self._deliver(stored)
        return result

    def flush_isolating(self) -> FlushResult:
        """Commit the pending batch message by message (see :meth:`commit_isolating`)."""
        work = self.take()
        try:
            return self.commit_isolating(work)
        finally:
            if work:  # what is left after a failure stays pending
                self._work = work + self._work
                self._recount()
                self._opened = self._monotonic()

    def commit_isolating(self, work: list[_Work]) -> FlushResult:
        """Commit message by message; a message the store refuses is quarantined.

        Used after :meth:`commit` failed repeatedly (a poison message, not an
        outage).  Messages done are removed from ``work``; raises only if even
        the ``internal_error`` quarantine fails (``work`` then holds the rest).
        """
        totals = [0, 0, 0, 0]
        while work:
            w = work[0]
            try:
                result, stored = self._commit([w])
            except Exception as exc:  # isolate the poison message
                log.exception("store refused the message on %s; quarantining it", w.msg.topic)
                q = self._quarantine(w.msg, INTERNAL_ERROR,
                                     f"store refused: {type(exc).__name__}: {str(exc)[:200]}")
                result, stored = self._commit([_Work(w.msg, quarantine=[q])])
                self.metrics.quarantined.labels(INTERNAL_ERROR).inc()
            self._ack(w.msg)
            self._deliver(stored)
            del work[0]
            for k, v in enumerate((result.messages, result.stored, result.duplicates,
                                   result.quarantined)):
                totals[k] += v
        return FlushResult(*totals)

    def _commit(self, work: list[_Work]) -> tuple[FlushResult, list[Reading]]:
        readings = [r for w in work for r in w.readings]
        quarantine = [q for w in work for q in w.quarantine]
        statuses = [s for w in work for s in w.hub_status]
        devices = {d.serial: d for w in work for d in w.device_status}
        ingested_at = self._now()
        t0 = self._monotonic()
        stored_ids: tuple[str, ...] = ()
        dup_ids: tuple[str, ...] = ()
        if readings:
            res = self.store.add_readings(readings, ingested_at)
            stored_ids, dup_ids = res.stored, res.duplicates
        if quarantine:
            self.store.add_quarantine_many(quarantine)
        for s in statuses:
            self.store.upsert_hub_status(s, ingested_at)
        if devices:
            self.store.upsert_device_status(list(devices.values()), ingested_at)
        elapsed = self._monotonic() - t0
        m = self.metrics
        m.commit_seconds.observe(elapsed)
        m.batch_size.observe(len(readings))
        m.stored.inc(len(stored_ids))
        m.duplicates.inc(len(dup_ids))
        ids = set(stored_ids)
        # consumers see the readings as stored: with their ingest time (the rules
        # runtime checkpoints on it and takes it as the hub's contact time)
        stored = [replace(r, ingested_at=ingested_at) for r in readings if r.id in ids]
        for r in stored:
            m.lag_seconds.observe(max(0.0, (ingested_at - r.measured_at).total_seconds()))
        return FlushResult(len(work), len(stored_ids), len(dup_ids), len(quarantine)), stored

    def _deliver(self, stored: list[Reading]) -> None:
        if self.consumer is None or not stored:
            return
        seen: set[str] = set()
        ordered = []
        for r in sorted(stored, key=lambda r: (r.patient_id, r.measured_at, r.id)):
            if r.id not in seen:  # a repeat inside one batch is stored once
                seen.add(r.id)
                ordered.append(r)
        try:
            self.consumer(ordered)
        except Exception:  # the readings are committed and acknowledged
            self.metrics.consumer_errors.inc()
            log.exception("consumer failed on %d committed readings", len(ordered))

    def _reset(self) -> None:
        self._work = []
        self._n_readings = 0
        self._opened = None

    def _recount(self) -> None:
        self._n_readings = sum(len(w.readings) for w in self._work)


def _device_statuses(devs: WireDevices) -> list[DeviceStatus]:
    return [DeviceStatus(serial=d.serial, hub_id=devs.hub_id, kind=d.kind.value,
                         last_seen=devs.at, battery=d.battery, clock_offset_s=d.clock_offset_s,
                         firmware=d.firmware, model=d.model, manufacturer=d.manufacturer)
            for d in devs.devices]
