"""Store methods the API needs: users, audit log, care plans, logins, hub credentials.

How this works: :class:`ApiStoreMixin` is a base of
:class:`~gateway.store.sql.SqlStore` and uses its dialect helpers (``_tx``,
``_exec`` with ``?`` placeholders, ``_all``, ``_one``, ``_ts``/``_from_ts``,
``_bool``), so SQLite and PostgreSQL share one implementation.  Tables come
from migration ``0004_api``.  The audit log is append-only: this module has
:meth:`ApiStoreMixin.append_audit` and queries, never an update or delete.
Every query that returns tenant data takes the ``practice_id`` and filters
on it, so a row of another practice is simply :class:`NotFound`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from gateway.model import Device, DeviceAssignment, DeviceKind, Hub, Reading
from gateway.store.base import Conflict, NotFound, Where
from gateway.units import Metric

#: Roles a user can hold.  ``hub`` is for MQTT credentials only; the HTTP API refuses it.
ROLES: tuple[str, ...] = ("admin", "physician", "coordinator", "biller", "hub")


@dataclass(frozen=True, slots=True)
class User:
    """A person (or hub identity) who can sign in; ``password_hash`` is argon2."""

    id: str
    practice_id: str
    email: str
    role: str
    full_name: str = ""
    password_hash: str | None = None
    active: bool = True
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """Who did what to which resource, when and from where.  Holds ids only, no PHI."""

    at: datetime
    practice_id: str
    user_id: str
    action: str
    resource_type: str
    resource_id: str | None = None
    patient_id: str | None = None
    client_ip: str | None = None
    id: int | None = None


@dataclass(frozen=True, slots=True)
class CarePlanOverride:
    """A physician's per-patient change of a rule: new params, or ``enabled=False``."""

    practice_id: str
    patient_id: str
    rule_id: str
    ordered_by: str
    ordered_at: datetime
    params: dict[str, Any]
    enabled: bool = True
    expires_at: datetime | None = None
    id: int | None = None
    revoked_at: datetime | None = None
    revoked_by: str | None = None

    def in_force(self, at: datetime) -> bool:
        """True when not revoked and not expired at ``at``."""
        if self.revoked_at is not None and self.revoked_at <= at:
            return False
        return self.expires_at is None or at < self.expires_at


@dataclass(frozen=True, slots=True)
class Medication:
    """A medication as the care team recorded it (the EHR remains the source of truth)."""

    practice_id: str
    patient_id: str
    name: str
    recorded_by: str
    recorded_at: datetime
    dose: str = ""
    frequency: str = ""
    started_on: date | None = None
    note: str = ""
    id: int | None = None
    stopped_at: datetime | None = None
    stopped_by: str | None = None
    stop_reason: str | None = None

    @property
    def label(self) -> str:
        """"Furosemide 40 mg, once daily" (name, dose and frequency as recorded)."""
        head = f"{self.name} {self.dose}".strip()
        return f"{head}, {self.frequency}" if self.frequency else head

    def active_at(self, at: datetime) -> bool:
        """True when recorded by ``at`` and not stopped by then."""
        return self.recorded_at <= at and (self.stopped_at is None or self.stopped_at > at)


@dataclass(frozen=True, slots=True)
class HubCredentials:
    """A hub's MQTT username and the argon2 hash of its password."""

    hub_id: str
    practice_id: str
    mqtt_username: str
    password_hash: str
    created_at: datetime


_USER_COLS = "id, practice_id, email, full_name, role, password_hash, active, created_at"
_AUDIT_COLS = ("id, at, practice_id, user_id, action, resource_type, resource_id, patient_id, "
               "client_ip")
_MED_COLS = ("id, practice_id, patient_id, name, dose, frequency, started_on, note, "
             "recorded_by, recorded_at, stopped_at, stopped_by, stop_reason")
_CP_COLS = ("id, practice_id, patient_id, rule_id, params, enabled, ordered_by, ordered_at, "
            "expires_at, revoked_at, revoked_by")


