"""Inputs and outputs of billing evaluation: frozen, slotted value objects.

Inputs are built by the caller (the store's day rollup, the time log, or the
CLI's file readers); outputs convert to plain JSON-ready dicts with
``to_dict()``.  Dates are ISO strings in the dicts; period ends are inclusive.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.billing.rules import BillingMonth
from gateway.model import Program

#: A JSON-ready value, as produced by ``to_dict()``.
JSONValue = (
    str | int | float | bool | None | Sequence["JSONValue"] | Mapping[str, "JSONValue"]
)
JSONDict = dict[str, JSONValue]


class BillingError(Exception):
    """Base of the billing package's errors."""


class BillingInputError(BillingError, ValueError):
    """Input that cannot be evaluated; says which file and line when known."""

    def __init__(self, message: str, *, source: str | None = None, line: int | None = None):
        self.message = message
        self.source = source
        self.line = line
        where = source or ""
        if line is not None:
            where = f"{where} line {line}" if where else f"line {line}"
        super().__init__(f"{where}: {message}" if where else message)


class Performer(StrEnum):
    """Who spent the time: clinical staff, or the physician/QHP personally."""

    CLINICAL_STAFF = "clinical_staff"
    PHYSICIAN = "physician"


def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``; raises :class:`BillingInputError` if unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise BillingInputError(f"unknown time zone {name!r}") from None


@dataclass(frozen=True, slots=True)
class BillingProfile:
    """What billing needs to know about one patient's enrolment.

    ``conditions`` are free-text chronic conditions (codes or names); only
    their number matters here.  ``complex_ccm_months`` are the months in which
    a complex CCM care plan was established or substantially revised.
    """

    patient_id: str
    timezone: str
    programs: frozenset[Program]
    conditions: frozenset[str] = frozenset()
    consent_date: date | None = None
    monitoring_start: date | None = None
    complex_ccm_months: frozenset[BillingMonth] = frozenset()

    def __post_init__(self) -> None:
        if not self.patient_id:
            raise BillingInputError("patient id is empty")
        zone(self.timezone)


@dataclass(frozen=True, slots=True)
class TimeEntry:
    """Minutes of care-management time logged for one patient and one program."""

    patient_id: str
    program: Program
    started_at: datetime
    minutes: int
    interactive: bool = False
    performed_by: Performer = Performer.CLINICAL_STAFF
    id: str | None = None

    def __post_init__(self) -> None:
        if self.started_at.tzinfo is None or self.started_at.utcoffset() is None:
            raise BillingInputError(f"time entry {self.label}: started_at has no time zone")
        if self.minutes <= 0:
            raise BillingInputError(f"time entry {self.label}: minutes must be positive")

    @property
    def label(self) -> str:
        """The entry's id, or a description when it has none."""
        return self.id if self.id is not None else f"{self.program}@{self.started_at.isoformat()}"

    @property
    def ended_at(self) -> datetime:
        """Start plus the logged minutes."""
        return self.started_at + timedelta(minutes=self.minutes)


@dataclass(frozen=True, slots=True)
class RpmPeriod:
    """One 30-day RPM period: ``start``..``end`` inclusive, with its device days."""

    index: int  # 1-based: period k of the episode
    start: date
    end: date
    days: tuple[date, ...] = ()

    @property
    def device_days(self) -> int:
        """Number of device days in the period."""
        return len(self.days)

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.start <= day <= self.end

    @property
    def label(self) -> str:
        """``start..end`` as in the reasons."""
        return f"{self.start.isoformat()}..{self.end.isoformat()}"

    def to_dict(self) -> JSONDict:
        """JSON-ready form."""
        return {
            "index": self.index,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "device_days": self.device_days,
            "days": [d.isoformat() for d in self.days],
        }


@dataclass(frozen=True, slots=True)
class BilledCode:
    """A billable code with its units, the reason, and its period if period-based."""

    code: str
    units: int
    reason: str
    period: RpmPeriod | None = None

    def to_dict(self) -> JSONDict:
        """JSON-ready form."""
        out: JSONDict = {"code": self.code, "units": self.units, "reason": self.reason}
        if self.period is not None:
            out["period"] = self.period.label
        return out


@dataclass(frozen=True, slots=True)
class NotBillable:
    """A code that was considered and not billed, with why in plain words."""

    code: str
    reason: str

    def to_dict(self) -> JSONDict:
        """JSON-ready form."""
        return {"code": self.code, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class MonthReport:
    """One patient's billing for one month."""

    patient_id: str
    month: BillingMonth
    periods: tuple[RpmPeriod, ...]
    codes: tuple[BilledCode, ...]
    not_billable: tuple[NotBillable, ...]
    evidence: Mapping[str, JSONValue] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def code_units(self) -> dict[str, int]:
        """Total units per billed code (convenience for callers and tests)."""
        out: dict[str, int] = {}
        for c in self.codes:
            out[c.code] = out.get(c.code, 0) + c.units
        return out

    def to_dict(self) -> JSONDict:
        """JSON-ready form (the CLI prints this)."""
        return {
            "patient_id": self.patient_id,
            "month": str(self.month),
            "periods": [p.to_dict() for p in self.periods],
            "codes": [c.to_dict() for c in self.codes],
            "not_billable": [n.to_dict() for n in self.not_billable],
            "evidence": dict(self.evidence),
            "warnings": list(self.warnings),
        }
