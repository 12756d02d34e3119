"""Per-patient rule state and the step function ``step(state, event, now)``.

How this works
--------------
:class:`PatientState` is explicit and bounded.  It keeps only what the rules
in force need:

* ``series[metric]``: readings of a metric, sorted by measured time, kept for
  the longest window any rule needs on that metric (``retention``), e.g.
  SpO2 for 60 min + 12 h (so a reading up to 12 h late still pairs; 7 days
  more with the opt-in drop rule), BP for 8 days, glucose for 15 days.
  Entries are ``(epoch_s, reading_id, value, local_day_ordinal)`` tuples;
  glucose LO/HI are stored as -inf/+inf.
* ``daily[metric]``: the first reading of each local day (weight), for the
  last ``day_keep`` days (8 with the 7-day rule and its 8-day fallback).
* the newest measured time seen, the last qualifying reading and hub
  contact (for timers) and the open escalations ``{rule_id: severity}``.

Bounding is a function of the newest measured time only: an entry is kept
iff it is no older than ``newest - retention`` (days: ``newest_day -
day_keep``) and evaluations ignore anything older.  Hence state built from
history (:func:`rebuild`) yields the same later effects as an engine that
never stopped, provided the history covers :func:`history_needed`.

``step`` has no I/O and no clock: ``now`` comes from the caller.  For speed
it updates ``state`` in place and returns it (h11-style ownership: callers
use the returned state; :meth:`PatientState.copy` snapshots).

Readings are evaluated in measured-time order; a late reading (older than the
newest seen) is inserted in place: count-in-window rules look both sides of
it, delta rules re-evaluate the days whose reference it changed, and the
aggregate rules (7-day mean, 14-day share) evaluate as of the newest reading.
An escalation whose triggering reading is older than ``late_bound`` (12 h)
at ``now`` is marked ``late`` (queued, not paged).

Effects are :class:`Escalation` (opened / updated / upgraded) and
:class:`ScheduleTimer` (the due instant of a timer key; a new schedule for
the same key replaces the previous one).  The caller delivers
:class:`TimerFired` when a timer is due; stale timers are ignored.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import lru_cache
from statistics import median
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from gateway.escalations import Severity
from gateway.model import NON_ALERTING_FLAGS, Condition, Flag, Reading, ReadingSource
from gateway.units import PHYSIOLOGIC, Metric, kg_to_lb
from rules import text
from rules.definitions import (
    EPS,
    OP_SYMBOL,
    BaselineDropSpec,
    Clause,
    Composed,
    DeltaSpec,
    DeviceClockSpec,
    FrequencySpec,
    HubOfflineSpec,
    NoDataSpec,
    Override,
    Rule,
    RuleSet,
    ThresholdSpec,
    WindowAverageSpec,
    compose,
)

#: Escalations triggered by readings older than this (vs ``now``) are queued, not paged.
DEFAULT_LATE_BOUND = timedelta(hours=12)
NO_DATA_KEY = "adherence.no_data"
HUB_KEY_PREFIX = "hub.offline:"
DAY_S = 86400.0
#: Count-in-window rules keep this much extra history so that a reading up to
#: this late still pairs with the readings around it (same as the late bound).
PAIR_SLACK_S = DEFAULT_LATE_BOUND.total_seconds()

Entry = tuple[float, str, float, int]  # (epoch seconds, reading id, value, local day ordinal)


# --------------------------------------------------------------------------- events

@dataclass(frozen=True, slots=True)
class TimerFired:
    """A timer the engine scheduled is due (``key`` and ``due`` as scheduled)."""

    key: str
    due: datetime


@dataclass(frozen=True, slots=True)
class HubSeen:
    """A hub status message (or any contact) at ``at``."""

    hub_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class ClockReport:
    """A hub's report of a device clock offset (device minus true time)."""

    device_serial: str
    hub_id: str
    offset_s: float
    corrected: bool
    at: datetime


Event = Reading | TimerFired | HubSeen | ClockReport


# --------------------------------------------------------------------------- effects

class Change(StrEnum):
    """What happened to the (patient, rule) escalation."""

    OPENED = "opened"
    UPDATED = "updated"  # new evidence while open
    UPGRADED = "upgraded"  # higher severity while open (re-page)


class EvidenceReading(NamedTuple):
    """One reading value used by a rule (a named tuple: built many times per alert)."""

    reading_id: str
    measured_at: datetime
    metric: str
    value: float | None  # canonical; None for LO/HI (see display)
    display: str

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"id": self.reading_id, "measured_at": self.measured_at.isoformat(),
                "metric": self.metric, "value": self.value, "display": self.display}


@dataclass(frozen=True, slots=True)
class Escalation:
    """An escalation event, with the evidence behind it."""

    event: Change
    patient_id: str
    rule_id: str
    rule_version: int
    severity: Severity
    at: datetime  # triggering reading's measured time, or the timer's due time (UTC)
    late: bool
    thresholds: Mapping[str, Any]
    readings: tuple[EvidenceReading, ...]
    values: Mapping[str, Any]
    summary: str
    overrides: tuple[str, ...] = ()

    def evidence(self) -> dict[str, Any]:
        """JSON-ready evidence: rule version, thresholds in force, readings, values."""
        return {"rule_version": self.rule_version, "thresholds": dict(self.thresholds),
                "overrides": list(self.overrides), "late": self.late,
                "readings": [r.to_json() for r in self.readings], "values": dict(self.values)}


class ScheduleTimer(NamedTuple):
    """Ask the timer service to deliver ``TimerFired(key, due)`` at ``due``.

    A named tuple (immutable, and cheap to build: one per patient and day).
    """

    patient_id: str
    key: str
    due: datetime


Effect = Escalation | ScheduleTimer


# --------------------------------------------------------------------------- state

class Series:
    """Readings of one metric, sorted by (time, id), bounded by ``retention`` seconds.

    One column array holding the times, then the values, then the local day
    ordinals (``n`` each), plus the reading ids: about 32 bytes per kept value
    instead of ~130 for a tuple of boxed floats, and one array header instead
    of three.  Binary searches run on a column's index range.
    """

    __slots__ = ("cols", "ids", "retention")

    def __init__(self, retention: float) -> None:
        self.cols = array("d")  # times[0:n], values[n:2n], days[2n:3n]
        self.ids: list[str] = []
        self.retention = retention

    def __len__(self) -> int:
        return len(self.ids)

    def at_or_after(self, t: float, lo: int = 0) -> int:
        """Index of the first value measured at or after ``t`` (from index ``lo``)."""
        return bisect_left(self.cols, t, lo, len(self.ids))

    def value_slice(self, i: int, j: int | None = None) -> array[float]:
        """Values ``i:j`` (a copy)."""
        n = len(self.ids)
        return self.cols[n + i:n + (n if j is None else j)]

    def day_slice(self, i: int) -> array[float]:
        """Local days (as floats) from index ``i`` on (a copy)."""
        return self.cols[2 * len(self.ids) + i:]

    def add(self, t: float, rid: str, v: float, day: int, newest: float) -> bool:
        """Insert a value unless it is older than ``newest - retention``; prune the front."""
        cutoff = newest - self.retention
        if t < cutoff:
            return False
        a, ids = self.cols, self.ids
        n = len(ids)
        if not n or t > a[n - 1] or (t == a[n - 1] and rid > ids[-1]):
            i = n  # the common case: in order
        else:
            i = bisect_left(a, t, 0, n)
            while i < n and a[i] == t and ids[i] < rid:
                i += 1
            if i < n and a[i] == t and ids[i] == rid:
                return False  # the same reading again (redelivery): keep one
        # back to front, so the earlier columns' offsets still hold
        a.insert(2 * n + i, day)
        a.insert(n + i, v)
        a.insert(i, t)
        ids.insert(i, rid)
        if a[0] < cutoff:
            n += 1
            k = bisect_left(a, cutoff, 0, n)
            del a[2 * n:2 * n + k], a[n:n + k], a[:k], ids[:k]
        return True

    def entry(self, i: int) -> Entry:
        """The ``i``-th kept value as ``(time, id, value, day)``."""
        a = self.cols
        n = len(self.ids)
        return (a[i], self.ids[i], a[n + i], int(a[2 * n + i]))

    def evidence(self, metric: Metric, i: int,
                 pred: Callable[[float], bool] | None = None) -> list[EvidenceReading]:
        """The values from index ``i`` on (those ``pred`` accepts) as evidence."""
        a, ids = self.cols, self.ids
        n = len(ids)
        return [_evidence(metric, ids[k], a[k], a[n + k]) for k in range(i, n)
                if pred is None or pred(a[n + k])]

    def between(self, lo: float, hi: float) -> list[Entry]:
        """Entries with ``lo <= time <= hi``."""
        a, n = self.cols, len(self.ids)
        return [self.entry(i) for i in range(bisect_left(a, lo, 0, n),
                                             bisect_right(a, hi, 0, n))]

    @property
    def entries(self) -> list[Entry]:
        """Every kept value as entries (for tests and snapshots)."""
        return [self.entry(i) for i in range(len(self.ids))]

    def copy(self) -> Series:
        """An independent copy."""
        s = Series(self.retention)
        s.cols = array("d", self.cols)
        s.ids = list(self.ids)
        return s


