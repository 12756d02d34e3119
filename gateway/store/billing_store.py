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
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from gateway.billing.bulk import NO_DATE, PROGRAM_COLUMN, PanelInputs, entry_arrays
from gateway.billing.model import Performer, TimeEntry
from gateway.model import Condition, Program
from gateway.store.base import Where


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


_CONDITIONS = frozenset(c.value for c in Condition)


def days_of_masks(patient: npt.NDArray[np.int64], first: npt.NDArray[np.int64],
                  mask: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int64],
                                                        npt.NDArray[np.int64]]:
    """(patient, day ordinal) pairs of the set bits of month masks (bit ``d - 1`` is day
    ``d``; ``first`` is each mask's first-of-month ordinal)."""
    row, bit = np.nonzero((mask[:, None] >> np.arange(31, dtype=np.int64)) & 1)
    return patient[row], first[row] + bit


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
        rows = self.device_day_masks(practice_id, start, end, patient_ids)
        row, day = days_of_masks(np.arange(len(rows), dtype=np.int64),
                                 np.array([r[1].toordinal() for r in rows], dtype=np.int64),
                                 np.array([r[2] for r in rows], dtype=np.int64))
        out: dict[str, list[date]] = defaultdict(list)
        lo, hi = start.toordinal(), end.toordinal()
        for r, d in zip(row.tolist(), day.tolist(), strict=True):
            if lo <= d <= hi:
                out[rows[r][0]].append(date.fromordinal(d))
        return {pid: sorted(days) for pid, days in out.items()}

    def device_day_masks(self, practice_id: str, start: date, end: date,
                         patient_ids: list[str] | None = None) -> list[tuple[str, date, int]]:
        """``(patient_id, first of month, mask)`` rows for the months overlapping
        ``start..end``: bit ``d - 1`` of the mask is set when local day ``d`` of that
        month had a device-transmitted reading (maintained with ``reading_days``)."""
        from_d = self._from_d
        return [(pid, from_d(month), int(mask))
                for pid, month, mask in self.device_day_mask_rows(practice_id, start, end,
                                                                  patient_ids)]

    def device_day_mask_rows(self, practice_id: str, start: date, end: date,
                             patient_ids: list[str] | None = None) -> list[tuple[Any, ...]]:
        """:meth:`device_day_masks` as the driver returns the rows (months through
        :meth:`_from_d`)."""
        q = Where("SELECT patient_id, month, days FROM device_day_months WHERE practice_id = ? "
                  "AND month >= ? AND month <= ?",
                  [practice_id, self._d(start.replace(day=1)), self._d(end)])
        q.among("patient_id", patient_ids)
        rows: list[tuple[Any, ...]] = self._all(q.sql, q.params)
        return rows

    def billing_panel_inputs(self, practice_id: str, *, window: date, through: date,
                             month: date, entries_from: datetime, entries_to: datetime,
                             tz: ZoneInfo) -> PanelInputs:
        """Month-end inputs of a whole practice as arrays (see
        :func:`gateway.billing.from_store.practice_month_codes`): every enrolment whose
        patient is in the practice, ordered by patient id; device days ``window`` ..
        ``through`` from the day masks; whether a complex CCM care plan was recorded for
        the month starting ``month``; entries started in ``[entries_from,
        entries_to)`` with their start date in ``tz``."""
        enrolled = self._all(
            "SELECT e.patient_id, e.programs, e.conditions, e.consent_date, "
            "e.monitoring_start FROM enrollments e JOIN patients p "
            "ON p.id = e.patient_id AND p.practice_id = e.practice_id "
            "WHERE e.practice_id = ? ORDER BY e.patient_id", (practice_id,))
        ids = [row[0] for row in enrolled]
        index = {pid: i for i, pid in enumerate(ids)}
        from_d = self._from_d
        flags: dict[tuple[str, str], tuple[bool, bool, bool, int]] = {}
        rows = []
        for _, programs, conditions, consent_date, monitoring_start in enrolled:
            key = (programs, conditions)
            if key not in flags:
                have = set(programs.split(","))
                flags[key] = (Program.RPM.value in have, Program.CCM.value in have,
                              Program.PCM.value in have,
                              len(set(conditions.split(",")) & _CONDITIONS))
            consent, started = from_d(consent_date), from_d(monitoring_start)
            rows.append((*flags[key], consent.toordinal() if consent else NO_DATE,
                         started.toordinal() if started else NO_DATE))
        cols: list[Any] = list(zip(*rows, strict=True)) if rows else [()] * 6

        masks = self.device_day_mask_rows(practice_id, window, through)
        day_patient, day = days_of_masks(
            np.array([index.get(pid, -1) for pid, _, _ in masks], dtype=np.int64),
            np.array([from_d(first).toordinal() for _, first, _ in masks], dtype=np.int64),
            np.array([mask for _, _, mask in masks], dtype=np.int64))
        keep = (day_patient >= 0) & (day >= window.toordinal()) & (day <= through.toordinal())

        physician = Performer.PHYSICIAN.value
        rows = self._all("SELECT patient_id, program, performed_by, minutes, interactive, "
                         "started_at FROM time_entries WHERE practice_id = ? "
                         "AND started_at >= ? AND started_at < ?",
                         (practice_id, self._ts(entries_from), self._ts(entries_to)))
        entries = [(index[pid], PROGRAM_COLUMN[program], who == physician, minutes,
                    bool(live), self._from_ts(at).astimezone(tz).toordinal())
                   for pid, program, who, minutes, live, at in rows if pid in index]
        return PanelInputs(
            patient_ids=ids,
            rpm=np.array(cols[0], dtype=np.bool_), ccm=np.array(cols[1], dtype=np.bool_),
            pcm=np.array(cols[2], dtype=np.bool_),
            n_conditions=np.array(cols[3], dtype=np.int64),
            consent=np.array(cols[4], dtype=np.int64),
            monitoring_start=np.array(cols[5], dtype=np.int64),
            complex_month=self._complex_month_mask(practice_id, month, index),
            day_patient=day_patient[keep], day=day[keep], **entry_arrays(entries))

    def _complex_month_mask(self, practice_id: str, month: date,
                            index: dict[str, int]) -> npt.NDArray[np.bool_]:
        """Per patient of ``index``: is a complex CCM care plan recorded for ``month``."""
        out = np.zeros(len(index), dtype=np.bool_)
        for pid in self.complex_ccm_months(practice_id, month=month):
            if pid in index:
                out[index[pid]] = True
        return out

    # -- complex CCM care-plan months -------------------------------------------
    def set_complex_ccm_month(self, practice_id: str, patient_id: str, month: date,
                              by: str, at: datetime) -> None:
        """Record that the patient's complex CCM care plan was established or
        substantially revised in the month starting ``month`` (idempotent)."""
        with self._tx() as cur:
            self._exec(cur, "INSERT INTO complex_ccm_months (practice_id, patient_id, month, "
                            "recorded_by, recorded_at) VALUES (?, ?, ?, ?, ?) "
                            "ON CONFLICT (patient_id, month) DO NOTHING",
                       (practice_id, patient_id, self._d(month.replace(day=1)), by,
                        self._ts(at)))

    def clear_complex_ccm_month(self, practice_id: str, patient_id: str, month: date) -> bool:
        """Withdraw a month recorded in error; False when it was not recorded."""
        with self._tx() as cur:
            cur = self._exec(cur, "DELETE FROM complex_ccm_months WHERE practice_id = ? "
                                  "AND patient_id = ? AND month = ?",
                             (practice_id, patient_id, self._d(month.replace(day=1))))
            return bool(cur.rowcount)

    def complex_ccm_months(self, practice_id: str, patient_ids: list[str] | None = None,
                           month: date | None = None) -> dict[str, list[date]]:
        """Per patient, the first days of the recorded complex-care-plan months (of one
        month only when ``month`` is given), oldest first."""
        q = Where("SELECT patient_id, month FROM complex_ccm_months WHERE practice_id = ?",
                  [practice_id])
        q.eq("month", None if month is None else self._d(month.replace(day=1)))
        q.among("patient_id", patient_ids)
        out: dict[str, list[date]] = defaultdict(list)
        for pid, first in self._all(q.sql + " ORDER BY patient_id, month", q.params):
            out[pid].append(self._from_d(first))
        return dict(out)

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
        q = Where(f"SELECT {_TE_COLS} FROM time_entries WHERE practice_id = ? "
                  "AND started_at >= ? AND started_at < ?",
                  [practice_id, self._ts(start), self._ts(end)])
        q.eq("patient_id", patient_id)
        return [self._te(r) for r in self._all(q.sql + " ORDER BY started_at, id", q.params)]
