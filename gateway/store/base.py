"""The store interface every implementation passes the contract tests against.

Two implementations: :mod:`gateway.store.sqlite` (embedded default) and
:mod:`gateway.store.postgres` (PostgreSQL, TimescaleDB when installed).
Nothing outside ``gateway.store`` sees a sqlite3 or psycopg object.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from gateway.escalations import (
    Action,
    Disposition,
    Escalation,
    EscalationEvent,
    Severity,
    Status,
    Trigger,
)
from gateway.model import (
    DayCount,
    Device,
    DeviceAssignment,
    Enrollment,
    Hub,
    Patient,
    Practice,
    Reading,
)
from gateway.store.ingest_state import DeviceStatus, HubStatus
from gateway.units import Metric


class StoreError(Exception):
    """Base of the store's errors."""


@dataclass(slots=True)
class Where:
    """A query with optional filters appended as ``AND`` clauses (``?`` placeholders).

    ``eq`` and ``among`` add nothing for ``None``, so "scoped to a practice when
    given" or "of these patients when given" is one call instead of an ``if``.
    """

    sql: str
    params: list[Any]

    def cond(self, condition: str, value: Any) -> Where:
        """``AND condition`` (one ``?``) with ``value`` unless ``value`` is None."""
        if value is not None:
            self.sql += f" AND {condition}"
            self.params.append(value)
        return self

    def eq(self, column: str, value: Any) -> Where:
        """``AND column = value`` unless ``value`` is None."""
        return self.cond(f"{column} = ?", value)

    def among(self, column: str, values: Sequence[Any] | None) -> Where:
        """``AND column IN (values)`` unless ``values`` is None (empty: no rows)."""
        if values is not None:
            if values:
                self.sql += f" AND {column} IN ({', '.join('?' * len(values))})"
                self.params.extend(values)
            else:
                self.sql += " AND 1 = 0"
        return self


class NotFound(StoreError):
    """The requested row does not exist (or is not visible to this practice)."""


class Conflict(StoreError):
    """The change conflicts with existing data (e.g. a duplicate MRN)."""


@dataclass(frozen=True, slots=True)
class AddResult:
    """Outcome of :meth:`Store.add_readings`: ids stored now and ids already held."""

    stored: tuple[str, ...]
    duplicates: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class NewQuarantine:
    """A payload or reading refused by ingest, kept for review with its reason."""

    topic: str
    reason_code: str
    reason: str
    payload: str
    payload_size: int
    received_at: datetime
    hub_id: str | None = None
    practice_id: str | None = None
    reading_id: str | None = None
    field: str | None = None


@dataclass(frozen=True, slots=True)
class QuarantineItem:
    """A quarantined payload as stored."""

    id: int
    topic: str
    reason_code: str
    reason: str
    payload: str
    payload_size: int
    received_at: datetime
    status: str
    hub_id: str | None
    practice_id: str | None
    reading_id: str | None
    field: str | None
    resolved_at: datetime | None
    resolved_by: str | None


QUARANTINE_STATUSES = ("pending", "released", "discarded")