class Daily:
    """The first reading of each local day of one metric, sorted by day.

    A mapping ``day -> Entry`` in one column array (days, then times, then
    values; ``n`` each) plus the ids: about 32 bytes per day instead of ~190
    for a dict slot holding a tuple of boxed numbers.
    """

    __slots__ = ("cols", "ids")

    def __init__(self) -> None:
        self.cols = array("d")  # days[0:n], times[n:2n], values[2n:3n]
        self.ids: list[str] = []

    def __len__(self) -> int:
        return len(self.ids)

    def get(self, day: int) -> Entry | None:
        """The entry of local day ``day``, or ``None``."""
        a, n = self.cols, len(self.ids)
        i = bisect_left(a, day, 0, n)
        if i < n and a[i] == day:
            return (a[n + i], self.ids[i], a[2 * n + i], day)
        return None

    def reference(self, day: int, backs: tuple[int, ...], lowest: int) -> tuple[Entry, int] | None:
        """The entry of the first of ``day - back`` (``back`` in ``backs``) that is kept.

        Days before ``lowest`` do not count.  Returns the entry and its ``back``.
        """
        a, n = self.cols, len(self.ids)
        for back in backs:
            ref = day - back
            if ref < lowest:
                continue
            i = bisect_left(a, ref, 0, n)
            if i < n and a[i] == ref:
                return (a[n + i], self.ids[i], a[2 * n + i], ref), back
        return None

    def put(self, e: Entry) -> None:
        """Store ``e`` as the entry of its day (``e[3]``), replacing that day's entry."""
        t, rid, v, day = e
        a, n = self.cols, len(self.ids)
        i = bisect_left(a, day, 0, n)
        if i < n and a[i] == day:
            a[n + i], a[2 * n + i] = t, v
            self.ids[i] = rid
        else:
            a.insert(2 * n + i, v)
            a.insert(n + i, t)
            a.insert(i, day)
            self.ids.insert(i, rid)

    def prune(self, keep: int) -> None:
        """Drop the days before ``keep``."""
        a, n = self.cols, len(self.ids)
        if n and a[0] < keep:
            k = bisect_left(a, keep, 0, n)
            del a[2 * n:2 * n + k], a[n:n + k], a[:k], self.ids[:k]

    @property
    def entries(self) -> dict[int, Entry]:
        """Every kept day as ``{day: entry}`` (for tests and snapshots)."""
        a, n = self.cols, len(self.ids)
        return {int(a[i]): (a[n + i], self.ids[i], a[2 * n + i], int(a[i])) for i in range(n)}

    def copy(self) -> Daily:
        """An independent copy."""
        d = Daily()
        d.cols = array("d", self.cols)
        d.ids = list(self.ids)
        return d


class _Hub:
    """What the engine remembers about one hub: last contact, armed and fired timers."""

    __slots__ = ("armed", "fired", "seen")

    def __init__(self, seen: float | None = None) -> None:
        self.seen = seen  # last contact (epoch s)
        self.armed: float | None = None  # due of the scheduled hub.offline timer
        self.fired: float | None = None  # due of the last hub.offline fired

    def copy(self) -> _Hub:
        """An independent copy."""
        h = _Hub(self.seen)
        h.armed, h.fired = self.armed, self.fired
        return h


_PREDICATES: dict[int, tuple[Clause, Callable[[float], bool]]] = {}


def _predicate(c: Clause) -> Callable[[float], bool]:
    """``c.test`` as a C-level bound method when the clause has one comparison (hot path).

    Cached by identity (the clause is kept in the cache, so its id is not reused):
    hashing a frozen dataclass is a Python-level call on every lookup.
    """
    hit = _PREDICATES.get(id(c))
    if hit is not None and hit[0] is c:
        return hit[1]
    ops = c.ops()
    pred: Callable[[float], bool] = c.test
    if len(ops) == 1:
        op, x = ops[0]
        pred = {"ge": (x - EPS).__le__, "gt": (x + EPS).__lt__,
                "le": (x + EPS).__ge__, "lt": (x - EPS).__gt__}[op]
    if len(_PREDICATES) >= 65536:
        _PREDICATES.clear()
    _PREDICATES[id(c)] = (c, pred)
    return pred


def _rule_metrics(rule: Rule) -> tuple[Metric, ...]:
    s = rule.spec
    if isinstance(s, ThresholdSpec):
        ms = [c.metric for c in s.clauses if c.metric is not None]
        if any(c.flag in (Flag.GLUCOSE_LO, Flag.GLUCOSE_HI) for c in s.clauses):
            ms.append(Metric.GLUCOSE)
        return tuple(dict.fromkeys(ms))
    if isinstance(s, DeltaSpec | BaselineDropSpec):
        return (s.metric,)
    if isinstance(s, WindowAverageSpec):
        return s.metrics
    if isinstance(s, FrequencySpec):
        return (s.clause.metric,) if s.clause.metric else ()
    return ()


def _retention(rule: Rule) -> dict[Metric, float]:
    """Seconds of history of each metric the rule needs in ``series``."""
    s = rule.spec
    out: dict[Metric, float] = {}
    if isinstance(s, ThresholdSpec):
        for c in s.clauses:
            if c.metric is not None and c.count > 1:
                out[c.metric] = max(out.get(c.metric, 0.0),
                                    c.within.total_seconds() + PAIR_SLACK_S)
    elif isinstance(s, BaselineDropSpec):
        out[s.metric] = s.baseline_days * DAY_S + s.within.total_seconds() + PAIR_SLACK_S
    elif isinstance(s, WindowAverageSpec):
        for m in s.metrics:
            out[m] = (s.days + 1) * DAY_S  # + 1 day: local days vs DST-length days
    elif isinstance(s, FrequencySpec) and s.clause.metric is not None:
        out[s.clause.metric] = (s.days + 1) * DAY_S
    return out


