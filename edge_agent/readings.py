"""Decoded GATT measurements -> wire readings (pure: no I/O, clock passed in).

How this works
--------------
:func:`to_wire` takes one decoded measurement from :mod:`edge_agent.gatt`
and the hub's context (receive time, time zone, the device clock offset the
hub observed) and returns the :class:`~gateway.wire.WireReading` with:

* ``id`` from :mod:`edge_agent.identity`;
* the values as the device sent them (value + unit; special values such as
  NaN become ``value: null`` plus ``special``);
* the four times -- ``device_time`` (the device's wall clock text, as stated),
  ``measured_at`` (device time read in the hub's zone, minus the observed
  offset when known), ``clock_offset_s`` and ``received_at`` (the server adds
  the fourth, its ingest time);
* flags: device-reported invalid / questionable / unavailable, body
  movement, cuff loose, irregular pulse, glucose LO/HI, clock corrected and
  ``measurement_unsuccessful`` (a failed measurement is kept as an event
  with no value: it is evidence the patient tried).

Intermediate cuff pressure, continuous PLX, context and control-point
packets are not readings: :func:`to_wire` returns ``None`` for them.

``measured_at``: without a timestamp field (a device with no clock sends
live readings only) it is the receive time; with a timestamp the device
marked unknown, or a PLX "clock not set" without a known offset, it is
``None`` -- the server quarantines such readings instead of guessing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from edge_agent.gatt import (
    BloodPressureMeasurement,
    GlucoseMeasurement,
    PlxSpotCheck,
    Special,
    WeightMeasurement,
)
from edge_agent.gatt.times import DateTime
from edge_agent.identity import reading_id
from gateway.model import DeviceKind, Flag
from gateway.units import Metric, Unit
from gateway.wire import WireReading, WireValue

Number = Decimal | Special

#: Which decoded type each device kind produces as a reading.
READING_TYPES: dict[DeviceKind, type] = {
    DeviceKind.SCALE: WeightMeasurement,
    DeviceKind.BP_CUFF: BloodPressureMeasurement,
    DeviceKind.PULSE_OXIMETER: PlxSpotCheck,
    DeviceKind.GLUCOMETER: GlucoseMeasurement,
}

_PLX_STATUS_FLAGS = ((15, Flag.DEVICE_INVALID), (14, Flag.QUESTIONABLE), (13, Flag.UNAVAILABLE))
_BP_STATUS_FLAGS = ((0, Flag.BODY_MOVEMENT), (1, Flag.CUFF_LOOSE), (2, Flag.IRREGULAR_PULSE))


@dataclass(frozen=True, slots=True)
class HubTime:
    """The hub's view of time for one reading.

    ``clock_offset_s`` is the device clock minus the true time as observed by
    the hub (``None`` when unknown); ``bound_s`` is the offset above which a
    corrected time is flagged ``clock_corrected``.
    """

    received_at: datetime
    tz: ZoneInfo
    clock_offset_s: float | None = None
    bound_s: float = 120.0


def _value(metric: Metric, raw: Number | None, unit: Unit) -> tuple[WireValue, str | None]:
    if isinstance(raw, Special):
        return WireValue(metric=metric, value=None, unit=unit, special=raw.value), raw.value
    if raw is None:
        return WireValue(metric=metric, value=None, unit=unit), None
    return WireValue(metric=metric, value=float(raw), unit=unit), str(raw)


def _bits(status: int | None, table: tuple[tuple[int, Flag], ...]) -> list[Flag]:
    return [flag for bit, flag in table if status is not None and status & (1 << bit)]


def _times(
    stamp: DateTime | None,
    wall: datetime | None,
    hub: HubTime,
    *,
    clock_trusted: bool = True,
) -> tuple[str | None, datetime | None, list[Flag]]:
    """(device_time text, measured_at, flags) for a device time."""
    if stamp is None:
        return None, hub.received_at, []
    text = None if wall is None else wall.isoformat()
    if wall is None:
        return None, None, []
    local = wall.replace(tzinfo=hub.tz)
    if hub.clock_offset_s is None:
        return text, (local if clock_trusted else None), []
    corrected = local - timedelta(seconds=hub.clock_offset_s)
    flags = [Flag.CLOCK_CORRECTED] if abs(hub.clock_offset_s) > hub.bound_s else []
    return text, corrected, flags


def device_wall_time(decoded: object) -> datetime | None:
    """The naive device wall time a decoded measurement states (None if none/unknown)."""
    if isinstance(decoded, GlucoseMeasurement):
        return decoded.user_facing_time()
    stamp = getattr(decoded, "timestamp", None)
    return stamp.to_datetime() if isinstance(stamp, DateTime) else None


def to_wire(kind: DeviceKind, serial: str, decoded: object, hub: HubTime) -> WireReading | None:
    """The wire reading for one decoded measurement, or ``None`` if it is not a reading."""
    if not isinstance(decoded, READING_TYPES[kind]):
        return None
    pairs: list[tuple[WireValue, str | None]]
    flags: list[Flag] = []
    sequence: int | None = None
    unsuccessful: bool
    stamp: DateTime | None
    clock_trusted = True
    if isinstance(decoded, BloodPressureMeasurement):
        pairs = [
            _value(Metric.SYSTOLIC, decoded.systolic, decoded.unit),
            _value(Metric.DIASTOLIC, decoded.diastolic, decoded.unit),
            _value(Metric.MEAN_ARTERIAL, decoded.mean_arterial, decoded.unit),
        ]
        if decoded.pulse is not None:
            pairs.append(_value(Metric.PULSE, decoded.pulse, Unit.PER_MIN))
        flags += _bits(decoded.status, _BP_STATUS_FLAGS)
        unsuccessful = decoded.measurement_unsuccessful
        stamp = decoded.timestamp
    elif isinstance(decoded, WeightMeasurement):
        pairs = [_value(Metric.WEIGHT, decoded.weight, decoded.unit)]
        unsuccessful = decoded.measurement_unsuccessful
        stamp = decoded.timestamp
    elif isinstance(decoded, PlxSpotCheck):
        pairs = [
            _value(Metric.SPO2, decoded.spo2, Unit.PERCENT),
            _value(Metric.PULSE, decoded.pulse_rate, Unit.PER_MIN),
        ]
        if decoded.perfusion_index is not None:
            pairs.append(_value(Metric.PERFUSION_INDEX, decoded.perfusion_index, Unit.PERCENT))
        flags += _bits(decoded.measurement_status, _PLX_STATUS_FLAGS)
        unsuccessful = decoded.measurement_unsuccessful
        stamp = decoded.timestamp
        clock_trusted = not decoded.device_clock_not_set
    else:
        assert isinstance(decoded, GlucoseMeasurement)
        value, text = _value(Metric.GLUCOSE, decoded.concentration, decoded.unit)
        lo_hi = decoded.lo_hi
        if lo_hi is not None:
            flags.append(Flag.GLUCOSE_HI if lo_hi == "hi" else Flag.GLUCOSE_LO)
            if value.value is None:
                value = WireValue(metric=Metric.GLUCOSE, value=None, unit=decoded.unit,
                                  special="hi" if lo_hi == "hi" else "lo")
        pairs = [(value, text)]
        unsuccessful = decoded.measurement_unsuccessful and lo_hi is None
        sequence = decoded.sequence
        stamp = decoded.base_time
    if unsuccessful:
        flags.append(Flag.MEASUREMENT_UNSUCCESSFUL)
    wall = device_wall_time(decoded)
    device_time, measured_at, time_flags = _times(stamp, wall, hub, clock_trusted=clock_trusted)
    flags += time_flags
    unit = pairs[0][0].unit
    rid = reading_id(
        kind, serial,
        values={v.metric.value: text for v, text in pairs},
        unit=str(unit),
        sequence=sequence,
        device_time=device_time,
        received_at=hub.received_at,
    )
    return WireReading(
        id=rid,
        device_time=device_time,
        measured_at=measured_at,
        clock_offset_s=hub.clock_offset_s,
        received_at=hub.received_at,
        sequence=sequence,
        values=[v for v, _ in pairs],
        flags=list(dict.fromkeys(flags)),
    )