class Store(ABC):
    """Persistence for the registry, readings, the day rollup and quarantine."""

    url: str

    # -- lifecycle ---------------------------------------------------------
    @abstractmethod
    def migrate(self) -> list[str]:
        """Apply pending migrations; return the names applied."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- registry ----------------------------------------------------------
    @abstractmethod
    def upsert_practice(self, practice: Practice) -> None:
        """Create or update a practice."""

    @abstractmethod
    def get_practice(self, practice_id: str) -> Practice:
        """Return a practice or raise :class:`NotFound`."""

    @abstractmethod
    def upsert_patient(self, patient: Patient) -> None:
        """Create or update a patient (MRN unique per practice)."""

    @abstractmethod
    def get_patient(self, patient_id: str, practice_id: str | None = None) -> Patient:
        """Return a patient (of ``practice_id`` when given) or raise :class:`NotFound`."""

    @abstractmethod
    def list_patients(self, practice_id: str,
                      patient_ids: Sequence[str] | None = None) -> list[Patient]:
        """Patients of a practice (those of ``patient_ids`` when given), ordered by id."""

    @abstractmethod
    def upsert_enrollment(self, enrollment: Enrollment) -> None:
        """Create or replace a patient's enrolment."""

    @abstractmethod
    def get_enrollment(self, patient_id: str) -> Enrollment:
        """Return a patient's enrolment or raise :class:`NotFound`."""

    @abstractmethod
    def upsert_device(self, device: Device) -> None:
        """Create or update a device."""

    @abstractmethod
    def get_device(self, serial: str) -> Device:
        """Return a device or raise :class:`NotFound`."""

    @abstractmethod
    def upsert_hub(self, hub: Hub) -> None:
        """Create or update a hub."""

    @abstractmethod
    def get_hub(self, hub_id: str) -> Hub:
        """Return a hub or raise :class:`NotFound`."""

    @abstractmethod
    def assign_device(self, assignment: DeviceAssignment) -> None:
        """Record a device assignment (closing is done with ``end``)."""

    @abstractmethod
    def device_assignments(self, serial: str) -> list[DeviceAssignment]:
        """All assignments of a device, oldest first."""

    def active_assignment(self, serial: str, at: datetime) -> DeviceAssignment | None:
        """The assignment of ``serial`` covering instant ``at``, if any."""
        for a in reversed(self.device_assignments(serial)):
            if a.active_at(at):
                return a
        return None

    # -- readings ----------------------------------------------------------
    @abstractmethod
    def add_readings(self, readings: Sequence[Reading], ingested_at: datetime) -> AddResult:
        """Store readings once by id, in one transaction with the day rollup.

        A reading whose id is already stored (or repeated in the batch) is
        reported in ``duplicates`` and changes nothing.
        """

    @abstractmethod
    def get_readings(
        self,
        patient_id: str,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        metric: Metric | None = None,
        limit: int = 1000,
        practice_id: str | None = None,
    ) -> list[Reading]:
        """Readings of a patient in ``[start, end)`` by measured time, oldest first."""

    @abstractmethod
    def count_readings(self, patient_id: str | None = None) -> int:
        """Number of stored readings (of one patient, or all)."""

    @abstractmethod
    def reading_ids(self, patient_id: str | None = None) -> list[str]:
        """Ids of stored readings (tests and audits)."""

    @abstractmethod
    def day_counts(self, patient_id: str, start: date, end: date) -> list[DayCount]:
        """Rollup rows of a patient for local days ``start..end`` inclusive."""

    # -- quarantine --------------------------------------------------------
    @abstractmethod
    def add_quarantine(self, item: NewQuarantine) -> int:
        """Keep a refused payload with its reason; return its id."""

    @abstractmethod
    def add_quarantine_many(self, items: Sequence[NewQuarantine]) -> None:
        """Keep several refused payloads in one transaction."""

    @abstractmethod
    def list_quarantine(
        self, status: str | None = "pending", practice_id: str | None = None, limit: int = 100
    ) -> list[QuarantineItem]:
        """Quarantined items, newest first."""

    @abstractmethod
    def get_quarantine(self, item_id: int) -> QuarantineItem:
        """One quarantined item or :class:`NotFound`."""

    @abstractmethod
    def resolve_quarantine(self, item_id: int, status: str, by: str, at: datetime) -> None:
        """Mark an item released or discarded (``status``) by ``by`` at ``at``."""

    # -- ingest state (migration 0002, gateway.store.ingest_state) ---------
    @abstractmethod
    def upsert_hub_status(self, status: HubStatus, updated_at: datetime) -> None:
        """Record a hub's status unless a newer one is already stored."""

    @abstractmethod
    def get_hub_status(self, hub_id: str) -> HubStatus | None:
        """The last status of a hub, if any."""

    @abstractmethod
    def upsert_device_status(self, items: Sequence[DeviceStatus], updated_at: datetime) -> None:
        """Record device reports (battery, clock offset, last seen), newest wins."""

    @abstractmethod
    def list_device_status(self, hub_id: str | None = None) -> list[DeviceStatus]:
        """Device reports (of one hub, or all), by serial."""

    # -- escalations and timers (implemented in escalation_store) ----------
    @abstractmethod
    def add_escalation_hook(
        self, hook: Callable[[Any, Escalation, EscalationEvent], None]
    ) -> None:
        """Run ``hook(cursor, escalation, event)`` inside every escalation transaction."""

    @abstractmethod
    def record_trigger(self, trigger: Trigger, now: datetime) -> tuple[Escalation,
                                                                        EscalationEvent | None]:
        """Open an escalation for a trigger, or add evidence to / upgrade the open one.

        The event is ``None`` when the trigger's key was applied before.
        """

    @abstractmethod
    def rules_checkpoint(self, worker: str) -> datetime | None:
        """Ingest time up to which ``worker`` has evaluated committed readings."""

    @abstractmethod
    def set_rules_checkpoint(self, worker: str, ingested_at: datetime) -> None:
        """Record that ``worker`` evaluated every reading ingested up to ``ingested_at``."""

    @abstractmethod
    def readings_ingested_since(self, since: datetime, limit: int = 10_000) -> list[Reading]:
        """Readings with ``ingested_at >= since``, by ingest time then measured time."""

    @abstractmethod
    def open_rule_ids(self, patient_id: str) -> set[str]:
        """Rule ids with an unresolved escalation for a patient."""

    @abstractmethod
    def transition(self, escalation_id: str, action: Action, actor: str, now: datetime, *,
                   practice_id: str | None = None, assignee: str | None = None,
                   until: datetime | None = None, comment: str | None = None,
                   disposition: Disposition | None = None) -> Escalation:
        """Apply a person's action; raises NotFound or LifecycleError."""

    @abstractmethod
    def get_escalation(self, escalation_id: str, practice_id: str | None = None) -> Escalation:
        """One escalation (of a practice when given) or NotFound."""

    @abstractmethod
    def list_escalations(
        self,
        practice_id: str,
        *,
        status: Sequence[Status] | Status | None = (Status.OPEN, Status.ACKNOWLEDGED),
        severity: Severity | None = None,
        assignee: str | None = None,
        patient_id: str | None = None,
        patient_ids: Sequence[str] | None = None,
        rule_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Escalation]:
        """The queue: most severe first, then oldest first."""

    @abstractmethod
    def escalation_events(self, escalation_id: str) -> list[EscalationEvent]:
        """Every audited transition of an escalation, oldest first."""

    @abstractmethod
    def set_timer(self, practice_id: str, patient_id: str, kind: str, due_at: datetime,
                  subject: str = "") -> None:
        """Create or move the one timer of (patient, kind, subject)."""

    @abstractmethod
    def cancel_timer(self, patient_id: str, kind: str, subject: str = "") -> None:
        """Remove a timer if present."""

    @abstractmethod
    def claim_due_timers(self, now: datetime, worker: str, lease_until: datetime,
                         limit: int = 100) -> list[Any]:
        """Claim due timers with a lease; returns ``Timer`` rows."""

    @abstractmethod
    def complete_timer(self, timer: Any) -> None:
        """Delete a fired timer unless it was moved meanwhile."""
