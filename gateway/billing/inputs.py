"""File readers for the billing CLI: the only place foreign text becomes
billing values.  Every error names the file and the line (or JSON entry).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from gateway.billing.model import BillingInputError, BillingProfile, Performer, TimeEntry, zone
from gateway.billing.periods import RawReading
from gateway.billing.rules import BillingMonth
from gateway.model import Program, ReadingSource
from gateway.units import Metric, UnitError, parse_unit, to_canonical

#: Metrics a readings file may carry.
READING_METRICS: frozenset[Metric] = frozenset(
    {Metric.WEIGHT, Metric.SYSTOLIC, Metric.DIASTOLIC, Metric.PULSE, Metric.SPO2, Metric.GLUCOSE}
)
READINGS_HEADER = ("patient_id", "measured_at", "metric", "value", "unit")
TIME_HEADER = ("patient_id", "program", "started_at", "minutes", "interactive", "performed_by")
_TRUE = frozenset({"true", "yes", "y", "1"})
_FALSE = frozenset({"false", "no", "n", "0", ""})


@dataclass(frozen=True, slots=True)
class _Row:
    """One CSV row with where it came from."""

    source: str
    line: int
    fields: Mapping[str, str]

    def error(self, message: str) -> BillingInputError:
        return BillingInputError(message, source=self.source, line=self.line)

    def get(self, name: str) -> str:
        return (self.fields.get(name) or "").strip()

    def required(self, name: str) -> str:
        value = self.get(name)
        if not value:
            raise self.error(f"{name} is empty")
        return value


def _rows(path: Path, header: tuple[str, ...]) -> Iterator[_Row]:
    """Rows of a CSV file, checked against the required ``header`` columns."""
    source = str(path)
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        columns = reader.fieldnames
        if columns is None:
            raise BillingInputError("file is empty (no header)", source=source, line=1)
        missing = [c for c in header if c not in columns]
        if missing:
            raise BillingInputError(
                f"header lacks column(s) {', '.join(missing)}", source=source, line=1
            )
        try:
            for raw in reader:
                row = _Row(source, reader.line_num, raw)
                if None in raw:
                    raise row.error("more fields than the header has")
                if any(raw.get(c) is None for c in columns):
                    raise row.error("fewer fields than the header has")
                if not any((v or "").strip() for v in raw.values()):
                    continue  # blank line
                yield row
        except csv.Error as exc:
            raise BillingInputError(
                f"bad CSV: {exc}", source=source, line=reader.line_num
            ) from None


def _instant(row: _Row, name: str) -> datetime:
    text = row.required(name)
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise row.error(f"{name} {text!r} is not an ISO 8601 date-time") from None
    if value.tzinfo is None or value.utcoffset() is None:
        raise row.error(f"{name} {text!r} has no UTC offset (add Z or +hh:mm)")
    return value


def _iso_date(value: object, what: str, source: str) -> date | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise BillingInputError(f"{what} must be a YYYY-MM-DD string or null", source=source)
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise BillingInputError(f"{what} {value!r} is not YYYY-MM-DD", source=source) from None


def _str_list(value: object, what: str, source: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BillingInputError(f"{what} must be a list of strings", source=source)
    return list(value)


def load_patients(path: Path) -> list[BillingProfile]:
    """Read the patients JSON file (a list of enrolment objects)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise BillingInputError(f"bad JSON: {exc.msg}", source=str(path), line=exc.lineno) from None
    if not isinstance(data, list):
        raise BillingInputError("expected a JSON list of patients", source=str(path))
    profiles: list[BillingProfile] = []
    seen: set[str] = set()
    for n, item in enumerate(data, start=1):
        source = f"{path} entry {n}"
        if not isinstance(item, dict):
            raise BillingInputError("patient must be a JSON object", source=source)
        pid = item.get("id")
        if not isinstance(pid, str) or not pid:
            raise BillingInputError("id must be a non-empty string", source=source)
        source = f"{path} entry {n} (id {pid!r})"
        if pid in seen:
            raise BillingInputError("duplicate patient id", source=source)
        seen.add(pid)
        tz = item.get("timezone")
        if not isinstance(tz, str):
            raise BillingInputError("timezone must be an IANA zone name", source=source)
        try:
            zone(tz)
            programs = frozenset(
                Program(p.upper()) for p in _str_list(item.get("programs"), "programs", source)
            )
        except BillingInputError as exc:
            raise BillingInputError(exc.message, source=source) from None
        except ValueError:
            raise BillingInputError(
                f"programs must be among {', '.join(Program)}", source=source
            ) from None
        try:
            months = frozenset(
                BillingMonth.parse(m)
                for m in _str_list(item.get("complex_ccm_months"), "complex_ccm_months", source)
            )
        except BillingInputError:
            raise
        except ValueError as exc:
            raise BillingInputError(f"complex_ccm_months: {exc}", source=source) from None
        profiles.append(
            BillingProfile(
                patient_id=pid,
                timezone=tz,
                programs=programs,
                conditions=frozenset(_str_list(item.get("conditions"), "conditions", source)),
                consent_date=_iso_date(item.get("consent_date"), "consent_date", source),
                monitoring_start=_iso_date(
                    item.get("monitoring_start"), "monitoring_start", source
                ),
                complex_ccm_months=months,
            )
        )
    return profiles


