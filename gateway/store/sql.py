"""Shared SQL implementation of :class:`~gateway.store.base.Store`.

How this works: queries are written once with ``?`` placeholders; each
dialect subclass supplies the connection/transaction, the placeholder
translation, value adapters (SQLite keeps instants as fixed-width ISO text in
UTC so they sort; PostgreSQL uses ``timestamptz``) and the bulk insert of
readings (executemany on SQLite, binary COPY via a staging table on
PostgreSQL).  Dedupe is the database's uniqueness on ``readings.id``; the day
rollup is updated in the same transaction from exactly the rows stored.
"""

from __future__ import annotations

import json
from abc import abstractmethod
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

from gateway.model import (
    DayCount,
    Device,
    DeviceAssignment,
    DeviceKind,
    Enrollment,
    Flag,
    Hub,
    Measurement,
    Patient,
    Practice,
    Program,
    Reading,
    ReadingSource,
    local_day,
)
from gateway.store.api_store import ApiStoreMixin
from gateway.store.base import (
    QUARANTINE_STATUSES,
    AddResult,
    NewQuarantine,
    NotFound,
    QuarantineItem,
    Store,
    StoreError,
    Where,
)
from gateway.store.billing_store import BillingStoreMixin
from gateway.store.escalation_store import EscalationStoreMixin
from gateway.store.ingest_state import IngestStateMixin
from gateway.store.paging_store import PagingStoreMixin
from gateway.units import Metric, Unit

#: A reading as the rules' bulk rebuild reads it (:meth:`SqlStore.practice_rule_rows`):
#: ``(patient_id, id, hub_id, measured_at, received_at, ingested_at or None, source,
#: flags, ((metric, value or None, special or None), ...))``, instants as epoch seconds.
RuleRow = tuple[str, str, str, float, float, float | None, str, frozenset[Flag],
                tuple[tuple[Metric, float | None, str | None], ...]]


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    """One bucket of a metric's series (a local day)."""

    day: date
    count: int
    min: float
    max: float
    mean: float


METRIC_COLUMNS: tuple[str, ...] = tuple(m.value for m in Metric)
READING_COLUMNS: tuple[str, ...] = (
    "id", "practice_id", "patient_id", "device_serial", "hub_id", "kind", "measured_at",
    "device_time", "clock_offset_s", "received_at", "ingested_at", "source", "flags",
    "sequence", *METRIC_COLUMNS, "raw",
)
_READING_SELECT = ", ".join(READING_COLUMNS)


def load_migrations(dialect: str) -> list[tuple[int, str, str]]:
    """Migrations shipped for ``dialect`` as (version, name, sql), in order."""
    folder = resources.files("gateway.store") / "migrations" / dialect
    out = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            out.append((version, entry.name, entry.read_text(encoding="utf-8")))
    return sorted(out)