def history_needed(rules: Iterable[Rule]) -> timedelta:
    """How far back (from the newest reading) history must reach to :func:`rebuild`."""
    need = 0.0
    for rule in rules:
        s = rule.spec
        for sec in _retention(rule).values():
            need = max(need, sec)
        if isinstance(s, DeltaSpec):
            need = max(need, (max((s.days_back, *s.fallback_days)) + 2) * DAY_S)
        elif isinstance(s, NoDataSpec):
            need = max(need, (s.full_days + 2) * DAY_S)
        elif isinstance(s, HubOfflineSpec):
            need = max(need, s.after.total_seconds())
    return timedelta(seconds=need)


# Kinds of compiled steps: how a step decides cheaply that its rule cannot fire.
_ALWAYS, _THRESHOLD, _DELTA = 0, 1, 2

#: One compiled rule for readings with a given set of metrics:
#: ``(kind, handler, rule, checks)``; for thresholds ``checks`` is
#: ``(predicates over the reading's values, has flag clauses)``.
_Step = tuple[int, Any, Rule, Any]


@dataclass(frozen=True, slots=True, eq=False)
class _Plan:
    """Everything derived from a composed rule tuple; shared by every patient with it.

    ``by_metrics`` caches the compiled steps per tuple of a reading's metrics
    (in the reading's order), filled on first use.
    """

    rules: tuple[Rule, ...]
    metric_rules: dict[Metric, tuple[Rule, ...]]
    any_reading_rules: tuple[Rule, ...]
    retention: dict[Metric, float]
    daily_metrics: frozenset[Metric]
    day_keep: int
    no_data: Rule | None
    no_data_days: int  # full_days + 1 (the due day after the last qualifying one); 0: no rule
    hub_rule: Rule | None
    hub_after: float  # seconds of silence before hub.offline
    clock_rule: Rule | None
    by_metrics: dict[tuple[Metric, ...], tuple[_Step, ...]]
    series_col: dict[Metric, int]  # metric -> index of its Series in PatientState.cols
    daily_col: dict[Metric, int]  # metric -> index of its Daily in PatientState.cols

    def steps(self, key: tuple[Metric, ...]) -> tuple[_Step, ...]:
        """The compiled steps for a reading carrying the metrics ``key``."""
        steps = self.by_metrics.get(key)
        if steps is not None:
            return steps
        seen: dict[str, Rule] = {}
        for m in key:
            for rule in self.metric_rules.get(m, ()):
                seen.setdefault(rule.id, rule)
        for rule in self.any_reading_rules:
            seen.setdefault(rule.id, rule)
        order = {rule.id: i for i, rule in enumerate(self.rules)}
        out: list[_Step] = []
        for rule in sorted(seen.values(), key=lambda x: order[x.id]):
            spec = rule.spec
            handler = _HANDLERS.get(type(spec))
            if handler is None:
                continue
            if isinstance(spec, ThresholdSpec):
                # A clause can fire only if its metric is in the reading and its
                # comparison holds (or, for a flag clause, the reading has a flag
                # or a special value): the handler runs only then.
                checks = tuple((c.metric, _predicate(c)) for c in spec.clauses
                               if c.metric is not None and c.metric in key)
                flagged = any(c.flag is not None for c in spec.clauses)
                out.append((_THRESHOLD, handler, rule, (checks, flagged)))
            elif isinstance(spec, DeltaSpec):
                out.append((_DELTA, handler, rule, None))
            else:
                out.append((_ALWAYS, handler, rule, None))
        steps = self.by_metrics[key] = tuple(out)
        return steps


@lru_cache(maxsize=4096)
def _plan(rules: tuple[Rule, ...]) -> _Plan:
    per_metric: dict[Metric, list[Rule]] = {}
    any_rules: list[Rule] = []
    retention: dict[Metric, float] = {}
    daily: set[Metric] = set()
    day_keep = 0
    no_data = hub_rule = clock_rule = None
    no_data_days = 0
    hub_after = 0.0
    for rule in rules:
        s = rule.spec
        for m in _rule_metrics(rule):
            per_metric.setdefault(m, []).append(rule)
        if isinstance(s, ThresholdSpec) and any(
            c.flag is not None and c.flag not in (Flag.GLUCOSE_LO, Flag.GLUCOSE_HI)
            for c in s.clauses
        ):
            any_rules.append(rule)
        for m, sec in _retention(rule).items():
            retention[m] = max(retention.get(m, 0.0), sec)
        if isinstance(s, DeltaSpec):
            daily.add(s.metric)
            day_keep = max(day_keep, s.days_back, *s.fallback_days)
        elif isinstance(s, NoDataSpec):
            no_data, no_data_days = rule, s.full_days + 1
        elif isinstance(s, HubOfflineSpec):
            hub_rule, hub_after = rule, s.after.total_seconds()
        elif isinstance(s, DeviceClockSpec):
            clock_rule = rule
    series_col = {m: i for i, m in enumerate(retention)}
    daily_col = {m: len(series_col) + i for i, m in enumerate(sorted(daily))}
    return _Plan(rules, {m: tuple(rs) for m, rs in per_metric.items()}, tuple(any_rules),
                 retention, frozenset(daily), day_keep, no_data, no_data_days, hub_rule,
                 hub_after, clock_rule, {}, series_col, daily_col)


_NO_PLAN = _plan(())


@dataclass(slots=True)
class PatientState:
    """Everything the engine remembers about one patient (see module doc).

    What derives from the composed rules lives in one :class:`_Plan` shared
    by every patient with the same rules; per patient only the data remain.
    """

    patient_id: str
    tz: ZoneInfo
    conditions: frozenset[Condition]
    ruleset: RuleSet
    overrides: tuple[Override, ...]
    late_bound: timedelta = DEFAULT_LATE_BOUND
    plan: _Plan = _NO_PLAN
    valid_until: datetime | None = None
    # Per metric kept: its Series then its Daily, at the plan's indices; the
    # list is created on the first reading (a list is ~110 B lighter than a dict).
    cols: list[Series | Daily | None] | None = None
    newest: float | None = None
    newest_day: int = 0
    last_qualifying: float | None = None
    last_qualifying_day: int = 0
    no_data_due: float | None = None
    no_data_fired: float | None = None
    hubs: dict[str, _Hub] = field(default_factory=dict)
    open: dict[str, Severity] = field(default_factory=dict)

    @property
    def series(self) -> dict[Metric, Series]:
        """The kept readings of each metric (a view built on demand)."""
        cols = self.cols or ()
        return {m: s for m, i in self.plan.series_col.items()
                if i < len(cols) and isinstance(s := cols[i], Series)}

    @property
    def daily(self) -> dict[Metric, Daily]:
        """The first reading of each local day, per metric (a view built on demand)."""
        cols = self.cols or ()
        return {m: d for m, i in self.plan.daily_col.items()
                if i < len(cols) and isinstance(d := cols[i], Daily)}

    def series_of(self, metric: Metric) -> Series | None:
        """The kept readings of ``metric``, if the rules keep any (hot path)."""
        i = self.plan.series_col.get(metric)
        if i is None or self.cols is None:
            return None
        return self.cols[i]  # type: ignore[return-value]

    @property
    def hub_seen(self) -> dict[str, float]:
        """Last contact of each hub (epoch seconds)."""
        return {h: x.seen for h, x in self.hubs.items() if x.seen is not None}

    @property
    def hub_armed(self) -> dict[str, float]:
        """Due time of each hub's scheduled hub.offline timer (epoch seconds)."""
        return {h: x.armed for h, x in self.hubs.items() if x.armed is not None}

    @property
    def rules(self) -> tuple[Rule, ...]:
        """The rules in force (composed for the patient)."""
        return self.plan.rules

    @property
    def no_data(self) -> Rule | None:
        """The no-data rule in force, if any."""
        return self.plan.no_data

    @property
    def hub_rule(self) -> Rule | None:
        """The hub-offline rule in force, if any."""
        return self.plan.hub_rule

    @property
    def clock_rule(self) -> Rule | None:
        """The device-clock rule in force, if any."""
        return self.plan.clock_rule

    @property
    def day_keep(self) -> int:
        """Local days of first readings kept for delta rules."""
        return self.plan.day_keep

    def approx_size(self) -> int:
        """Approximate bytes of a compact serialisation of this state.

        Per kept reading value: 8 (time) + 8 (value) + 2 (day) + id length;
        per open escalation / hub: its id + 8; plus 64 bytes of scalars.
        """
        n = 64
        for s in self.series.values():
            n += sum(18 + len(rid) for rid in s.ids)
        for d in self.daily.values():
            n += sum(22 + len(rid) for rid in d.ids)
        n += sum(len(k) + 1 for k in self.open)
        n += sum(len(k) + 16 for k, h in self.hubs.items() if h.seen is not None)
        return n

    def copy(self) -> PatientState:
        """A snapshot that later steps on ``self`` do not change."""
        st = PatientState(self.patient_id, self.tz, self.conditions, self.ruleset,
                          self.overrides, self.late_bound)
        for name in self.__slots__:
            setattr(st, name, getattr(self, name))
        if self.cols is not None:
            st.cols = [c.copy() if c is not None else None for c in self.cols]
        st.hubs = {h: x.copy() for h, x in self.hubs.items()}
        st.open = dict(self.open)
        return st

    @property
    def open_escalations(self) -> dict[str, Severity]:
        """Open escalations ``{rule_id: severity}`` (the engine's view)."""
        return dict(self.open)


