"""Billing settings keyed by date of service, and the calendar month.

CMS changes thresholds and adds codes from one year to the next (the 2026
rule lowered the 99453 minimum from 16 to 2 device days and added 99445 and
99470).  Those are data here, looked up by date of service, never constants
sprinkled through the evaluator.  Thresholds that have not changed live as
named fields with their CMS meaning next to them.
"""

from __future__ import annotations

import calendar
import functools
import re
from dataclasses import dataclass
from datetime import date

#: The first day the CMS 2026 physician fee schedule applies.
CY2026 = date(2026, 1, 1)

_MONTH_RE = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True, slots=True, order=True)
class BillingMonth:
    """A calendar month (in the practice's time zone when applied to instants)."""

    year: int
    month: int

    def __post_init__(self) -> None:
        if not 1 <= self.month <= 12 or not 1 <= self.year <= 9999:
            raise ValueError(f"not a month: {self.year}-{self.month}")

    @classmethod
    def parse(cls, text: str) -> BillingMonth:
        """Parse ``YYYY-MM``; raises ``ValueError`` otherwise."""
        match = _MONTH_RE.match(text.strip())
        if match is None:
            raise ValueError(f"month {text!r} is not YYYY-MM")
        return cls(int(match.group(1)), int(match.group(2)))

    @classmethod
    def of(cls, day: date) -> BillingMonth:
        """The month containing ``day``."""
        return cls(day.year, day.month)

    @property
    def first_day(self) -> date:
        """First day of the month."""
        return date(self.year, self.month, 1)

    @property
    def last_day(self) -> date:
        """Last day of the month (inclusive)."""
        return _last_day(self.year, self.month)

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and (day.year, day.month) == (self.year, self.month)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


@functools.lru_cache(maxsize=1024)
def _last_day(year: int, month: int) -> date:
    # month-end runs ask this ~20 times per patient; calendar.monthrange is slow
    return date(year, month, calendar.monthrange(year, month)[1])


@dataclass(frozen=True, slots=True)
class BillingRules:
    """Thresholds, with the ones that changed over time keyed by date of service.

    ``setup_min_days`` is a schedule of ``(effective_from, minimum device days)``
    pairs sorted by date; the entry in force on a date of service is the last
    one whose ``effective_from`` is on or before it.
    """

    #: 99453: minimum device days in the period; 16 before 2026, 2 from 2026.
    setup_min_days: tuple[tuple[date, int], ...] = ((date.min, 16), (CY2026, 2))
    #: 99445 (device supply 2-15 days) exists for dates of service from this day.
    code_99445_from: date = CY2026
    #: 99470 (first 10 minutes of treatment management) exists from this day.
    code_99470_from: date = CY2026
    #: Length of an RPM period in days (CMS: "each 30 days").
    period_days: int = 30
    #: 99454: device days needed in a period.
    full_supply_min_days: int = 16
    #: 99445: fewest device days for the reduced device-supply code.
    short_supply_min_days: int = 2
    #: 99470 / 99457: RPM minutes in the month.
    rpm_first_10: int = 10
    rpm_first_20: int = 20
    #: 99458: each further full block of RPM minutes.
    rpm_add_on: int = 20
    #: 99490 / 99439 (CCM, clinical staff).
    ccm_staff_first: int = 20
    ccm_staff_add_on: int = 20
    ccm_staff_add_on_max_units: int = 2
    #: 99487 / 99489 (complex CCM, clinical staff).
    ccm_complex_first: int = 60
    ccm_complex_add_on: int = 30
    #: 99491 / 99437 (CCM, physician or QHP personally).
    ccm_physician_first: int = 30
    ccm_physician_add_on: int = 30
    #: 99426 / 99427 (PCM, clinical staff) and 99424 / 99425 (PCM, physician).
    pcm_first: int = 30
    pcm_add_on: int = 30
    #: CCM needs this many chronic conditions, PCM this many.
    ccm_min_conditions: int = 2
    pcm_min_conditions: int = 1

    def __post_init__(self) -> None:
        if not self.setup_min_days:
            raise ValueError("setup_min_days needs at least one entry")
        dates = [d for d, _ in self.setup_min_days]
        if dates != sorted(dates) or len(set(dates)) != len(dates):
            raise ValueError("setup_min_days must be sorted by date without repeats")
        if self.period_days < 1:
            raise ValueError("period_days must be positive")

    def setup_min_days_on(self, date_of_service: date) -> int:
        """Minimum device days for 99453 on ``date_of_service``."""
        in_force = self.setup_min_days[0][1]
        for effective_from, days in self.setup_min_days:
            if effective_from <= date_of_service:
                in_force = days
        return in_force

    def has_99445(self, date_of_service: date) -> bool:
        """True when 99445 exists on ``date_of_service``."""
        return date_of_service >= self.code_99445_from

    def has_99470(self, date_of_service: date) -> bool:
        """True when 99470 exists on ``date_of_service``."""
        return date_of_service >= self.code_99470_from


DEFAULT_RULES = BillingRules()