def split_sql(script: str) -> list[str]:
    """Split a migration script into statements (no ``;`` inside statements)."""
    lines = [ln for ln in script.splitlines() if not ln.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


#: Bound on :attr:`SqlStore._known_masks` (patient-months; ~100 bytes each).
_KNOWN_MASKS_MAX = 200_000


class SqlStore(IngestStateMixin, BillingStoreMixin, EscalationStoreMixin, ApiStoreMixin,
               PagingStoreMixin, Store):
    """Dialect-independent store logic."""

    dialect: str

    def __init__(self) -> None:
        self._tz_cache: dict[str, ZoneInfo] = {}
        #: Device-day bits known to be committed in device_day_months, per (patient,
        #: month): a batch whose days are all known skips the upsert (bits are only
        #: ever set, so a known bit never needs writing again).
        self._known_masks: dict[tuple[str, date], int] = {}
        self._init_escalation_hooks()

    # -- dialect hooks -----------------------------------------------------
    @abstractmethod
    def _tx(self) -> AbstractContextManager[Any]:
        """A cursor inside one transaction (commit on success, rollback on error)."""

    @abstractmethod
    def _store_new(self, cur: Any, first: dict[str, Reading],
                   ingested_at: datetime) -> list[Reading]:
        """Insert the readings whose ids were never stored; return those (bulk path)."""

    def _q(self, sql: str) -> str:
        return sql

    def _ts(self, dt: datetime | None) -> Any:
        return dt

    def _from_ts(self, value: Any) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, datetime):
            return value.astimezone(UTC)
        return datetime.fromisoformat(value).astimezone(UTC)

    def _d(self, d: date | None) -> Any:
        return d

    def _from_d(self, value: Any) -> date | None:
        if value is None:
            return None
        if isinstance(value, date):
            return value
        return date.fromisoformat(value)

    def _exec(self, cur: Any, sql: str, params: Sequence[Any] = ()) -> Any:
        cur.execute(self._q(sql), tuple(params))
        return cur

    def _one(self, sql: str, params: Sequence[Any], what: str) -> tuple[Any, ...]:
        with self._tx() as cur:
            row = self._exec(cur, sql, params).fetchone()
        if row is None:
            raise NotFound(what)
        return tuple(row)

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._tx() as cur:
            return [tuple(r) for r in self._exec(cur, sql, params).fetchall()]

    # -- migrations --------------------------------------------------------
    def migrate(self) -> list[str]:
        """Apply pending migrations, each in its own transaction."""
        applied: list[str] = []
        with self._tx() as cur:
            self._exec(cur, "CREATE TABLE IF NOT EXISTS schema_migrations "
                            "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                            "applied_at TEXT NOT NULL)")
            done = {r[0] for r in self._exec(cur, "SELECT version FROM schema_migrations")}
        for version, name, script in load_migrations(self.dialect):
            if version in done:
                continue
            with self._tx() as cur:
                for stmt in split_sql(script):
                    cur.execute(stmt)
                self._exec(cur, "INSERT INTO schema_migrations (version, name, applied_at) "
                                "VALUES (?, ?, ?)",
                           (version, name, datetime.now(UTC).isoformat()))
            applied.append(name)
        self._after_migrate()
        return applied

    def _after_migrate(self) -> None:
        """Dialect extras after migrations (e.g. TimescaleDB hypertables)."""

    def schema_version(self) -> int:
        """Highest applied migration version (0 when none)."""
        rows = self._all("SELECT MAX(version) FROM schema_migrations")
        return int(rows[0][0] or 0)

    # -- registry ----------------------------------------------------------
    def upsert_practice(self, practice: Practice) -> None:
        """Create or update a practice."""
        with self._tx() as cur:
            self._exec(cur, "INSERT INTO practices (id, name, timezone, display_units) "
                            "VALUES (?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                            "name = excluded.name, timezone = excluded.timezone, "
                            "display_units = excluded.display_units",
                       (practice.id, practice.name, practice.timezone, practice.display_units))

    def get_practice(self, practice_id: str) -> Practice:
        """Return a practice or raise NotFound."""
        r = self._one("SELECT id, name, timezone, display_units FROM practices WHERE id = ?",
                      (practice_id,), f"practice {practice_id}")
        return Practice(id=r[0], name=r[1], timezone=r[2], display_units=r[3])

    def list_practices(self) -> list[Practice]:
        """Every practice (tenant), by id."""
        return [Practice(id=r[0], name=r[1], timezone=r[2], display_units=r[3])
                for r in self._all("SELECT id, name, timezone, display_units FROM practices "
                                   "ORDER BY id")]

    def upsert_patient(self, patient: Patient) -> None:
        """Create or update a patient."""
        ZoneInfo(patient.timezone)  # refuse unknown zones before storing
        with self._tx() as cur:
            self._exec(cur, "INSERT INTO patients (id, practice_id, mrn, given_name, family_name,"
                            " birth_date, timezone) VALUES (?, ?, ?, ?, ?, ?, ?) "
                            "ON CONFLICT (id) DO UPDATE SET mrn = excluded.mrn, "
                            "given_name = excluded.given_name, family_name = excluded.family_name,"
                            " birth_date = excluded.birth_date, timezone = excluded.timezone",
                       (patient.id, patient.practice_id, patient.mrn, patient.given_name,
                        patient.family_name, self._d(patient.birth_date), patient.timezone))
        self._tz_cache.pop(patient.id, None)

    _PATIENT_COLS = "id, practice_id, mrn, given_name, family_name, birth_date, timezone"

    def _patient(self, r: Sequence[Any]) -> Patient:
        return Patient(id=r[0], practice_id=r[1], mrn=r[2], given_name=r[3], family_name=r[4],
                       birth_date=self._from_d(r[5]), timezone=r[6])

    def get_patient(self, patient_id: str, practice_id: str | None = None) -> Patient:
        """Return a patient (scoped to a practice when given) or raise NotFound."""
        q = Where(f"SELECT {self._PATIENT_COLS} FROM patients WHERE id = ?", [patient_id])
        q.eq("practice_id", practice_id)
        return self._patient(self._one(q.sql, q.params, f"patient {patient_id}"))

    def list_patients(self, practice_id: str,
                      patient_ids: Sequence[str] | None = None) -> list[Patient]:
        """Patients of a practice (those of ``patient_ids`` when given) ordered by id."""
        q = Where(f"SELECT {self._PATIENT_COLS} FROM patients WHERE practice_id = ?",
                  [practice_id])
        q.among("id", patient_ids)
        return [self._patient(r) for r in self._all(q.sql + " ORDER BY id", q.params)]

    def upsert_enrollment(self, enrollment: Enrollment) -> None:
        """Create or replace a patient's enrolment."""
        e = enrollment
        with self._tx() as cur:
            self._exec(cur, "INSERT INTO enrollments (patient_id, practice_id, programs, "
                            "conditions, consent_date, supervising_physician_id, "
                            "monitoring_start, active) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                            "ON CONFLICT (patient_id) DO UPDATE SET programs = excluded.programs,"
                            " conditions = excluded.conditions, "
                            "consent_date = excluded.consent_date, "
                            "supervising_physician_id = excluded.supervising_physician_id, "
                            "monitoring_start = excluded.monitoring_start, "
                            "active = excluded.active",
                       (e.patient_id, e.practice_id, ",".join(sorted(e.programs)),
                        ",".join(sorted(e.conditions)), self._d(e.consent_date),
                        e.supervising_physician_id, self._d(e.monitoring_start),
                        self._bool(e.active)))

    def _bool(self, value: bool) -> Any:
        return value

    _ENR_COLS = ("patient_id, practice_id, programs, conditions, consent_date, "
                 "supervising_physician_id, monitoring_start, active")

    def get_enrollment(self, patient_id: str) -> Enrollment:
        """Return a patient's enrolment or raise NotFound."""
        r = self._one(f"SELECT {self._ENR_COLS} FROM enrollments WHERE patient_id = ?",
                      (patient_id,), f"enrollment of {patient_id}")
        return self._enrollment(r)

    def list_enrollments(self, practice_id: str,
                         patient_ids: Sequence[str] | None = None) -> list[Enrollment]:
        """Enrolments of a practice (of ``patient_ids`` when given), by patient id."""
        q = Where(f"SELECT {self._ENR_COLS} FROM enrollments WHERE practice_id = ?",
                  [practice_id])
        q.among("patient_id", patient_ids)
        return [self._enrollment(r)
                for r in self._all(q.sql + " ORDER BY patient_id", q.params)]

    def _enrollment(self, r: Sequence[Any]) -> Enrollment:
        from gateway.model import Condition

        return Enrollment(
            patient_id=r[0], practice_id=r[1],
            programs=frozenset(Program(p) for p in r[2].split(",") if p),
            conditions=frozenset(Condition(c) for c in r[3].split(",") if c),
            consent_date=self._from_d(r[4]), supervising_physician_id=r[5],
            monitoring_start=self._from_d(r[6]), active=bool(r[7]),
        )

    def upsert_device(self, device: Device) -> None:
        """Create or update a device."""
        with self._tx() as cur:
            self._exec(cur, "INSERT INTO devices (serial, practice_id, kind, model, manufacturer)"
                            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (serial) DO UPDATE SET "
                            "kind = excluded.kind, model = excluded.model, "
                            "manufacturer = excluded.manufacturer",
                       (device.serial, device.practice_id, device.kind.value, device.model,
                        device.manufacturer))

    def get_device(self, serial: str) -> Device:
        """Return a device or raise NotFound."""
        r = self._one("SELECT serial, practice_id, kind, model, manufacturer FROM devices "
                      "WHERE serial = ?", (serial,), f"device {serial}")
        return Device(serial=r[0], practice_id=r[1], kind=DeviceKind(r[2]), model=r[3],
                      manufacturer=r[4])

    def upsert_hub(self, hub: Hub) -> None:
        """Create or update a hub."""
        with self._tx() as cur:
            self._exec(cur, "INSERT INTO hubs (id, practice_id, patient_id, mqtt_username) "
                            "VALUES (?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                            "patient_id = excluded.patient_id, "
                            "mqtt_username = excluded.mqtt_username",
                       (hub.id, hub.practice_id, hub.patient_id, hub.mqtt_username))

    def get_hub(self, hub_id: str) -> Hub:
        """Return a hub or raise NotFound."""
        r = self._one("SELECT id, practice_id, patient_id, mqtt_username FROM hubs WHERE id = ?",
                      (hub_id,), f"hub {hub_id}")
        return Hub(id=r[0], practice_id=r[1], patient_id=r[2], mqtt_username=r[3])

    def assign_device(self, assignment: DeviceAssignment) -> None:
        """Record an assignment; an open one for the same device is closed at its start."""
        a = assignment
        with self._tx() as cur:
            self._exec(cur, "UPDATE device_assignments SET end_at = ? WHERE device_serial = ? "
                            "AND end_at IS NULL AND start_at < ?",
                       (self._ts(a.start), a.device_serial, self._ts(a.start)))
            self._exec(cur, "INSERT INTO device_assignments (device_serial, patient_id, hub_id, "
                            "practice_id, start_at, end_at) VALUES (?, ?, ?, ?, ?, ?)",
                       (a.device_serial, a.patient_id, a.hub_id, a.practice_id,
                        self._ts(a.start), self._ts(a.end)))

    def device_assignments(self, serial: str) -> list[DeviceAssignment]:
        """All assignments of a device, oldest first."""
        rows = self._all("SELECT device_serial, patient_id, hub_id, practice_id, start_at, end_at"
                         " FROM device_assignments WHERE device_serial = ? "
                         "ORDER BY start_at, id", (serial,))
        out = []
        for r in rows:
            start = self._from_ts(r[4])
            assert start is not None
            out.append(DeviceAssignment(device_serial=r[0], patient_id=r[1], hub_id=r[2],
                                        practice_id=r[3], start=start, end=self._from_ts(r[5])))
        return out

    # -- readings ----------------------------------------------------------
    def _patient_zones(self, cur: Any, patient_ids: set[str]) -> dict[str, ZoneInfo]:
        missing = [p for p in patient_ids if p not in self._tz_cache]
        for pid in missing:
            row = self._exec(cur, "SELECT timezone FROM patients WHERE id = ?", (pid,)).fetchone()
            if row is None:
                raise StoreError(f"reading for unknown patient {pid}")
            self._tz_cache[pid] = ZoneInfo(row[0])
        return {p: self._tz_cache[p] for p in patient_ids}

    def _reading_row(self, r: Reading, ingested_at: datetime) -> tuple[Any, ...]:
        values: dict[str, float | None] = dict.fromkeys(METRIC_COLUMNS)
        raw: dict[str, list[Any]] = {}
        for m in r.measurements:
            values[m.metric.value] = m.value
            raw[m.metric.value] = [m.raw_value, m.raw_unit.value if m.raw_unit else None,
                                   m.special]
        return (
            r.id, r.practice_id, r.patient_id, r.device_serial, r.hub_id, r.kind.value,
            self._ts(r.measured_at), r.device_time, r.clock_offset_s, self._ts(r.received_at),
            self._ts(ingested_at), r.source.value, ",".join(sorted(r.flags)), r.sequence,
            *(values[c] for c in METRIC_COLUMNS), json.dumps(raw, separators=(",", ":")),
        )

    def add_readings(self, readings: Sequence[Reading], ingested_at: datetime) -> AddResult:
        """Store new readings and update the rollup in one transaction."""
        first: dict[str, Reading] = {}
        duplicates: list[str] = []
        for r in readings:
            if r.id in first:
                duplicates.append(r.id)
            else:
                first[r.id] = r
        if not first:
            return AddResult((), tuple(duplicates))
        written: dict[tuple[str, date], int] = {}
        with self._tx() as cur:
            new = self._store_new(cur, first, ingested_at)
            stored = {r.id for r in new}
            duplicates.extend(rid for rid in first if rid not in stored)
            if new:
                written = self._bump_rollup(cur, new)
        known = self._known_masks  # only after the commit: a rollback must not count
        if len(known) + len(written) > _KNOWN_MASKS_MAX:
            known.clear()
        for key, bits in written.items():
            known[key] = known.get(key, 0) | bits
        return AddResult(tuple(r.id for r in new), tuple(duplicates))

    def _bump_rollup(self, cur: Any, readings: Sequence[Reading]) -> dict[tuple[str, date], int]:
        """Add the readings to reading_days and their device days to the month masks;
        return the mask bits written (for :attr:`_known_masks` once committed)."""
        zones = self._patient_zones(cur, {r.patient_id for r in readings})
        counts: Counter[tuple[str, str, date, str, bool]] = Counter()
        for r in readings:
            day = local_day(r.measured_at, zones[r.patient_id])
            manual = r.source == ReadingSource.MANUAL
            for metric in r.metrics:
                counts[(r.practice_id, r.patient_id, day, metric.value, manual)] += 1
        rows = [(practice, patient, self._d(day), metric, 0 if manual else n, n if manual else 0)
                for (practice, patient, day, metric, manual), n in counts.items()]
        cur.executemany(self._q(
            "INSERT INTO reading_days (practice_id, patient_id, day, metric, device_count, "
            "manual_count) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (patient_id, day, metric) "
            "DO UPDATE SET device_count = reading_days.device_count + excluded.device_count, "
            "manual_count = reading_days.manual_count + excluded.manual_count"), rows)
        # device days as one bit per local day in a per-month mask (billing reads these)
        masks: dict[tuple[str, date], list[Any]] = {}
        for (practice, patient, day, _metric, manual) in counts:
            if manual:
                continue
            key = (patient, day.replace(day=1))
            row = masks.setdefault(key, [practice, patient, self._d(key[1]), 0])
            row[3] |= 1 << (day.day - 1)
        known = self._known_masks
        todo = {k: r for k, r in masks.items() if known.get(k, 0) & r[3] != r[3]}
        if todo:
            cur.executemany(self._q(
                "INSERT INTO device_day_months (practice_id, patient_id, month, days) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (patient_id, month) "
                "DO UPDATE SET days = device_day_months.days | excluded.days"),
                sorted(tuple(r) for r in todo.values()))
        return {k: r[3] for k, r in todo.items()}

    def _reading(self, r: Sequence[Any]) -> Reading:
        n = len(READING_COLUMNS)
        assert len(r) == n
        raw = json.loads(r[-1])
        measurements = []
        for i, col in enumerate(METRIC_COLUMNS):
            value = r[14 + i]
            if value is None and col not in raw:
                continue
            rv, ru, special = raw.get(col, [value, None, None])
            measurements.append(Measurement(metric=Metric(col), value=value, raw_value=rv,
                                            raw_unit=Unit(ru) if ru else None, special=special))
        measured, received = self._from_ts(r[6]), self._from_ts(r[9])
        assert measured is not None and received is not None
        return Reading(
            id=r[0], practice_id=r[1], patient_id=r[2], device_serial=r[3], hub_id=r[4],
            kind=DeviceKind(r[5]), measured_at=measured, device_time=r[7], clock_offset_s=r[8],
            received_at=received, ingested_at=self._from_ts(r[10]),
            source=ReadingSource(r[11]),
            flags=frozenset(Flag(f) for f in r[12].split(",") if f), sequence=r[13],
            measurements=tuple(measurements),
        )

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
        """Readings of a patient in ``[start, end)``, oldest first."""
        q = self._readings_query(patient_id, practice_id, start, end, metric)
        q.sql += " ORDER BY measured_at, id LIMIT ?"
        q.params.append(int(limit))
        return [self._reading(r) for r in self._all(q.sql, q.params)]

    def _readings_query(self, patient_id: str, practice_id: str | None,
                        start: datetime | None, end: datetime | None,
                        metric: Metric | None) -> Where:
        """SELECT of a patient's readings in ``[start, end)`` (carrying ``metric``)."""
        q = Where(f"SELECT {_READING_SELECT} FROM readings WHERE patient_id = ?", [patient_id])
        q.eq("practice_id", practice_id)
        q.cond("measured_at >= ?", self._ts(start)).cond("measured_at < ?", self._ts(end))
        if metric is not None:
            q.sql += f" AND {Metric(metric).value} IS NOT NULL"
        return q

    def metric_series(self, patient_id: str, metric: Metric, start: datetime, end: datetime,
                      tz: str) -> list[SeriesPoint]:
        """Per local day in ``tz``: count, min, max and mean of ``metric`` in ``[start, end)``."""
        col = Metric(metric).value
        rows = self._all(f"SELECT measured_at, {col} FROM readings WHERE patient_id = ? AND "
                         f"measured_at >= ? AND measured_at < ? AND {col} IS NOT NULL "
                         "ORDER BY measured_at",
                         (patient_id, self._ts(start), self._ts(end)))
        zone = ZoneInfo(tz)
        days: dict[date, list[float]] = {}
        for at, value in rows:
            instant = self._from_ts(at)
            assert instant is not None
            days.setdefault(instant.astimezone(zone).date(), []).append(float(value))
        return [SeriesPoint(day, len(v), min(v), max(v), sum(v) / len(v))
                for day, v in sorted(days.items())]

    def practice_readings(self, practice_id: str, since: datetime) -> Iterator[Reading]:
        """Every reading of a practice measured since ``since``, by patient then time."""
        rows = self._all(f"SELECT {_READING_SELECT} FROM readings WHERE practice_id = ? AND "
                         "measured_at >= ? ORDER BY patient_id, measured_at, id",
                         (practice_id, self._ts(since)))
        for r in rows:
            yield self._reading(r)

    def practice_rule_rows(self, practice_id: str, since: datetime) -> Iterator[RuleRow]:
        """What the rules engine needs of every reading of a practice measured since ``since``.

        The bulk warm-up path (``RulesRuntime.warm``): no :class:`Reading`
        objects, instants as epoch seconds, and the raw JSON parsed only for a
        glucose reading without a number (its LO/HI).  Rows come by patient;
        the order within a patient is not promised (the engine sorts).
        """
        metrics = tuple(Metric(c) for c in METRIC_COLUMNS)
        glucose = METRIC_COLUMNS.index(Metric.GLUCOSE.value)
        cols = ", ".join(METRIC_COLUMNS)
        g = Metric.GLUCOSE.value
        ep = self._epoch_sql
        sql = (f"SELECT patient_id, id, hub_id, {ep('measured_at')}, {ep('received_at')}, "
               f"{ep('ingested_at')}, source, "
               f"flags, CASE WHEN {g} IS NULL AND raw LIKE ? THEN raw END, {cols} "
               "FROM readings WHERE practice_id = ? AND measured_at >= ? "
               "ORDER BY patient_id")
        flag_sets: dict[str, frozenset[Flag]] = {"": frozenset()}
        with self._tx() as cur:  # raw JSON only where a glucose value may be LO/HI
            cur = self._exec(cur, sql, (f'%"{g}"%', practice_id, self._ts(since)))
            while rows := cur.fetchmany(10_000):
                yield from self._rule_rows(rows, metrics, glucose, flag_sets)

    def _rule_rows(self, rows: Sequence[Sequence[Any]], metrics: tuple[Metric, ...],
                   glucose: int, flag_sets: dict[str, frozenset[Flag]]) -> Iterator[RuleRow]:
        epoch = self._epoch
        for r in rows:
            fl = flag_sets.get(r[7])
            if fl is None:
                fl = flag_sets[r[7]] = frozenset(Flag(f) for f in r[7].split(",") if f)
            values = [(metrics[i], v, None) for i, v in enumerate(r[9:]) if v is not None]
            if r[8] is not None and r[9 + glucose] is None:
                raw = json.loads(r[8]).get(Metric.GLUCOSE.value)
                if raw is not None:
                    values.append((Metric.GLUCOSE, None, raw[2]))
            m, rc, ingested = r[3], r[4], r[5]
            yield (r[0], r[1], r[2],
                   m if type(m) is float else epoch(m),
                   rc if type(rc) is float else epoch(rc),
                   None if ingested is None else
                   ingested if type(ingested) is float else epoch(ingested),
                   r[6], fl, tuple(values))

    def _epoch_sql(self, column: str) -> str:
        """SQL for a stored instant as the database can best hand it to :meth:`_epoch`
        (the column itself here; a dialect may compute epoch seconds)."""
        return column

    def _epoch(self, value: Any) -> float:
        """A stored instant as epoch seconds (as ``_from_ts(value).timestamp()``)."""
        if isinstance(value, datetime):
            return value.timestamp()
        dt = self._from_ts(value)
        assert dt is not None
        return dt.timestamp()

    def drop_readings_before(self, cutoff: datetime) -> int:
        """Retention: delete raw readings measured before ``cutoff``.

        The day rollup (billing history) and the dedupe ids are kept, so an old
        reading re-sent later is still recognised as a duplicate.
        """
        with self._tx() as cur:
            cur = self._exec(cur, "DELETE FROM readings WHERE measured_at < ?",
                             (self._ts(cutoff),))
            return int(cur.rowcount)

    def readings_ingested_since(self, since: datetime, limit: int = 10_000) -> list[Reading]:
        """Readings with ``ingested_at >= since``, by ingest time then measured time."""
        rows = self._all(f"SELECT {_READING_SELECT} FROM readings WHERE ingested_at >= ? "
                         "ORDER BY ingested_at, measured_at, id LIMIT ?",
                         (self._ts(since), int(limit)))
        return [self._reading(r) for r in rows]

    def count_readings(self, patient_id: str | None = None) -> int:
        """Number of stored readings."""
        if patient_id is None:
            return int(self._all("SELECT COUNT(*) FROM readings")[0][0])
        return int(self._all("SELECT COUNT(*) FROM readings WHERE patient_id = ?",
                             (patient_id,))[0][0])

    def reading_ids(self, patient_id: str | None = None) -> list[str]:
        """Ids of stored readings, sorted."""
        if patient_id is None:
            rows = self._all("SELECT id FROM readings ORDER BY id")
        else:
            rows = self._all("SELECT id FROM readings WHERE patient_id = ? ORDER BY id",
                             (patient_id,))
        return [r[0] for r in rows]

    def day_counts(self, patient_id: str, start: date, end: date) -> list[DayCount]:
        """Rollup rows of a patient for ``start..end`` inclusive, by day and metric."""
        rows = self._all("SELECT patient_id, day, metric, device_count, manual_count "
                         "FROM reading_days WHERE patient_id = ? AND day >= ? AND day <= ? "
                         "ORDER BY day, metric", (patient_id, self._d(start), self._d(end)))
        out = []
        for r in rows:
            day = self._from_d(r[1])
            assert day is not None
            out.append(DayCount(patient_id=r[0], day=day, metric=Metric(r[2]),
                                device_count=int(r[3]), manual_count=int(r[4])))
        return out

    # -- quarantine --------------------------------------------------------
    def add_quarantine(self, item: NewQuarantine) -> int:
        """Keep a refused payload; return its id."""
        with self._tx() as cur:
            row = self._exec(cur, "INSERT INTO quarantine (practice_id, hub_id, topic, reading_id,"
                                  " reason_code, reason, field, payload, payload_size, "
                                  "received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                                  "RETURNING id",
                             (item.practice_id, item.hub_id, item.topic, item.reading_id,
                              item.reason_code, item.reason, item.field, item.payload,
                              item.payload_size, self._ts(item.received_at))).fetchone()
        return int(row[0])

    def add_quarantine_many(self, items: Sequence[NewQuarantine]) -> None:
        """Keep several refused payloads in one transaction."""
        if not items:
            return
        with self._tx() as cur:
            cur.executemany(self._q(
                "INSERT INTO quarantine (practice_id, hub_id, topic, reading_id, reason_code, "
                "reason, field, payload, payload_size, received_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
                [(i.practice_id, i.hub_id, i.topic, i.reading_id, i.reason_code, i.reason,
                  i.field, i.payload, i.payload_size, self._ts(i.received_at)) for i in items])

    _Q_COLS = ("id, topic, reason_code, reason, payload, payload_size, received_at, status, "
               "hub_id, practice_id, reading_id, field, resolved_at, resolved_by")

    def _qitem(self, r: Sequence[Any]) -> QuarantineItem:
        received = self._from_ts(r[6])
        assert received is not None
        return QuarantineItem(id=int(r[0]), topic=r[1], reason_code=r[2], reason=r[3],
                              payload=r[4], payload_size=int(r[5]), received_at=received,
                              status=r[7], hub_id=r[8], practice_id=r[9], reading_id=r[10],
                              field=r[11], resolved_at=self._from_ts(r[12]), resolved_by=r[13])

    def list_quarantine(
        self, status: str | None = "pending", practice_id: str | None = None, limit: int = 100
    ) -> list[QuarantineItem]:
        """Quarantined items, newest first."""
        q = Where(f"SELECT {self._Q_COLS} FROM quarantine WHERE 1 = 1", [])
        q.eq("status", status).eq("practice_id", practice_id)
        q.sql += " ORDER BY received_at DESC, id DESC LIMIT ?"
        q.params.append(int(limit))
        return [self._qitem(r) for r in self._all(q.sql, q.params)]

    def get_quarantine(self, item_id: int) -> QuarantineItem:
        """One quarantined item or NotFound."""
        return self._qitem(self._one(f"SELECT {self._Q_COLS} FROM quarantine WHERE id = ?",
                                     (int(item_id),), f"quarantine item {item_id}"))

    def resolve_quarantine(self, item_id: int, status: str, by: str, at: datetime) -> None:
        """Mark a pending item released or discarded."""
        if status not in QUARANTINE_STATUSES[1:]:
            raise StoreError(f"status must be released or discarded, not {status!r}")
        with self._tx() as cur:
            cur = self._exec(cur, "UPDATE quarantine SET status = ?, resolved_by = ?, "
                                  "resolved_at = ? WHERE id = ? AND status = 'pending'",
                             (status, by, self._ts(at), int(item_id)))
            if cur.rowcount != 1:
                raise NotFound(f"pending quarantine item {item_id}")


def iter_chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    """Consecutive slices of ``items`` of at most ``size``."""
    for i in range(0, len(items), size):
        yield items[i:i + size]