@lru_cache(maxsize=64)
def _conditions(conds: tuple[Condition, ...]) -> frozenset[Condition]:
    return frozenset(conds)


_PLAIN: dict[tuple[int, frozenset[Condition]], tuple[RuleSet, Composed, _Plan]] = {}


def _compose(st: PatientState, now: datetime) -> tuple[Composed, _Plan]:
    """:func:`compose` for the state, and its plan.

    Without overrides both depend on rule set and conditions only, so that case
    is cached here (warm-up configures 100,000 patients; looking the plan up in
    ``_plan``'s cache would hash every rule's fields each time).
    """
    if st.overrides:
        comp = compose(st.ruleset, st.conditions, st.overrides, now=now)
        return comp, _plan(comp.rules)
    key = (id(st.ruleset), st.conditions)
    hit = _PLAIN.get(key)
    if hit is None or hit[0] is not st.ruleset:
        if len(_PLAIN) >= 4096:
            _PLAIN.clear()
        comp = compose(st.ruleset, st.conditions, now=now)
        hit = _PLAIN[key] = (st.ruleset, comp, _plan(comp.rules))
    return hit[1], hit[2]


def _configure(st: PatientState, now: datetime) -> None:
    comp, plan = _compose(st, now)
    if st.cols is not None:
        old_series, old_daily = st.series, st.daily
    st.plan = plan
    st.valid_until = comp.valid_until
    st.last_qualifying_day = 0
    if st.cols is not None:  # carry the kept data over to the new plan's columns
        series, daily = old_series, old_daily
        st.cols = [None] * (len(plan.series_col) + len(plan.daily_col))
        for m, s in series.items():
            if m in plan.series_col:
                s.retention = plan.retention[m]
                st.cols[plan.series_col[m]] = s
        for m, d in daily.items():
            if m in plan.daily_col:
                st.cols[plan.daily_col[m]] = d


def new_state(patient_id: str, timezone: str | ZoneInfo,
              conditions: Iterable[Condition | str], ruleset: RuleSet,
              overrides: Sequence[Override] = (), *, now: datetime,
              late_bound: timedelta = DEFAULT_LATE_BOUND) -> PatientState:
    """Empty state for a patient with the rules composed at ``now``."""
    tz = timezone if isinstance(timezone, ZoneInfo) else ZoneInfo(timezone)
    conds = _conditions(tuple(sorted(Condition(c) for c in conditions)))
    st = PatientState(patient_id, tz, conds, ruleset, tuple(overrides), late_bound)
    _configure(st, now)
    return st


def set_overrides(st: PatientState, overrides: Sequence[Override], now: datetime) -> PatientState:
    """Replace the care-plan overrides (recomposes the rules at ``now``)."""
    st.overrides = tuple(overrides)
    _configure(st, now)
    return st


def mark_resolved(st: PatientState, rule_id: str) -> PatientState:
    """The (patient, rule) escalation was resolved: the rule may open a new one."""
    st.open.pop(rule_id, None)
    return st


# --------------------------------------------------------------------------- step

def step(st: PatientState, event: Event, now: datetime) -> tuple[PatientState, list[Effect]]:
    """Apply one event at ``now``; return the (updated) state and the effects."""
    if st.valid_until is not None and now >= st.valid_until:
        _configure(st, now)
    out: list[Effect] = []
    if isinstance(event, Reading):
        if event.patient_id != st.patient_id:
            raise ValueError(f"reading {event.id} is for patient {event.patient_id}, "
                             f"not {st.patient_id}")
        _on_reading(st, event, now, out, evaluate=True)
    elif isinstance(event, TimerFired):
        _on_timer(st, event, now, out)
    elif isinstance(event, HubSeen):
        _hub_seen(st, event.hub_id, event.at.timestamp(), now, out)
    elif isinstance(event, ClockReport):
        _on_clock(st, event, now, out)
    else:  # pragma: no cover - typed
        raise TypeError(f"unknown event {event!r}")
    return st, out


#: Local days are looked up per quarter hour of UTC (every UTC offset in use
#: is a whole number of quarter hours, so local midnights fall on these
#: boundaries).  A quarter whose local day or UTC offset differs between its
#: two ends (1 µs outside, for datetime's rounding) is never cached.
_QUARTER = 900
_DAY_CACHE_MAX = 1 << 18
_day_cache: dict[ZoneInfo, dict[int, int]] = {}
_midnight_cache: dict[tuple[ZoneInfo, int], tuple[float, datetime]] = {}


def _quarter_day(tz: ZoneInfo, q: int) -> int:
    """The local day of every instant of UTC quarter hour ``q``, or -1 if not uniform."""
    a = datetime.fromtimestamp(q * _QUARTER - 1e-6, tz)
    b = datetime.fromtimestamp((q + 1) * _QUARTER + 1e-6, tz)
    if a.utcoffset() != b.utcoffset() or a.date() != b.date():
        return -1
    return a.toordinal()