def load_readings(path: Path, patients: frozenset[str]) -> dict[str, list[RawReading]]:
    """Read the readings CSV into (measured_at, source, has_value) per patient.

    A glucose value of LO or HI is a value (the meter measured, out of its
    range); an empty value or NaN is not (failed measurement).
    """
    out: dict[str, list[RawReading]] = {}
    for row in _rows(path, READINGS_HEADER):
        pid = row.required("patient_id")
        if pid not in patients:
            raise row.error(f"patient {pid!r} is not in the patients file")
        measured_at = _instant(row, "measured_at")
        try:
            metric = Metric(row.required("metric").lower())
        except ValueError:
            metric = None
        if metric not in READING_METRICS or metric is None:
            raise row.error(
                f"metric {row.get('metric')!r} is not one of "
                f"{', '.join(sorted(READING_METRICS))}"
            )
        try:
            unit = parse_unit(row.required("unit"))
            to_canonical(metric, 1, unit)
        except UnitError as exc:
            raise row.error(f"unit: {exc}") from None
        text = row.get("value")
        if text.upper() in {"LO", "HI"}:
            if metric != Metric.GLUCOSE:
                raise row.error(f"value {text!r} is only allowed for glucose")
            has_value = True
        elif not text:
            has_value = False
        else:
            try:
                has_value = math.isfinite(float(text))
            except ValueError:
                raise row.error(f"value {text!r} is not a number (nor LO/HI)") from None
        try:
            source = ReadingSource(row.get("source").lower() or ReadingSource.DEVICE)
        except ValueError:
            raise row.error(f"source {row.get('source')!r} is not device or manual") from None
        out.setdefault(pid, []).append((measured_at, source, has_value))
    return out


def load_time_entries(path: Path, patients: frozenset[str]) -> dict[str, list[TimeEntry]]:
    """Read the time CSV into entries per patient; ids default to ``file:line``."""
    out: dict[str, list[TimeEntry]] = {}
    for row in _rows(path, TIME_HEADER):
        pid = row.required("patient_id")
        if pid not in patients:
            raise row.error(f"patient {pid!r} is not in the patients file")
        try:
            program = Program(row.required("program").upper())
        except ValueError:
            raise row.error(
                f"program {row.get('program')!r} is not one of {', '.join(Program)}"
            ) from None
        started_at = _instant(row, "started_at")
        text = row.required("minutes")
        if not (text.isascii() and text.isdigit()) or int(text) <= 0:
            raise row.error(f"minutes {text!r} is not a positive whole number")
        flag = row.get("interactive").lower()
        if flag not in _TRUE | _FALSE:
            raise row.error(f"interactive {flag!r} is not true or false")
        try:
            performer = Performer(row.required("performed_by").lower())
        except ValueError:
            raise row.error(
                f"performed_by {row.get('performed_by')!r} is not one of "
                f"{', '.join(Performer)}"
            ) from None
        entry = TimeEntry(
            patient_id=pid,
            program=program,
            started_at=started_at,
            minutes=int(text),
            interactive=flag in _TRUE,
            performed_by=performer,
            id=row.get("id") or f"{path.name}:{row.line}",
        )
        out.setdefault(pid, []).append(entry)
    return out
