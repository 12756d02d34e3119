"""Test helpers: build readings in local time and run cases through the engine."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from gateway.model import DeviceKind, Flag, Measurement, Reading
from gateway.units import Metric, Unit, lb_to_kg
from rules.definitions import RuleSet, load_defaults, override_from_json
from rules.engine import (
    ClockReport,
    Effect,
    Escalation,
    Event,
    HubSeen,
    PatientState,
    ScheduleTimer,
    TimerFired,
    new_state,
    step,
)

DEFAULTS = load_defaults()
_ids = itertools.count(1)


def local(ts: str, tz: str = "America/New_York") -> datetime:
    """'YYYY-MM-DD HH:MM' in ``tz`` as an aware datetime (DST gaps: fold=0)."""
    return datetime.fromisoformat(ts).replace(tzinfo=ZoneInfo(tz))


def reading(at: datetime, values: dict[str, Any], *, patient: str = "p",
            flags: Iterable[Flag] = (), rid: str | None = None, hub: str = "hub-1") -> Reading:
    """A reading with ``values`` in display units (weight lb; glucose may be LO/HI)."""
    ms = []
    fl = set(flags)
    for name, v in values.items():
        metric = Metric(name)
        if v in ("LO", "HI"):
            fl.add(Flag.GLUCOSE_LO if v == "LO" else Flag.GLUCOSE_HI)
            ms.append(Measurement(metric, None, special=v.lower()))
        elif metric is Metric.WEIGHT:
            ms.append(Measurement(metric, lb_to_kg(v), raw_value=v, raw_unit=Unit.LB))
        else:
            ms.append(Measurement(metric, float(v)))
    kind = {Metric.WEIGHT: DeviceKind.SCALE, Metric.SPO2: DeviceKind.PULSE_OXIMETER,
            Metric.GLUCOSE: DeviceKind.GLUCOMETER}.get(ms[0].metric, DeviceKind.BP_CUFF)
    return Reading(id=rid or f"r{next(_ids)}", practice_id="t", patient_id=patient,
                   device_serial="dev-1", hub_id=hub, kind=kind, measured_at=at,
                   received_at=at, measurements=tuple(ms), flags=frozenset(fl))


def step_event(at: datetime, values: dict[str, Any]) -> Event:
    """A case step as an engine event."""
    if "clock_offset_min" in values:
        return ClockReport("dev-1", "hub-1", values["clock_offset_min"] * 60,
                           bool(values.get("corrected", False)), at)
    if "hub_seen" in values:
        return HubSeen("hub-1", at)
    return reading(at, values)


class Runner:
    """Drives one patient's state with a timer heap, like the timer service would."""

    def __init__(self, st: PatientState) -> None:
        self.st = st
        self.timers: list[tuple[datetime, str]] = []
        self.effects: list[Escalation] = []

    def _handle(self, effects: Sequence[Effect]) -> list[Escalation]:
        out = []
        for e in effects:
            if isinstance(e, ScheduleTimer):
                heapq.heappush(self.timers, (e.due, e.key))
            else:
                out.append(e)
        self.effects.extend(out)
        return out

    def advance(self, until: datetime) -> list[Escalation]:
        """Fire every timer due at or before ``until``."""
        out = []
        while self.timers and self.timers[0][0] <= until:
            due, key = heapq.heappop(self.timers)
            self.st, eff = step(self.st, TimerFired(key, due), due)
            out += self._handle(eff)
        return out

    def send(self, event: Event, now: datetime | None = None) -> list[Escalation]:
        """Deliver ``event`` at ``now`` (default: its own time), firing due timers first."""
        at = event.measured_at if isinstance(event, Reading) else event.at  # type: ignore[union-attr]
        now = now or at
        out = self.advance(now)
        self.st, eff = step(self.st, event, now)
        return out + self._handle(eff)


def patient_state(conditions: Sequence[str], *, tz: str = "America/New_York",
                  overrides: dict[str, Any] | None = None, ruleset: RuleSet = DEFAULTS,
                  now: datetime | None = None, late_bound: timedelta | None = None
                  ) -> PatientState:
    """A fresh state for patient "p"."""
    ovs = [override_from_json(k, v) for k, v in (overrides or {}).items()]
    kw = {} if late_bound is None else {"late_bound": late_bound}
    return new_state("p", tz, conditions, ruleset, ovs,
                     now=now or local("2026-01-02 00:00"), **kw)


def run_case(case: Any) -> list[Escalation]:
    """All escalation events of a :class:`tests.rules.cases.Case`."""
    runner = Runner(patient_state(case.conditions, tz=case.tz, overrides=case.overrides))
    for ts, values in case.steps:
        runner.send(step_event(local(ts, case.tz), values))
    if case.until:
        runner.advance(local(case.until, case.tz))
    return runner.effects
