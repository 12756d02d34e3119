"""Billing inputs from the store: device days from the day rollup, time entries.

Device days come from ``device_day_months`` (one bit per local day in a mask
per patient and month, maintained in the same transaction as the readings and
``reading_days``), never from the raw readings, so a month-end run reads one
small row per patient-month.  Time entries belong to exactly one program; adding one
that overlaps an entry of the same patient in another program returns a
warning (the same minutes must not count twice).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from gateway.billing.model import Performer, TimeEntry
from gateway.model import Program


@dataclass(frozen=True, slots=True)
class StoredTimeEntry:
    """A time entry as stored."""

    id: int
    practice_id: str
    patient_id: str
    user_id: str
    program: Program
    activity: str
    started_at: datetime
    minutes: int
    interactive: bool
    performed_by: str
    note: str

    @property
    def ended_at(self) -> datetime:
        """Start plus the minutes."""
        return self.started_at + timedelta(minutes=self.minutes)

    def to_billing(self) -> TimeEntry:
        """The entry as the pure billing evaluation takes it."""
        return TimeEntry(self.patient_id, self.program, self.started_at, self.minutes,
                         self.interactive, Performer(self.performed_by), str(self.id))


def days_of_mask(first: date, mask: int) -> list[date]:
    """The days of the month starting ``first`` whose bit (``day - 1``) is set in ``mask``."""
    days = []
    while mask:
        low = mask & -mask
        days.append(first + timedelta(days=low.bit_length() - 1))
        mask ^= low
    return days


_TE_COLS = ("id, practice_id, patient_id, user_id, program, activity, started_at, minutes, "
            "interactive, performed_by, note")


class BillingStoreMixin:
    """Device days and time entries; mixed into SqlStore."""

    _tx: Any
    _exec: Any
    _all: Any
    _ts: Any
    _from_ts: Any
    _d: Any
    _from_d: Any
    _bool: Any

    def device_days(self, practice_id: str, start: date, end: date,
                    patient_ids: list[str] | None = None) -> dict[str, list[date]]:
        """Per patient, local days ``start..end`` with a device-transmitted reading."""
        out: dict[str, list[date]] = defaultdict(list)
        for pid, first, mask in self.device_day_masks(practice_id, start, end, patient_ids):
            for day in days_of_mask(first, mask):
                if start <= day <= end:
                    out[pid].append(day)
        return {pid: sorted(days) for pid, days in out.items()}

    def device_day_masks(self, practice_id: str, start: date, end: date,
                         patient_ids: list[str] | None = None) -> list[tuple[str, date, int]]:
        """``(patient_id, first of month, mask)`` rows for the months overlapping
        ``start..end``: bit ``d - 1`` of the mask is set when local day ``d`` of that
        month had a device-transmitted reading (maintained with ``reading_days``)."""
        sql = ("SELECT patient_id, month, days FROM device_day_months WHERE practice_id = ? "
               "AND month >= ? AND month <= ?")
        params: list[Any] = [practice_id, self._d(start.replace(day=1)), self._d(end)]
        if patient_ids is not None:
            if not patient_ids:
                return []
            sql += f" AND patient_id IN ({', '.join('?' * len(patient_ids))})"
            params.extend(patient_ids)
        rows = self._all(sql, params)
        return [(pid, self._from_d(month), int(mask)) for pid, month, mask in rows]

    def _te(self, r: Any) -> StoredTimeEntry:
        return StoredTimeEntry(int(r[0]), r[1], r[2], r[3], Program(r[4]), r[5],
                               self._from_ts(r[6]), int(r[7]), bool(r[8]), r[9], r[10])

    def add_time_entry(self, *, practice_id: str, patient_id: str, user_id: str,
                       program: Program, activity: str, started_at: datetime, minutes: int,
                       interactive: bool, performed_by: str, note: str,
                       now: datetime) -> tuple[StoredTimeEntry, list[str]]:
        """Store an entry; return it and warnings about minutes counted twice."""
        end = started_at + timedelta(minutes=minutes)
        with self._tx() as cur:
            rows = self._exec(cur, f"SELECT {_TE_COLS} FROM time_entries WHERE patient_id = ? "
                                   "AND started_at < ? AND started_at >= ?",
                              (patient_id, self._ts(end),
                               self._ts(started_at - timedelta(hours=8)))).fetchall()
            warnings = []
            for other in (self._te(r) for r in rows):
                if other.ended_at > started_at and other.user_id == user_id:
                    same = "the same program" if other.program == program else \
                        f"{other.program.value}"
                    warnings.append(f"overlaps time entry {other.id} ({other.minutes} min of "
                                    f"{same} from {other.started_at.isoformat()}): the same "
                                    "minutes must not count twice")
            row = self._exec(cur, "INSERT INTO time_entries (practice_id, patient_id, user_id, "
                                  "program, activity, started_at, minutes, interactive, "
                                  "performed_by, note, created_at) VALUES "
                                  "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                             (practice_id, patient_id, user_id, program.value, activity,
                              self._ts(started_at), minutes, self._bool(interactive),
                              performed_by, note, self._ts(now))).fetchone()
        entry = StoredTimeEntry(int(row[0]), practice_id, patient_id, user_id, program,
                                activity, started_at, minutes, interactive, performed_by, note)
        return entry, warnings

    def list_time_entries(self, practice_id: str, start: datetime, end: datetime,
                          patient_id: str | None = None) -> list[StoredTimeEntry]:
        """Entries started in ``[start, end)`` (of one patient when given), oldest first."""
        sql = (f"SELECT {_TE_COLS} FROM time_entries WHERE practice_id = ? AND started_at >= ? "
               "AND started_at < ?")
        params: list[Any] = [practice_id, self._ts(start), self._ts(end)]
        if patient_id is not None:
            sql += " AND patient_id = ?"
            params.append(patient_id)
        return [self._te(r) for r in self._all(sql + " ORDER BY started_at, id", params)]
