"""Date Time (0x2A08) and Current Time (0x2A2B).

A zero year, month or day means "unknown" and must never become a real date;
out-of-range parts are "invalid".  Either makes :meth:`DateTime.to_datetime`
return ``None`` while the raw parts stay available.  Times are the device's
local wall-clock time, so the datetimes are naive on purpose: the hub decides
the zone and the clock offset, not the decoder.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import ClassVar

from edge_agent.gatt.numbers import Reader

DATE_TIME = 0x2A08
CURRENT_TIME = 0x2A2B

_PARTS = ("year", "month", "day", "hour", "minute", "second")


@dataclass(frozen=True, slots=True)
class DateTime:
    """The 7-byte Date Time structure as the device sent it."""

    characteristic: ClassVar[int] = DATE_TIME

    year: int
    month: int
    day: int
    hour: int
    minute: int
    second: int

    @property
    def unknown(self) -> tuple[str, ...]:
        """Names of the parts the device marked unknown (value 0)."""
        return tuple(
            name
            for name, v in (("year", self.year), ("month", self.month), ("day", self.day))
            if v == 0
        )

    @property
    def invalid(self) -> tuple[str, ...]:
        """Names of parts outside the SIG range (or a day the month lacks)."""
        bad: list[str] = []
        if self.year != 0 and not 1582 <= self.year <= 9999:
            bad.append("year")
        if self.month > 12:
            bad.append("month")
        if self.day > 31:
            bad.append("day")
        if self.hour > 23:
            bad.append("hour")
        if self.minute > 59:
            bad.append("minute")
        if self.second > 59:
            bad.append("second")
        if not bad and not self.unknown:
            try:
                self._build()
            except ValueError:
                bad.append("day")
        return tuple(bad)

    def _build(self) -> datetime:
        # Device-local wall time: deliberately naive (see module docstring).
        return datetime(  # noqa: DTZ001
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )

    def to_datetime(self) -> datetime | None:
        """The naive local device time, or ``None`` if any part is unknown or invalid."""
        if self.unknown or self.invalid:
            return None
        return self._build()

    def parts(self) -> dict[str, object]:
        """Raw parts plus the lists of unknown and invalid parts (JSON-ready)."""
        out: dict[str, object] = {name: getattr(self, name) for name in _PARTS}
        out["unknown"] = list(self.unknown)
        out["invalid"] = list(self.invalid)
        return out

    def json_fields(self) -> dict[str, object]:
        """Fields for :func:`edge_agent.gatt.to_json_dict`."""
        return {"timestamp": iso(self.to_datetime()), "timestamp_parts": self.parts()}


def iso(dt: datetime | None) -> str | None:
    """ISO 8601 without zone (the device's local time), or ``None``."""
    return None if dt is None else dt.isoformat()


def read_date_time(r: Reader, field: str = "date_time") -> DateTime:
    """Read the 7-byte Date Time structure."""
    return DateTime(
        year=r.u16(f"{field}.year"),
        month=r.u8(f"{field}.month"),
        day=r.u8(f"{field}.day"),
        hour=r.u8(f"{field}.hour"),
        minute=r.u8(f"{field}.minute"),
        second=r.u8(f"{field}.second"),
    )


def add_minutes(base: DateTime, minutes: int) -> datetime | None:
    """``base + minutes`` as a naive datetime, or ``None`` if not computable."""
    dt = base.to_datetime()
    if dt is None:
        return None
    try:
        return dt + timedelta(minutes=minutes)
    except OverflowError:
        return None


ADJUST_REASONS = (
    "manual_time_update",
    "external_reference_time_update",
    "change_of_time_zone",
    "change_of_dst",
)
DAYS_OF_WEEK = (
    "unknown",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
)


@dataclass(frozen=True, slots=True)
class CurrentTime:
    """Current Time (0x2A2B): Date Time, day of week, 1/256 s, adjust reason."""

    characteristic: ClassVar[int] = CURRENT_TIME

    date_time: DateTime
    day_of_week: int  # 0 unknown, 1 Monday .. 7 Sunday
    fractions256: int
    adjust_reason: int

    @property
    def adjust_reason_names(self) -> list[str]:
        """Snake-case names of the adjust-reason bits that are set."""
        return [n for i, n in enumerate(ADJUST_REASONS) if self.adjust_reason & (1 << i)]

    def json_fields(self) -> dict[str, object]:
        """Fields for :func:`edge_agent.gatt.to_json_dict`."""
        out = self.date_time.json_fields()
        dow = self.day_of_week
        out["day_of_week"] = DAYS_OF_WEEK[dow] if dow < len(DAYS_OF_WEEK) else f"reserved_{dow}"
        out["fractions256"] = self.fractions256
        out["status"] = self.adjust_reason_names
        return out


def decode_date_time(data: bytes) -> DateTime:
    """Decode Date Time (0x2A08)."""
    return read_date_time(Reader(DATE_TIME, data))


def decode_current_time(data: bytes) -> CurrentTime:
    """Decode Current Time (0x2A2B)."""
    r = Reader(CURRENT_TIME, data)
    return CurrentTime(
        date_time=read_date_time(r),
        day_of_week=r.u8("day_of_week"),
        fractions256=r.u8("fractions256"),
        adjust_reason=r.u8("adjust_reason"),
    )
