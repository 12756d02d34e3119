"""Validation of hub payloads: pure functions over explicit inputs.

How this works: :func:`validate_readings` takes a decoded
``vitalgate.readings/1`` payload, the topic's hub id, a registry view, a
weight history view and ``now`` and returns an :class:`Outcome`: the
:class:`~gateway.model.Reading` values to store (canonical units, flags set)
and one :class:`Rejection` per refused reading.  Checks run in this order,
the first failure names the reason code:

1. schema (the wire decoder; codes ``not_json``, ``schema``,
   ``schema_version``, ``too_large``, ``hub_mismatch``), done by the caller;
2. registry: ``unknown_hub``, ``unknown_device``, ``device_kind_mismatch``,
   ``device_not_assigned`` (never assigned to this hub),
   ``assignment_inactive`` (assigned to this hub, but not at measured time);
3. time (review, see :data:`TIME_REVIEW_CODES`): ``clock_unset`` (year <
   2000 and no offset to correct it), ``time_future`` (beyond
   ``future_tolerance_s``), ``time_before_assignment``;
4. values: ``missing_value``, ``unit_mismatch``, ``implausible`` (CLINICAL.md
   "Plausibility"), with flags for SpO2 < 70 %, glucose LO/HI, failed
   measurements and a weight change > 10 % from the previous one.

Nothing here touches the broker or the database.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from gateway.model import Device, DeviceAssignment, Flag, Hub, Measurement, Reading
from gateway.units import Metric, UnitError, to_canonical
from gateway.wire import WireReading, WireReadings, WireValue, encode

# -- reason codes ---------------------------------------------------------
UNKNOWN_HUB = "unknown_hub"
UNKNOWN_DEVICE = "unknown_device"
DEVICE_KIND_MISMATCH = "device_kind_mismatch"
DEVICE_NOT_ASSIGNED = "device_not_assigned"
ASSIGNMENT_INACTIVE = "assignment_inactive"
CLOCK_UNSET = "clock_unset"
TIME_FUTURE = "time_future"
TIME_BEFORE_ASSIGNMENT = "time_before_assignment"
MISSING_VALUE = "missing_value"
UNIT_MISMATCH = "unit_mismatch"
IMPLAUSIBLE = "implausible"
INTERNAL_ERROR = "internal_error"
#: Wire decoder codes (gateway.wire.WireError.code).
SCHEMA_CODES = ("not_json", "schema", "schema_version", "too_large", "hub_mismatch")
#: Time-review reasons: a person may release these without the time check.
TIME_REVIEW_CODES = frozenset({CLOCK_UNSET, TIME_FUTURE, TIME_BEFORE_ASSIGNMENT})

#: Plausible canonical ranges, inclusive (CLINICAL.md "Plausibility").
PLAUSIBLE: dict[Metric, tuple[float, float]] = {
    Metric.WEIGHT: (20.0, 350.0),
    Metric.SYSTOLIC: (50.0, 300.0),
    Metric.DIASTOLIC: (20.0, 200.0),
    Metric.SPO2: (50.0, 100.0),
    Metric.PULSE: (25.0, 250.0),
    Metric.GLUCOSE: (10.0, 800.0),
}
#: SpO2 below this is stored but flagged outside the oximeters' validated range.
SPO2_VALIDATED_MIN = 70.0
#: Relative weight change from the previous weight that suggests another person.
WEIGHT_JUMP = 0.10
#: Device clocks before this year are unset (1970, 2000-01-01 resets).
MIN_PLAUSIBLE_YEAR = 2000
_FAILED_SPECIALS = frozenset({"nan", "nres", "+inf", "-inf", "reserved"})


class RegistryView(Protocol):
    """Registry lookups validation needs (cached by :class:`ingest.registry.Registry`)."""

    def hub(self, hub_id: str) -> Hub | None:
        """The hub, or ``None`` when unknown."""

    def device(self, serial: str) -> Device | None:
        """The device, or ``None`` when unknown."""

    def assignments(self, serial: str) -> Sequence[DeviceAssignment]:
        """Assignments of a device, oldest first."""


class WeightView(Protocol):
    """Previous weights of a patient (for the day-to-day change flag)."""

    def previous_weight(self, patient_id: str, before: datetime) -> float | None:
        """The latest unflagged weight (kg) measured before ``before``, if recent."""

    def note_weight(self, patient_id: str, at: datetime, kg: float) -> None:
        """Remember an accepted weight."""


@dataclass(frozen=True, slots=True)
class Rejection:
    """A refused payload or reading: reason code and text, field, raw JSON."""

    code: str
    reason: str
    field: str | None = None
    reading_id: str | None = None
    payload: str | None = None  # JSON of just the refused reading, when one reading


@dataclass(slots=True)
class Outcome:
    """Result of validating one payload."""

    readings: list[Reading] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)


class _Refuse(Exception):  # internal control flow, never escapes
    def __init__(self, code: str, reason: str, field: str) -> None:
        super().__init__(reason)
        self.code, self.reason, self.field = code, reason, field


def single_reading_payload(batch: WireReadings, reading: WireReading) -> str:
    """The payload reduced to one reading (what quarantine keeps for it)."""
    return encode(batch.model_copy(update={"readings": [reading]})).decode()


def validate_readings(
    batch: WireReadings,
    *,
    registry: RegistryView,
    weights: WeightView,
    now: datetime,
    future_tolerance_s: float,
    late_bound_hours: float = 12.0,
    skip_time_review: bool = False,
) -> Outcome:
    """Validate a decoded readings payload; see the module docstring for the order."""
    out = Outcome()
    hub = registry.hub(batch.hub_id)
    if hub is None:
        out.rejections.append(Rejection(UNKNOWN_HUB, f"hub {batch.hub_id!r} is not registered",
                                        "hub_id"))
        return out
    serial = batch.device.serial
    device = registry.device(serial)
    if device is None:
        out.rejections.append(Rejection(UNKNOWN_DEVICE, f"device {serial!r} is not registered",
                                        "device.serial"))
        return out
    if device.kind != batch.device.kind:
        out.rejections.append(Rejection(
            DEVICE_KIND_MISMATCH, f"device {serial!r} is registered as {device.kind.value}, "
            f"payload says {batch.device.kind.value}", "device.kind"))
        return out
    to_hub = [a for a in registry.assignments(serial) if a.hub_id == batch.hub_id]
    if not to_hub:
        out.rejections.append(Rejection(
            DEVICE_NOT_ASSIGNED, f"device {serial!r} is not assigned to hub {batch.hub_id!r}",
            "device.serial"))
        return out
    for i, wr in enumerate(batch.readings):
        try:
            out.readings.append(_reading(
                batch, wr, path=f"readings[{i}]", to_hub=to_hub, hub=hub, weights=weights,
                now=now, future_tolerance_s=future_tolerance_s,
                late_bound_hours=late_bound_hours, skip_time_review=skip_time_review))
        except _Refuse as r:
            out.rejections.append(Rejection(r.code, r.reason, r.field, wr.id,
                                            single_reading_payload(batch, wr)))
    return out


def measured_time(wr: WireReading, device_offset_s: float | None, path: str
                  ) -> tuple[datetime, frozenset[Flag]]:
    """The measured instant of a reading (UTC) and the clock flags it earns.

    The wire ``measured_at`` (the hub's corrected time) is trusted when given;
    else the device time minus the observed clock offset; else, for devices
    without a clock, the hub's receive time.  An unset clock without an
    offset is refused (``clock_unset``).
    """
    offset = wr.clock_offset_s if wr.clock_offset_s is not None else device_offset_s
    if wr.measured_at is not None:
        at = wr.measured_at.astimezone(UTC)
        if at.year < MIN_PLAUSIBLE_YEAR:
            raise _Refuse(CLOCK_UNSET, f"measured_at {at.isoformat()} is an unset device clock",
                          f"{path}.measured_at")
        return at, frozenset()
    if wr.device_time is not None:
        try:
            dt = datetime.fromisoformat(wr.device_time)
        except ValueError:
            raise _Refuse(CLOCK_UNSET, f"device_time {wr.device_time!r} is not a time",
                          f"{path}.device_time") from None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        if offset is not None:
            corrected = dt - timedelta(seconds=offset)
            if corrected.year < MIN_PLAUSIBLE_YEAR:
                raise _Refuse(CLOCK_UNSET, "device time is unset even after the hub's offset",
                              f"{path}.device_time")
            return corrected.astimezone(UTC), frozenset({Flag.CLOCK_CORRECTED})
        if dt.year < MIN_PLAUSIBLE_YEAR:
            raise _Refuse(CLOCK_UNSET, f"device clock unset ({wr.device_time}) and no offset "
                          "observed", f"{path}.device_time")
        return dt.astimezone(UTC), frozenset()
    return wr.received_at.astimezone(UTC), frozenset()


def _reading(batch: WireReadings, wr: WireReading, *, path: str, to_hub: list[DeviceAssignment],
             hub: Hub, weights: WeightView, now: datetime, future_tolerance_s: float,
             late_bound_hours: float, skip_time_review: bool) -> Reading:
    at, flags = measured_time(wr, batch.device.clock_offset_s, path)
    assignment = next((a for a in reversed(to_hub) if a.active_at(at)), None)
    if not skip_time_review:
        if at > now + timedelta(seconds=future_tolerance_s):
            raise _Refuse(TIME_FUTURE, f"measured {at.isoformat()} is in the future "
                          f"(server time {now.isoformat()})", f"{path}.measured_at")
        if assignment is None and at < to_hub[0].start:
            raise _Refuse(TIME_BEFORE_ASSIGNMENT, f"measured {at.isoformat()} before the device "
                          f"was assigned ({to_hub[0].start.isoformat()})", f"{path}.measured_at")
    if assignment is None:
        if skip_time_review:
            # released by a person: attribute to the nearest assignment to this hub
            assignment = min(to_hub, key=lambda a: abs((a.start - at).total_seconds()))
        else:
            raise _Refuse(ASSIGNMENT_INACTIVE, f"device not assigned to hub {hub.id!r} at "
                          f"{at.isoformat()}", f"{path}.measured_at")
    measurements, value_flags = _measurements(wr.values, path)
    flags = flags | value_flags | frozenset(wr.flags)
    weight = next((m.value for m in measurements if m.metric == Metric.WEIGHT), None)
    if weight is not None:
        prev = weights.previous_weight(assignment.patient_id, at)
        if prev is not None and abs(weight - prev) > WEIGHT_JUMP * prev:
            flags |= {Flag.POSSIBLY_OTHER_PERSON}
        else:
            weights.note_weight(assignment.patient_id, at, weight)
    if now - at > timedelta(hours=late_bound_hours):
        flags |= {Flag.LATE}
    return Reading(
        id=wr.id, practice_id=assignment.practice_id, patient_id=assignment.patient_id,
        device_serial=batch.device.serial, hub_id=batch.hub_id, kind=batch.device.kind,
        measured_at=at, received_at=wr.received_at.astimezone(UTC),
        measurements=tuple(measurements), device_time=wr.device_time,
        clock_offset_s=(wr.clock_offset_s if wr.clock_offset_s is not None
                        else batch.device.clock_offset_s),
        source=wr.source, flags=flags, sequence=wr.sequence,
    )


def _measurements(values: Sequence[WireValue], path: str
                  ) -> tuple[list[Measurement], frozenset[Flag]]:
    out: list[Measurement] = []
    flags: set[Flag] = set()
    for j, v in enumerate(values):
        fpath = f"{path}.values[{j}]"
        try:
            canonical = None if v.value is None else to_canonical(v.metric, v.value, v.unit)
        except UnitError as exc:
            raise _Refuse(UNIT_MISMATCH, str(exc), f"{fpath}.unit") from None
        if v.special in ("lo", "hi"):
            if v.metric == Metric.GLUCOSE:
                flags.add(Flag.GLUCOSE_LO if v.special == "lo" else Flag.GLUCOSE_HI)
            else:
                flags.add(Flag.MEASUREMENT_UNSUCCESSFUL)
            # the meter's limit (if sent) is kept as the raw value, never as a number
            out.append(Measurement(v.metric, None, v.value, v.unit, v.special))
            continue
        if v.special in _FAILED_SPECIALS:
            flags.add(Flag.MEASUREMENT_UNSUCCESSFUL)
            out.append(Measurement(v.metric, None, None, v.unit, v.special))
            continue
        if canonical is None:
            raise _Refuse(MISSING_VALUE, f"{v.metric.value} has no value and no special code",
                          f"{fpath}.value")
        bounds = PLAUSIBLE.get(v.metric)
        if bounds is not None and not bounds[0] <= canonical <= bounds[1]:
            raise _Refuse(IMPLAUSIBLE, f"{v.metric.value} {canonical:g} "
                          f"{_unit(v.metric)} outside {bounds[0]:g}-{bounds[1]:g}",
                          f"{fpath}.value")
        if v.metric == Metric.SPO2 and canonical < SPO2_VALIDATED_MIN:
            flags.add(Flag.OUTSIDE_VALIDATED_ACCURACY)
        out.append(Measurement(v.metric, canonical, v.value, v.unit, v.special))
    by_metric = {m.metric: m.value for m in out}
    sys_, dia = by_metric.get(Metric.SYSTOLIC), by_metric.get(Metric.DIASTOLIC)
    if sys_ is not None and dia is not None and not sys_ > dia:
        raise _Refuse(IMPLAUSIBLE, f"systolic {sys_:g} not above diastolic {dia:g}",
                      f"{path}.values")
    return out, frozenset(flags)


def _unit(metric: Metric) -> str:
    from gateway.units import CANONICAL_UNIT

    return CANONICAL_UNIT[metric].value


def truncated_text(payload: bytes, limit: int) -> str:
    """Payload as text for quarantine, cut to ``limit`` bytes (invalid UTF-8 replaced)."""
    return payload[:limit].decode("utf-8", errors="replace")


def reading_json(wr: WireReading) -> str:
    """Compact JSON of one wire reading (diagnostics)."""
    return json.dumps(wr.model_dump(mode="json", exclude_none=True), separators=(",", ":"))