class ApiStoreMixin:
    """API persistence on top of the SQL store's helpers (see module docstring)."""

    if TYPE_CHECKING:  # provided by SqlStore
        def _tx(self) -> AbstractContextManager[Any]: ...
        def _exec(self, cur: Any, sql: str, params: Sequence[Any] = ()) -> Any: ...
        def _one(self, sql: str, params: Sequence[Any], what: str) -> tuple[Any, ...]: ...
        def _all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...
        def _ts(self, dt: datetime | None) -> Any: ...
        def _from_ts(self, value: Any) -> datetime | None: ...
        def _bool(self, value: bool) -> Any: ...
        def _d(self, d: date | None) -> Any: ...
        def _from_d(self, value: Any) -> date | None: ...
        def _reading(self, r: Sequence[Any]) -> Reading: ...
        def _readings_query(self, patient_id: str, practice_id: str | None,
                            start: datetime | None, end: datetime | None,
                            metric: Metric | None) -> Where: ...

    # -- users -------------------------------------------------------------
    def _user(self, r: Sequence[Any]) -> User:
        return User(id=r[0], practice_id=r[1], email=r[2], full_name=r[3], role=r[4],
                    password_hash=r[5], active=bool(r[6]), created_at=self._from_ts(r[7]))

    def create_user(self, user: User) -> None:
        """Insert a user; :class:`Conflict` when the id or e-mail exists already."""
        if user.role not in ROLES:
            raise ValueError(f"unknown role {user.role!r}")
        with self._tx() as cur:
            dup = self._exec(cur, "SELECT id FROM users WHERE id = ? OR lower(email) = lower(?)",
                             (user.id, user.email)).fetchone()
            if dup is not None:
                raise Conflict("a user with this id or e-mail exists")
            self._exec(cur, f"INSERT INTO users ({_USER_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (user.id, user.practice_id, user.email.lower(), user.full_name, user.role,
                        user.password_hash, self._bool(user.active), self._ts(user.created_at)))

    def update_user(self, user: User) -> None:
        """Replace a user's mutable fields (name, role, password hash, active)."""
        if user.role not in ROLES:
            raise ValueError(f"unknown role {user.role!r}")
        with self._tx() as cur:
            cur = self._exec(cur, "UPDATE users SET full_name = ?, role = ?, password_hash = ?, "
                                  "active = ? WHERE id = ? AND practice_id = ?",
                             (user.full_name, user.role, user.password_hash,
                              self._bool(user.active), user.id, user.practice_id))
            if cur.rowcount != 1:
                raise NotFound(f"user {user.id}")

    def get_user(self, user_id: str, practice_id: str | None = None) -> User:
        """A user (of ``practice_id`` when given) or :class:`NotFound`."""
        q = Where(f"SELECT {_USER_COLS} FROM users WHERE id = ?", [user_id])
        q.eq("practice_id", practice_id)
        return self._user(self._one(q.sql, q.params, f"user {user_id}"))

    def get_user_by_email(self, email: str) -> User:
        """The user with this e-mail (case-insensitive) or :class:`NotFound`."""
        return self._user(self._one(f"SELECT {_USER_COLS} FROM users WHERE email = ?",
                                    (email.lower(),), "user by e-mail"))

    def list_users(self, practice_id: str) -> list[User]:
        """Users of a practice ordered by e-mail."""
        rows = self._all(f"SELECT {_USER_COLS} FROM users WHERE practice_id = ? ORDER BY email",
                         (practice_id,))
        return [self._user(r) for r in rows]

    # -- audit log (append-only) ---------------------------------------------
    def append_audit(self, entry: AuditEntry) -> int:
        """Append one audit entry; return its id.  There is no update or delete."""
        with self._tx() as cur:
            row = self._exec(cur, "INSERT INTO audit_log (at, practice_id, user_id, action, "
                                  "resource_type, resource_id, patient_id, client_ip) "
                                  "VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                             (self._ts(entry.at), entry.practice_id, entry.user_id, entry.action,
                              entry.resource_type, entry.resource_id, entry.patient_id,
                              entry.client_ip)).fetchone()
        return int(row[0])

    def list_audit(
        self,
        practice_id: str,
        *,
        user_id: str | None = None,
        patient_id: str | None = None,
        resource_type: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[AuditEntry]:
        """Audit entries of a practice, newest first, with optional filters."""
        q = Where(f"SELECT {_AUDIT_COLS} FROM audit_log WHERE practice_id = ?", [practice_id])
        q.eq("user_id", user_id).eq("patient_id", patient_id).eq("resource_type", resource_type)
        q.cond("at >= ?", self._ts(since)).cond("at < ?", self._ts(until))
        q.sql += " ORDER BY id DESC LIMIT ? OFFSET ?"
        q.params.extend([int(limit), int(offset)])
        out = []
        for r in self._all(q.sql, q.params):
            at = self._from_ts(r[1])
            assert at is not None
            out.append(AuditEntry(id=int(r[0]), at=at, practice_id=r[2], user_id=r[3],
                                  action=r[4], resource_type=r[5], resource_id=r[6],
                                  patient_id=r[7], client_ip=r[8]))
        return out

    # -- care plans ----------------------------------------------------------
    def _override(self, r: Sequence[Any]) -> CarePlanOverride:
        ordered = self._from_ts(r[7])
        assert ordered is not None
        return CarePlanOverride(id=int(r[0]), practice_id=r[1], patient_id=r[2], rule_id=r[3],
                                params=json.loads(r[4]), enabled=bool(r[5]), ordered_by=r[6],
                                ordered_at=ordered, expires_at=self._from_ts(r[8]),
                                revoked_at=self._from_ts(r[9]), revoked_by=r[10])

    def add_care_plan_override(self, o: CarePlanOverride) -> int:
        """Record a physician's override of one rule for one patient; return its id."""
        with self._tx() as cur:
            row = self._exec(cur, "INSERT INTO care_plan_overrides (practice_id, patient_id, "
                                  "rule_id, params, enabled, ordered_by, ordered_at, expires_at) "
                                  "VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                             (o.practice_id, o.patient_id, o.rule_id,
                              json.dumps(o.params, sort_keys=True), self._bool(o.enabled),
                              o.ordered_by, self._ts(o.ordered_at),
                              self._ts(o.expires_at))).fetchone()
        return int(row[0])

    def list_care_plan_overrides(
        self, patient_id: str, practice_id: str, at: datetime | None = None
    ) -> list[CarePlanOverride]:
        """Overrides of a patient, oldest first; only those in force at ``at`` when given."""
        rows = self._all(f"SELECT {_CP_COLS} FROM care_plan_overrides WHERE patient_id = ? "
                         "AND practice_id = ? ORDER BY ordered_at, id", (patient_id, practice_id))
        out = [self._override(r) for r in rows]
        return out if at is None else [o for o in out if o.in_force(at)]

    def list_practice_care_plan_overrides(self, practice_id: str) -> list[CarePlanOverride]:
        """Every override of a practice, oldest first (bulk rule-state rebuilds)."""
        rows = self._all(f"SELECT {_CP_COLS} FROM care_plan_overrides WHERE practice_id = ? "
                         "ORDER BY patient_id, ordered_at, id", (practice_id,))
        return [self._override(r) for r in rows]

    def get_care_plan_override(self, override_id: int, practice_id: str) -> CarePlanOverride:
        """One override of the practice or :class:`NotFound`."""
        return self._override(self._one(
            f"SELECT {_CP_COLS} FROM care_plan_overrides WHERE id = ? AND practice_id = ?",
            (int(override_id), practice_id), f"care plan override {override_id}"))

    def revoke_care_plan_override(
        self, override_id: int, practice_id: str, by: str, at: datetime
    ) -> None:
        """End an override early (kept for history); :class:`NotFound` if absent or revoked."""
        with self._tx() as cur:
            cur = self._exec(cur, "UPDATE care_plan_overrides SET revoked_at = ?, revoked_by = ? "
                                  "WHERE id = ? AND practice_id = ? AND revoked_at IS NULL",
                             (self._ts(at), by, int(override_id), practice_id))
            if cur.rowcount != 1:
                raise NotFound(f"active care plan override {override_id}")

    # -- medications ---------------------------------------------------------
    def _medication(self, r: Sequence[Any]) -> Medication:
        recorded = self._from_ts(r[9])
        assert recorded is not None
        return Medication(id=int(r[0]), practice_id=r[1], patient_id=r[2], name=r[3],
                          dose=r[4], frequency=r[5], started_on=self._from_d(r[6]), note=r[7],
                          recorded_by=r[8], recorded_at=recorded,
                          stopped_at=self._from_ts(r[10]), stopped_by=r[11],
                          stop_reason=r[12])

    def add_medication(self, m: Medication) -> int:
        """Record a medication for a patient; return its id."""
        with self._tx() as cur:
            row = self._exec(cur, "INSERT INTO medications (practice_id, patient_id, name, "
                                  "dose, frequency, started_on, note, recorded_by, recorded_at) "
                                  "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                             (m.practice_id, m.patient_id, m.name, m.dose, m.frequency,
                              self._d(m.started_on), m.note, m.recorded_by,
                              self._ts(m.recorded_at))).fetchone()
        return int(row[0])

    def list_medications(self, patient_id: str, practice_id: str) -> list[Medication]:
        """A patient's medications, stopped ones included, in the order recorded."""
        rows = self._all(f"SELECT {_MED_COLS} FROM medications WHERE patient_id = ? "
                         "AND practice_id = ? ORDER BY recorded_at, id",
                         (patient_id, practice_id))
        return [self._medication(r) for r in rows]

    def get_medication(self, medication_id: int, practice_id: str) -> Medication:
        """One medication of the practice or :class:`NotFound`."""
        return self._medication(self._one(
            f"SELECT {_MED_COLS} FROM medications WHERE id = ? AND practice_id = ?",
            (int(medication_id), practice_id), f"medication {medication_id}"))

    def stop_medication(self, medication_id: int, practice_id: str, by: str, at: datetime,
                        reason: str) -> None:
        """Mark a medication stopped (kept in the history); :class:`NotFound` if absent
        or already stopped."""
        with self._tx() as cur:
            cur = self._exec(cur, "UPDATE medications SET stopped_at = ?, stopped_by = ?, "
                                  "stop_reason = ? WHERE id = ? AND practice_id = ? "
                                  "AND stopped_at IS NULL",
                             (self._ts(at), by, reason, int(medication_id), practice_id))
            if cur.rowcount != 1:
                raise NotFound(f"active medication {medication_id}")

    # -- login attempts ------------------------------------------------------
    def record_login_attempt(self, username: str, client_ip: str, at: datetime,
                             success: bool) -> None:
        """Remember one password login attempt (for rate limiting); forget day-old ones."""
        with self._tx() as cur:
            self._exec(cur, "DELETE FROM login_attempts WHERE username = ? AND client_ip = ? "
                            "AND at < ?", (username.lower(), client_ip,
                                           self._ts(at - timedelta(days=1))))
            self._exec(cur, "INSERT INTO login_attempts (username, client_ip, at, success) "
                            "VALUES (?, ?, ?, ?)",
                       (username.lower(), client_ip, self._ts(at), self._bool(success)))

    def count_login_failures(self, username: str, client_ip: str, since: datetime) -> int:
        """Failed attempts for (username, ip) since ``since`` and after the last success."""
        rows = self._all("SELECT at, success FROM login_attempts WHERE username = ? AND "
                         "client_ip = ? AND at >= ? ORDER BY at, id",
                         (username.lower(), client_ip, self._ts(since)))
        failures = 0
        for _at, ok in rows:
            failures = 0 if ok else failures + 1
        return failures

    # -- registry listings the base interface lacks ----------------------------
    def list_devices(self, practice_id: str) -> list[Device]:
        """Devices of a practice ordered by serial."""
        rows = self._all("SELECT serial, practice_id, kind, model, manufacturer FROM devices "
                         "WHERE practice_id = ? ORDER BY serial", (practice_id,))
        return [Device(serial=r[0], practice_id=r[1], kind=DeviceKind(r[2]), model=r[3],
                       manufacturer=r[4]) for r in rows]

    def list_hubs(self, practice_id: str) -> list[Hub]:
        """Hubs of a practice ordered by id."""
        rows = self._all("SELECT id, practice_id, patient_id, mqtt_username FROM hubs "
                         "WHERE practice_id = ? ORDER BY id", (practice_id,))
        return [Hub(id=r[0], practice_id=r[1], patient_id=r[2], mqtt_username=r[3])
                for r in rows]

    def patient_assignments(self, patient_id: str, practice_id: str) -> list[DeviceAssignment]:
        """Device assignments of a patient, oldest first."""
        rows = self._all("SELECT device_serial, patient_id, hub_id, practice_id, start_at, "
                         "end_at FROM device_assignments WHERE patient_id = ? AND "
                         "practice_id = ? ORDER BY start_at, id", (patient_id, practice_id))
        out = []
        for r in rows:
            start = self._from_ts(r[4])
            assert start is not None
            out.append(DeviceAssignment(device_serial=r[0], patient_id=r[1], hub_id=r[2],
                                        practice_id=r[3], start=start, end=self._from_ts(r[5])))
        return out

    def readings_page(
        self,
        patient_id: str,
        practice_id: str,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        metric: Metric | None = None,
        after: tuple[datetime, str] | None = None,
        limit: int = 100,
    ) -> list[Reading]:
        """Readings oldest first, keyset-paginated after (measured_at, id) of the last seen."""
        q = self._readings_query(patient_id, practice_id, start, end, metric)
        if after is not None:
            q.sql += " AND (measured_at > ? OR (measured_at = ? AND id > ?))"
            q.params.extend([self._ts(after[0]), self._ts(after[0]), after[1]])
        q.sql += " ORDER BY measured_at, id LIMIT ?"
        q.params.append(int(limit))
        return [self._reading(r) for r in self._all(q.sql, q.params)]

    def latest_device_readings(self, serial: str, practice_id: str) -> Reading | None:
        """The most recent reading of a device (for device health), if any."""
        from gateway.store.sql import READING_COLUMNS

        rows = self._all(f"SELECT {', '.join(READING_COLUMNS)} FROM readings WHERE "
                         "device_serial = ? AND practice_id = ? ORDER BY measured_at DESC, "
                         "id DESC LIMIT 1", (serial, practice_id))
        return self._reading(rows[0]) if rows else None

    # -- hub credentials -------------------------------------------------------
    def set_hub_credentials(self, creds: HubCredentials) -> None:
        """Create or replace a hub's MQTT credentials (hash only, never the password)."""
        with self._tx() as cur:
            dup = self._exec(cur, "SELECT hub_id FROM hub_credentials WHERE mqtt_username = ? "
                                  "AND hub_id <> ?", (creds.mqtt_username, creds.hub_id)
                             ).fetchone()
            if dup is not None:
                raise Conflict("MQTT username already in use")
            self._exec(cur, "INSERT INTO hub_credentials (hub_id, practice_id, mqtt_username, "
                            "password_hash, created_at) VALUES (?, ?, ?, ?, ?) "
                            "ON CONFLICT (hub_id) DO UPDATE SET "
                            "mqtt_username = excluded.mqtt_username, "
                            "password_hash = excluded.password_hash, "
                            "created_at = excluded.created_at",
                       (creds.hub_id, creds.practice_id, creds.mqtt_username,
                        creds.password_hash, self._ts(creds.created_at)))
            self._exec(cur, "UPDATE hubs SET mqtt_username = ? WHERE id = ?",
                       (creds.mqtt_username, creds.hub_id))

    def get_hub_credentials(self, mqtt_username: str) -> HubCredentials:
        """Credentials by MQTT username (for the broker's auth hook) or :class:`NotFound`."""
        r = self._one("SELECT hub_id, practice_id, mqtt_username, password_hash, created_at "
                      "FROM hub_credentials WHERE mqtt_username = ?", (mqtt_username,),
                      "hub credentials")
        created = self._from_ts(r[4])
        assert created is not None
        return HubCredentials(hub_id=r[0], practice_id=r[1], mqtt_username=r[2],
                              password_hash=r[3], created_at=created)

    # -- assignments and enrolment queries -------------------------------------
    def end_assignment(self, serial: str, patient_id: str, practice_id: str,
                       end: datetime) -> None:
        """Close the open assignment of ``serial`` to ``patient_id`` at ``end``."""
        with self._tx() as cur:
            cur = self._exec(cur, "UPDATE device_assignments SET end_at = ? WHERE "
                                  "device_serial = ? AND patient_id = ? AND practice_id = ? "
                                  "AND end_at IS NULL AND start_at <= ?",
                             (self._ts(end), serial, patient_id, practice_id, self._ts(end)))
            if cur.rowcount < 1:
                raise NotFound(f"open assignment of device {serial}")

    def patients_with_condition(self, practice_id: str, condition: str) -> list[str]:
        """Ids of the practice's patients enrolled with ``condition``."""
        rows = self._all("SELECT patient_id, conditions FROM enrollments WHERE practice_id = ?",
                         (practice_id,))
        return sorted(r[0] for r in rows if condition in r[1].split(","))