def _local_day(tz: ZoneInfo, t: float) -> int:
    """``datetime.fromtimestamp(t, tz).toordinal()``, cached per quarter hour."""
    cache = _day_cache.get(tz)
    if cache is None:
        cache = _day_cache[tz] = {}
    q = int(t // _QUARTER)
    d = cache.get(q)
    if d is None:
        if len(cache) >= _DAY_CACHE_MAX:
            cache.clear()
        d = cache[q] = _quarter_day(tz, q)
    if d < 0:
        return datetime.fromtimestamp(t, tz).toordinal()
    return d


def _midnight(tz: ZoneInfo, day_ordinal: int) -> tuple[float, datetime]:
    """Local midnight of a day as epoch seconds and as a UTC datetime (cached)."""
    key = (tz, day_ordinal)
    hit = _midnight_cache.get(key)
    if hit is None:
        t = datetime.combine(date.fromordinal(day_ordinal), time(0), tz).timestamp()
        if len(_midnight_cache) >= _DAY_CACHE_MAX:
            _midnight_cache.clear()
        hit = _midnight_cache[key] = (t, _dt(t))
    return hit


# Enum members as module constants: ``Metric.GLUCOSE`` is a class attribute
# lookup through the enum machinery (~10x a global), and these run per reading.
_GLUCOSE = Metric.GLUCOSE
_GLUCOSE_LO, _GLUCOSE_HI = Flag.GLUCOSE_LO, Flag.GLUCOSE_HI
_DEVICE = ReadingSource.DEVICE
_INF = math.inf


def _special_value(metric: Metric, special: str | None, flags: frozenset[Flag]) -> float | None:
    """The rule value of a measurement without a number: glucose LO/HI as -inf/+inf.

    ``None`` for anything else (e.g. a failed measurement): no rule sees it.
    """
    if metric is not _GLUCOSE:
        return None
    if _GLUCOSE_LO in flags or special == "lo":
        return -_INF
    if _GLUCOSE_HI in flags or special == "hi":
        return _INF
    return None


def _absorb(st: PatientState, t: float, rid: str, hub_id: str, ct: float,  # noqa: PLR0917
            flags: frozenset[Flag], vals: dict[Metric, float], qualifying: bool,
            now: datetime, out: list[Effect], *,
            emit: bool) -> tuple[int, list[tuple[Metric, int]] | None]:
    """Take one reading into the state (no rule evaluation); shared by live and bulk paths.

    ``t``: measured time; ``ct``: the hub's contact time (epoch seconds);
    ``vals``: the rule values of the reading.  Returns the local day of the
    reading (-1 when it cannot drive a rule) and the ``(metric, day)`` whose
    first reading it became.  ``emit=False`` (rebuild): a due hub timer is
    only marked fired.
    """
    plan = st.plan
    if plan.hub_rule is not None:
        _hub_seen(st, hub_id, ct, now, out, emit=emit)
    cache = _day_cache.get(st.tz)
    day = cache.get(int(t // _QUARTER), -1) if cache is not None else -1
    if day < 0:
        day = _local_day(st.tz, t)
    if st.newest is None or t > st.newest:
        st.newest = t
        if day != st.newest_day:
            st.newest_day = day
            if plan.daily_col and st.cols is not None:
                keep = day - plan.day_keep
                for i in plan.daily_col.values():
                    d = st.cols[i]
                    if d is not None:
                        d.prune(keep)  # type: ignore[union-attr]
    nd_days = plan.no_data_days
    if nd_days and (st.last_qualifying is None or t > st.last_qualifying) and qualifying:
        st.last_qualifying = t
        due = st.no_data_due
        if day != st.last_qualifying_day or due is None:  # due moves only with the day
            st.last_qualifying_day = day
            due, due_dt = _midnight(st.tz, day + nd_days)
            if due != st.no_data_due:
                st.no_data_due = due
                # Always scheduled, even when already past (a back-filled reading): the
                # next readings of the same backlog usually move it on, and a timer
                # that is no longer the current due time is ignored when it fires.
                # Firing it here would alert on a gap the backlog is about to fill.
                out.append(ScheduleTimer(st.patient_id, NO_DATA_KEY, due_dt))
    if flags and not NON_ALERTING_FLAGS.isdisjoint(flags):
        return -1, None  # not alerting
    if not vals and not plan.any_reading_rules:
        return -1, None
    newest = st.newest
    assert newest is not None
    new_first: list[tuple[Metric, int]] | None = None
    cols = st.cols
    if cols is None:
        cols = st.cols = [None] * (len(plan.series_col) + len(plan.daily_col))
    series_col, daily_col = plan.series_col, plan.daily_col
    for metric, v in vals.items():
        ci = series_col.get(metric)
        if ci is not None:
            s = cols[ci]
            if s is None:  # created on first use: idle metrics cost 0
                s = cols[ci] = Series(plan.retention[metric])
            s.add(t, rid, v, day, newest)  # type: ignore[union-attr]
        ci = daily_col.get(metric)
        if ci is not None and math.isfinite(v) and day >= st.newest_day - plan.day_keep:
            dd = cols[ci]
            if dd is None:
                dd = cols[ci] = Daily()
            assert isinstance(dd, Daily)
            cur = dd.get(day)
            e = (t, rid, v, day)
            if cur is None or e < cur:
                dd.put(e)
                if new_first is None:
                    new_first = []
                new_first.append((metric, day))
    return day, new_first


def _on_reading(st: PatientState, r: Reading, now: datetime, out: list[Effect], *,
                evaluate: bool) -> None:
    t = r.measured_at.timestamp()
    # The hub's contact with the server is when the reading arrived (ingest
    # time), not when the hub got it from the device: a hub draining a
    # backlog after days offline is online now, and must not fire
    # hub.offline once per old reading.
    contact = r.ingested_at
    if contact is None:
        contact = min(r.received_at, now)
    # One pass over the measurements: values for the rules (glucose LO/HI as
    # -inf/+inf), whether the reading qualifies (billing: a device reading with
    # a physiologic value) and whether it carries a special value.
    flags = r.flags
    vals: dict[Metric, float] = {}
    physiologic = special = False
    for m in r.measurements:
        v, metric, sp = m.value, m.metric, m.special
        if sp is not None:
            special = True
        if v is None:
            v = _special_value(metric, sp, flags)
            if v is None:
                continue
        elif metric in PHYSIOLOGIC:
            physiologic = True
        vals[metric] = v
    day, new_first = _absorb(st, t, r.id, r.hub_id, contact.timestamp(), flags, vals,
                             physiologic and r.source == _DEVICE, now, out,
                             emit=evaluate)
    if day < 0 or not evaluate:
        return
    ctx = None
    key = tuple(vals)
    plan = st.plan
    for kind, handler, rule, checks in plan.by_metrics.get(key) or plan.steps(key):
        if kind == _THRESHOLD:
            preds, flagged = checks
            if not (flagged and (flags or special)):
                for metric, pred in preds:
                    if pred(vals[metric]):
                        break
                else:
                    continue
        elif kind == _DELTA and new_first is None:
            continue
        if ctx is None:
            ctx = _Ctx(st, r, t, day, vals, now, out, new_first or [])
        handler(ctx, rule, rule.spec)


def _dt(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _emit(st: PatientState, rule: Rule, at: float, now: datetime, out: list[Effect], *,
          readings: Sequence[EvidenceReading] = (), values: Mapping[str, Any] | None = None,
          summary: str) -> None:
    prev = st.open.get(rule.id)
    if prev is None:
        change = Change.OPENED
        st.open[rule.id] = rule.severity
    elif rule.severity.rank > prev.rank:
        change = Change.UPGRADED
        st.open[rule.id] = rule.severity
    else:
        change = Change.UPDATED
    at_dt = _dt(at)
    out.append(Escalation(
        event=change, patient_id=st.patient_id, rule_id=rule.id, rule_version=rule.version,
        severity=rule.severity, at=at_dt, late=at_dt < now - st.late_bound,
        thresholds=rule.thresholds(), readings=tuple(readings), values=dict(values or {}),
        summary=summary, overrides=rule.overrides,
    ))


def _evidence(metric: Metric, rid: str, t: float, v: float) -> EvidenceReading:
    """Reading ``rid``'s value ``v`` of ``metric`` measured at ``t``, as evidence."""
    return EvidenceReading(rid, _dt(t), str(metric), v if math.isfinite(v) else None,
                           text.value(metric, v))


def _ev(metric: Metric, e: Entry) -> EvidenceReading:
    return _evidence(metric, e[1], e[0], e[2])


class _Ctx:
    """Evaluation of the rules for one reading (kept off the state for clarity)."""

    __slots__ = ("day", "new_first", "now", "out", "r", "st", "t", "vals")

    def __init__(self, st: PatientState, r: Reading, t: float, day: int,  # noqa: PLR0917 - hot path: positional is cheaper
                 vals: dict[Metric, float], now: datetime, out: list[Effect],
                 new_first: list[tuple[Metric, int]]) -> None:
        self.st, self.r, self.t, self.day, self.vals, self.now, self.out = (
            st, r, t, day, vals, now, out)
        self.new_first = new_first  # (metric, day) whose first reading this one became

    def _cutoff(self, metric: Metric) -> float:
        s = self.st.series_of(metric)
        assert s is not None and self.st.newest is not None
        return self.st.newest - s.retention

    def _in_window(self, metric: Metric, c: Clause) -> list[Entry] | None:
        """Matching entries of a window of ``c.within`` that holds this reading."""
        s = self.st.series_of(metric)
        if s is None:
            return None
        w = c.within.total_seconds()
        t = self.t
        cand = [e for e in s.between(max(t - w, self._cutoff(metric)), t + w) if c.test(e[2])]
        if not any(e[0] == t and e[1] == self.r.id for e in cand):
            return None  # too old to be kept: cannot pair
        times = [e[0] for e in cand]
        for i, ti in enumerate(times):
            if ti > t:
                break
            if ti + w < t:
                continue
            j = bisect_right(times, ti + w)
            if j - i >= c.count:
                return cand[i:j]
        return None

    def threshold(self, rule: Rule, spec: ThresholdSpec) -> None:
        evidence: list[EvidenceReading] = []
        parts: list[str] = []
        values: dict[str, Any] = {}
        for c in spec.clauses:
            if c.flag is not None:
                special = c.flag.removeprefix("glucose_")
                if c.flag in self.r.flags or any(
                    m.special == special for m in self.r.measurements
                ):
                    m = Metric.GLUCOSE if c.flag in (Flag.GLUCOSE_LO, Flag.GLUCOSE_HI) else None
                    if m is not None and m in self.vals:
                        evidence.append(_ev(m, (self.t, self.r.id, self.vals[m], self.day)))
                    side = {"lo": "below", "hi": "above"}.get(special)
                    what = f" (meter {side} its range)" if side else ""
                    parts.append(f"{text.label(m) if m else 'Reading'} {special.upper()}{what}"
                                 f" at {text.local_time(self.t, self.st.tz)}")
                    values[str(c.flag)] = True
                continue
            assert c.metric is not None
            v = self.vals.get(c.metric)
            if v is None or not c.test(v):
                continue
            if math.isinf(v) and any(x.flag is not None for x in spec.clauses):
                continue  # LO/HI: reported by the rule's flag clause instead
            if c.count == 1:
                used = [(self.t, self.r.id, v, self.day)]
            else:
                found = self._in_window(c.metric, c)
                if found is None:
                    continue
                used = found
            evidence.extend(_ev(c.metric, e) for e in used)
            values[str(c.metric)] = v if math.isfinite(v) else text.value(c.metric, v)
            if c.count == 1:
                parts.append(f"{text.LABEL[c.metric]} {text.value(c.metric, v)} at "
                             f"{text.local_time(self.t, self.st.tz)} "
                             f"(threshold: {text.clause(c, lower=True)})")
            else:
                listed = ", ".join(f"{text.value(c.metric, e[2])} at "
                                   f"{text.local_time(e[0], self.st.tz)}" for e in used)
                parts.append(f"{text.LABEL[c.metric]} {listed}: {len(used)} readings within "
                             f"{text.duration(c.within)} (threshold: {text.clause(c, lower=True)})")
        if parts:
            _emit(self.st, rule, self.t, self.now, self.out, readings=_dedupe(evidence),
                  values=values, summary="; ".join(parts) + ".")

    def deltas(self, rule: Rule, spec: DeltaSpec) -> None:
        for metric, changed_day in self.new_first:
            if metric is spec.metric:
                self.delta(rule, spec, changed_day)

    def delta(self, rule: Rule, spec: DeltaSpec, changed_day: int) -> None:
        st = self.st
        assert st.cols is not None
        d = st.cols[st.plan.daily_col[spec.metric]]
        assert isinstance(d, Daily)
        lowest = st.newest_day - st.day_keep
        backs = spec.backs
        # The changed day itself (whose first reading is this one), and every
        # later day whose reference it can be (none when it is the newest day:
        # the common, in-order case).
        later = sorted({changed_day + k for k in backs}) if changed_day < st.newest_day else ()
        for day in (changed_day, *later):
            if day == changed_day:
                cur: Entry | None = (self.t, self.r.id, self.vals[spec.metric], day)
            else:
                cur = d.get(day)
            if cur is None:
                continue
            found = d.reference(day, backs, lowest)
            if found is None:
                continue
            ref, back = found
            if day != changed_day and day - back != changed_day:
                continue  # this late reading did not change that comparison
            diff = cur[2] - ref[2]
            if not spec.change.test(diff):
                continue
            ev = [_ev(spec.metric, ref), _ev(spec.metric, cur)]
            _emit(st, rule, self.t, self.now, self.out, readings=ev,
                  values={"first_today": cur[2], "first_reference": ref[2], "change": diff,
                          "days_back": back},
                  summary=_delta_summary(spec, cur, ref, diff=diff, back=back))

    def baseline_drop(self, rule: Rule, spec: BaselineDropSpec) -> None:
        v = self.vals.get(spec.metric)
        s = self.st.series_of(spec.metric)
        if v is None or not math.isfinite(v) or s is None:
            return
        lo = max(self.t - spec.baseline_days * DAY_S, self._cutoff(spec.metric))
        base = s.value_slice(s.at_or_after(lo), s.at_or_after(self.t)).tolist()
        if len(base) < spec.min_baseline_readings:
            return
        med = median(base)
        c = Clause(metric=spec.metric, le=med - spec.drop, count=spec.count, within=spec.within)
        if not c.test(v):
            return
        used = [(self.t, self.r.id, v, self.day)] if spec.count == 1 else \
            self._in_window(spec.metric, c)
        if not used:
            return
        listed = ", ".join(f"{text.value(spec.metric, e[2])} at "
                           f"{text.local_time(e[0], self.st.tz)}" for e in used)
        _emit(self.st, rule, self.t, self.now, self.out,
              readings=[_ev(spec.metric, e) for e in used],
              values={"baseline_median": med, "baseline_readings": len(base)},
              summary=(f"{text.LABEL[spec.metric]} {listed}: at least {text.num(spec.drop)} "
                       f"points below the {spec.baseline_days}-day median of "
                       f"{text.value(spec.metric, med)} ({len(base)} readings) on "
                       f"{len(used)} readings within {text.duration(spec.within)}."))

    def _window(self, metric: Metric, days: int) -> tuple[Series | None, int]:
        """The series of ``metric`` and the index where its last ``days`` local days start."""
        st = self.st
        s = st.series_of(metric)
        if s is None:
            return None, 0
        assert st.newest is not None
        # Local day is monotonic in time, so both bounds are binary searches
        # (as Series.at_or_after, inlined: hot path).
        a, n = s.cols, len(s.ids)
        return s, max(bisect_left(a, st.newest_day - days + 1, 2 * n, 3 * n) - 2 * n,
                      bisect_left(a, st.newest - s.retention, 0, n))

    def window_average(self, rule: Rule, spec: WindowAverageSpec) -> None:
        if self.day < self.st.newest_day - spec.days + 1:
            return  # a late reading outside the current window changes nothing
        main, i0 = self._window(spec.metrics[0], spec.days)
        if main is None:
            return
        n = len(main) - i0
        if n < spec.min_readings:
            return
        ndays = len(set(main.day_slice(i0)))
        if ndays < spec.min_days:
            return
        per: dict[Metric, tuple[Series | None, int]] = {spec.metrics[0]: (main, i0)}
        for m in spec.metrics[1:]:
            per[m] = self._window(m, spec.days)
        means = {m: sum(s.value_slice(i)) / (len(s) - i)
                 for m, (s, i) in per.items() if s is not None and len(s) > i}
        fired = [c for c in spec.clauses
                 if c.metric in means and _predicate(c)(means[c.metric])]
        if not fired:
            return
        ev = [e for m, (s, i) in per.items() if s is not None for e in s.evidence(m, i)]
        mean_txt = ", ".join(f"{text.LABEL[m].lower()} {text.num(v)}" for m, v in means.items())
        thr = " or ".join(text.clause(c, lower=True) for c in spec.clauses)
        _emit(self.st, rule, self.t, self.now, self.out, readings=ev,
              values={f"mean_{m}": v for m, v in means.items()} | {"readings": n, "days": ndays},
              summary=(f"Mean over the last {spec.days} days: {mean_txt} mmHg "
                       f"({n} readings on {ndays} days); threshold mean {thr} "
                       f"(needs >= {spec.min_readings} readings on >= {spec.min_days} days)."))

    def frequency(self, rule: Rule, spec: FrequencySpec) -> None:
        metric = spec.clause.metric
        if metric is None or self.day < self.st.newest_day - spec.days + 1:
            return
        s, i0 = self._window(metric, spec.days)
        if s is None:
            return
        n = len(s) - i0
        if n < spec.min_readings:
            return
        pred = _predicate(spec.clause)
        k = sum(map(pred, s.value_slice(i0)))
        share = k / n
        if spec.min_share is not None and share < spec.min_share - 1e-12:
            return
        if spec.min_count is not None and k < spec.min_count:
            return
        hits = s.evidence(metric, i0, pred)
        need = []
        if spec.min_share is not None:
            need.append(f">= {text.num(spec.min_share * 100)} %")
        if spec.min_count is not None:
            need.append(f">= {spec.min_count} readings")
        _emit(self.st, rule, self.t, self.now, self.out,
              readings=hits,
              values={"readings": n, "matching": len(hits), "share": share},
              summary=(f"{len(hits)} of {n} {text.LABEL[metric].lower()} readings over the "
                       f"last {spec.days} days ({text.num(share * 100)} %) were "
                       f"{text.clause(spec.clause).removeprefix(text.LABEL[metric]).strip()}; "
                       f"threshold {' and '.join(need)} with >= {spec.min_readings} readings."))


_HANDLERS: dict[type, Any] = {
    ThresholdSpec: _Ctx.threshold,
    DeltaSpec: _Ctx.deltas,
    BaselineDropSpec: _Ctx.baseline_drop,
    WindowAverageSpec: _Ctx.window_average,
    FrequencySpec: _Ctx.frequency,
}


def _dedupe(evidence: list[EvidenceReading]) -> list[EvidenceReading]:
    seen: set[tuple[str, str]] = set()
    out = []
    for e in evidence:
        if (e.reading_id, e.metric) not in seen:
            seen.add((e.reading_id, e.metric))
            out.append(e)
    return out


def _delta_summary(spec: DeltaSpec, cur: Entry, ref: Entry, *, diff: float, back: int) -> str:
    label = text.LABEL[spec.metric]
    if spec.metric is Metric.WEIGHT:
        now_txt, ref_txt, chg = text.value(spec.metric, cur[2]), text.value(spec.metric, ref[2]), \
            text.weight_change(diff)
    else:
        now_txt, ref_txt = text.value(spec.metric, cur[2]), text.value(spec.metric, ref[2])
        chg = text.value(spec.metric, abs(diff))
    when = "the previous day" if back == 1 else \
        f"{back} days earlier ({date.fromordinal(ref[3]).strftime('%a %b %d')})"
    thr = []
    for op, v in spec.change.ops():
        shown = f"{kg_to_lb(v):.1f} lb" if spec.metric is Metric.WEIGHT else \
            text.value(spec.metric, v)
        thr.append(f"{'' if op == 'ge' else OP_SYMBOL[op] + ' '}{shown}")
    period = "24 h" if spec.days_back == 1 else f"{spec.days_back} days"
    return (f"{label} {now_txt}, {'up' if diff >= 0 else 'down'} {chg} from {ref_txt} {when} "
            f"(first {label.lower()} of each day); threshold {' and '.join(thr)} / {period}.")


# --------------------------------------------------------------------------- timers etc.

def _hub_seen(st: PatientState, hub_id: str, t: float, now: datetime,
              out: list[Effect], *, emit: bool = True) -> None:
    plan = st.plan
    if plan.hub_rule is None:
        return
    hub = st.hubs.get(hub_id)
    if hub is None:
        hub = st.hubs[hub_id] = _Hub()
    elif hub.seen is not None and t <= hub.seen:
        return
    hub.seen = t
    due = t + plan.hub_after
    if due <= now.timestamp():
        _fire_hub(st, hub_id, hub, due, now, out, emit=emit)
    elif hub.armed is None:
        # Armed once per silence window, not per reading: when it comes due and
        # the hub was seen since, the tick re-arms it (one timer write per day).
        hub.armed = due
        out.append(ScheduleTimer(st.patient_id, HUB_KEY_PREFIX + hub_id, _dt(due)))


def _fire_no_data(st: PatientState, due: float, now: datetime, out: list[Effect]) -> None:
    rule = st.no_data
    if rule is None or st.no_data_fired == due:
        return
    st.no_data_fired = due
    assert st.last_qualifying is not None and isinstance(rule.spec, NoDataSpec)
    last = st.last_qualifying
    _emit(st, rule, due, now, out,
          values={"last_reading_at": _dt(last).isoformat(), "full_days": rule.spec.full_days},
          summary=(f"No qualifying reading for {rule.spec.full_days} full days: last "
                   f"reading {text.local_time(last, st.tz)}; threshold "
                   f"{rule.spec.full_days} full local days without data."))


def _fire_hub(st: PatientState, hub: str, h: _Hub, due: float, now: datetime,  # noqa: PLR0917
              out: list[Effect], *, emit: bool = True) -> None:
    """hub.offline for ``hub`` (its record ``h``) at ``due``, once per due time."""
    rule = st.plan.hub_rule
    seen = h.seen
    if rule is None or seen is None or h.fired == due:
        return
    h.fired = due
    if not emit:
        return  # rebuild: the finding was made before; only the state moves
    assert isinstance(rule.spec, HubOfflineSpec)
    _emit(st, rule, due, now, out, values={"hub_id": hub, "last_seen": _dt(seen).isoformat()},
          summary=(f"Hub {hub} sent no status or reading for "
                   f"{text.duration(rule.spec.after)} (last seen "
                   f"{text.local_time(seen, st.tz)})."))


def _on_timer(st: PatientState, ev: TimerFired, now: datetime, out: list[Effect]) -> None:
    """Fire a due timer unless it is early or stale (superseded by a later schedule)."""
    due = ev.due.timestamp()
    if now < ev.due:
        return  # early delivery: the scheduled one will come
    if ev.key == NO_DATA_KEY:
        if st.no_data_due == due:
            _fire_no_data(st, due, now, out)
    elif ev.key.startswith(HUB_KEY_PREFIX):
        hub = ev.key.removeprefix(HUB_KEY_PREFIX)
        rule = st.hub_rule
        h = st.hubs.get(hub)
        seen = h.seen if h is not None else None
        if rule is None or h is None or seen is None or not isinstance(rule.spec, HubOfflineSpec):
            return
        # A hub tick is a prompt to check, judged against the last contact, so
        # a timer table that disagrees with this state (e.g. after a rebuild
        # without it) can delay the alarm but never lose it.
        target = seen + rule.spec.after.total_seconds()
        if target > now.timestamp():  # seen since it was armed: re-arm
            if h.armed != target:
                h.armed = target
                out.append(ScheduleTimer(st.patient_id, ev.key, _dt(target)))
        else:
            h.armed = None
            _fire_hub(st, hub, h, target, now, out)


def _on_clock(st: PatientState, ev: ClockReport, now: datetime, out: list[Effect]) -> None:
    rule = st.clock_rule
    if rule is None or ev.corrected or not isinstance(rule.spec, DeviceClockSpec):
        return
    limit = rule.spec.max_offset.total_seconds()
    if abs(ev.offset_s) <= limit:
        return
    _emit(st, rule, ev.at.timestamp(), now, out,
          values={"device_serial": ev.device_serial, "hub_id": ev.hub_id,
                  "offset_s": ev.offset_s},
          summary=(f"Device {ev.device_serial} clock is off by {text.num(ev.offset_s)} s "
                   f"({ev.offset_s / 60:.1f} min) "
                   f"and the hub could not correct it; threshold "
                   f"{text.duration(rule.spec.max_offset)}."))


# --------------------------------------------------------------------------- rebuild

def rebuild(st: PatientState, history: Iterable[Reading], *, now: datetime,
            open_escalations: Mapping[str, Severity | str] | None = None,
            hubs_last_seen: Mapping[str, datetime] | None = None,
            timers: Mapping[str, datetime] | None = None) -> PatientState:
    """Warm an empty state from stored history (no effects).

    ``history``: the patient's readings measured within
    :func:`history_needed` of the newest one (more is harmless).
    ``open_escalations``: ``{rule_id: severity}`` open in the store.
    ``timers``: pending ``{key: due}`` from the timer table; without it, hub
    timers are assumed armed at last contact + ``after``.  Timers already
    due at ``now`` are taken as fired.
    """
    sink: list[Effect] = []
    for r in sorted(history, key=lambda x: (x.measured_at, x.id)):
        _on_reading(st, r, now, sink, evaluate=False)
    return _rebuilt(st, now, sink, open_escalations=open_escalations,
                    hubs_last_seen=hubs_last_seen, timers=timers)


#: A stored reading reduced to what the rules need (see
#: ``gateway.store.sql.RuleRow``): ``(patient_id, id, hub_id, measured_at,
#: received_at, ingested_at or None, source, flags, ((metric, value or None,
#: special or None), ...))`` with instants as epoch seconds.
Row = tuple[str, str, str, float, float, float | None, str, frozenset[Flag],
            tuple[tuple[Metric, float | None, str | None], ...]]


def rebuild_rows(st: PatientState, rows: Iterable[Row], *, now: datetime,
                 open_escalations: Mapping[str, Severity | str] | None = None,
                 hubs_last_seen: Mapping[str, datetime] | None = None,
                 timers: Mapping[str, datetime] | None = None) -> PatientState:
    """:func:`rebuild` from light rows instead of :class:`Reading` objects (bulk warm-up).

    Same result as ``rebuild`` over the readings the rows stand for: the
    values are derived as a step derives them and fed to the same storage
    code, without building datetimes or evaluating rules.
    """
    sink: list[Effect] = []
    t_now = now.timestamp()
    for _, rid, hub_id, t, received, ingested, source, flags, ms in sorted(
            rows, key=lambda x: (x[3], x[1])):
        vals: dict[Metric, float] = {}
        physiologic = False
        for metric, v, special in ms:  # as in _on_reading
            if v is None:
                v = _special_value(metric, special, flags)
                if v is None:
                    continue
            elif metric in PHYSIOLOGIC:
                physiologic = True
            vals[metric] = v
        ct = ingested if ingested is not None else min(received, t_now)
        _absorb(st, t, rid, hub_id, ct, flags, vals, physiologic and source == _DEVICE, now,
                sink, emit=False)
    return _rebuilt(st, now, sink, open_escalations=open_escalations,
                    hubs_last_seen=hubs_last_seen, timers=timers)


def _rebuilt(st: PatientState, now: datetime, sink: list[Effect], *,
             open_escalations: Mapping[str, Severity | str] | None,
             hubs_last_seen: Mapping[str, datetime] | None,
             timers: Mapping[str, datetime] | None) -> PatientState:
    """The end of a rebuild: hub contacts, open escalations and timers taken as they are."""
    for hub, at in (hubs_last_seen or {}).items():
        _hub_seen(st, hub, at.timestamp(), now, sink, emit=False)
    st.open = {k: Severity(v) for k, v in (open_escalations or {}).items()}
    t_now = now.timestamp()
    if st.no_data_due is not None and st.no_data_due <= t_now:
        st.no_data_fired = st.no_data_due
    if st.hub_rule is not None and isinstance(st.hub_rule.spec, HubOfflineSpec):
        after = st.hub_rule.spec.after.total_seconds()
        for h in st.hubs.values():
            if h.seen is not None and h.seen + after <= t_now:
                h.fired = h.seen + after
        if timers is not None:
            for h in st.hubs.values():
                h.armed = None
            for k, due in timers.items():
                if k.startswith(HUB_KEY_PREFIX):
                    name = k.removeprefix(HUB_KEY_PREFIX)
                    h = st.hubs.get(name) or st.hubs.setdefault(name, _Hub())
                    h.armed = due.timestamp()
        else:
            for h in st.hubs.values():
                h.armed = h.seen + after if h.seen is not None and h.seen + after > t_now \
                    else None
    return st


def pending_timers(st: PatientState) -> list[ScheduleTimer]:
    """Timers the state expects (e.g. to re-create the timer table after rebuild)."""
    out = []
    if st.no_data_due is not None and st.no_data_fired != st.no_data_due:
        out.append(ScheduleTimer(st.patient_id, NO_DATA_KEY, _dt(st.no_data_due)))
    out += [ScheduleTimer(st.patient_id, HUB_KEY_PREFIX + hub, _dt(h.armed))
            for hub, h in st.hubs.items() if h.armed is not None]
    return out


class Engine:
    """Convenience owner of many patients' states (still no I/O, no clock)."""

    def __init__(self, ruleset: RuleSet, *, late_bound: timedelta = DEFAULT_LATE_BOUND) -> None:
        self.ruleset = ruleset
        self.late_bound = late_bound
        self.states: dict[str, PatientState] = {}

    def add_patient(self, patient_id: str, timezone: str, conditions: Iterable[Condition | str],
                    overrides: Sequence[Override] = (), *, now: datetime) -> PatientState:
        """Register a patient (empty state)."""
        st = new_state(patient_id, timezone, conditions, self.ruleset, overrides, now=now,
                       late_bound=self.late_bound)
        self.states[patient_id] = st
        return st

    def step(self, patient_id: str, event: Event, now: datetime) -> list[Effect]:
        """Run :func:`step` on the patient's state."""
        st, effects = step(self.states[patient_id], event, now)
        self.states[patient_id] = st
        return effects

    def resolve(self, patient_id: str, rule_id: str) -> None:
        """Mark the patient's escalation for ``rule_id`` resolved."""
        mark_resolved(self.states[patient_id], rule_id)
