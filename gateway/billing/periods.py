"""Device days and RPM periods.

A device day is a local calendar day, in the patient's time zone, with at
least one qualifying reading (device-transmitted, with a value) from any of
the patient's devices.  RPM period k runs from ``start + 30(k-1)`` to
``start + 30k - 1`` inclusive; periods are never stretched, shifted or gapped.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from gateway.billing.model import BillingProfile, RpmPeriod
from gateway.model import ReadingSource

#: (measured_at as an aware instant, source, whether it carries a value)
RawReading = tuple[datetime, ReadingSource, bool]


def local_device_days(readings: Iterable[RawReading], tz: str | ZoneInfo) -> tuple[date, ...]:
    """Sorted distinct local days (in ``tz``) with at least one qualifying reading.

    A reading qualifies when its source is the device (not typed in) and it
    carries a value.  Naive instants are refused with ``ValueError``.
    """
    zone = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
    days: set[date] = set()
    for measured_at, source, has_value in readings:
        if measured_at.tzinfo is None or measured_at.utcoffset() is None:
            raise ValueError(f"naive measured_at {measured_at.isoformat()}")
        if source == ReadingSource.DEVICE and has_value:
            days.add(measured_at.astimezone(zone).date())
    return tuple(sorted(days))


def monitoring_start(profile: BillingProfile, device_days: Iterable[date]) -> date | None:
    """The episode's monitoring start.

    The enrolment's ``monitoring_start`` when set; otherwise the first device
    day on or after consent; ``None`` without consent or without such a day.
    """
    if profile.monitoring_start is not None:
        return profile.monitoring_start
    if profile.consent_date is None:
        return None
    consent = profile.consent_date
    return min((d for d in device_days if d >= consent), default=None)


def period_index(start: date, day: date, period_days: int = 30) -> int:
    """1-based index of the period containing ``day`` (0 or less: before start)."""
    return (day - start).days // period_days + 1


def period_bounds(start: date, index: int, period_days: int = 30) -> tuple[date, date]:
    """First and last (inclusive) day of period ``index`` (1-based)."""
    first = start + timedelta(days=period_days * (index - 1))
    return first, first + timedelta(days=period_days - 1)


def rpm_periods(
    start: date,
    through: date,
    device_days: Iterable[date] = (),
    *,
    period_days: int = 30,
) -> tuple[RpmPeriod, ...]:
    """Every period from ``start`` whose first day is on or before ``through``.

    Each period carries the given device days that fall inside it (days before
    ``start`` belong to no period).
    """
    if through < start:
        return ()
    count = period_index(start, through, period_days)
    buckets: list[list[date]] = [[] for _ in range(count)]
    for day in sorted(set(device_days)):
        k = period_index(start, day, period_days)
        if 1 <= k <= count:
            buckets[k - 1].append(day)
    periods = []
    for k in range(1, count + 1):
        first, last = period_bounds(start, k, period_days)
        periods.append(RpmPeriod(index=k, start=first, end=last, days=tuple(buckets[k - 1])))
    return tuple(periods)
