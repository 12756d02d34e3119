"""``vitalgate rules replay``: run the rules over files, no server.

Patients come from a JSON list (``id``, ``conditions``, ``timezone``,
``overrides``); readings from a CSV (``patient_id,measured_at,metric,value,
unit``) where rows of one patient with the same ``measured_at`` form one
reading.  Readings are replayed in measured-time order with ``now`` equal to
each reading's time; timers fire at their due time up to ``--until``.  One
JSON object per escalation event goes to stdout.  Bad input: a message
naming file and line on stderr, exit status 2.
"""

from __future__ import annotations

import argparse
import csv
import heapq
import json
import math
import sys
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.model import Condition, DeviceKind, Flag, Measurement, Reading
from gateway.units import Metric, UnitError, parse_unit, to_canonical
from rules.definitions import (
    Override,
    RuleError,
    RuleFileError,
    RuleSet,
    apply_override,
    load_rules,
    override_from_json,
)
from rules.engine import (
    DEFAULT_LATE_BOUND,
    Effect,
    Escalation,
    PatientState,
    ScheduleTimer,
    TimerFired,
    new_state,
    step,
)

CSV_COLUMNS = ("patient_id", "measured_at", "metric", "value", "unit")
CSV_METRICS = {Metric.WEIGHT, Metric.SYSTOLIC, Metric.DIASTOLIC, Metric.PULSE, Metric.SPO2,
               Metric.GLUCOSE}


class ReplayInputError(Exception):
    """Bad replay input; ``file`` and ``line`` (1-based, 0 unknown) locate it."""

    def __init__(self, file: str, line: int, reason: str) -> None:
        self.file, self.line, self.reason = file, line, reason
        super().__init__(f"{file}:{line}: {reason}" if line else f"{file}: {reason}")


@dataclass(frozen=True, slots=True)
class PatientSpec:
    """One patient of the replay."""

    id: str
    conditions: tuple[Condition, ...]
    timezone: str
    overrides: tuple[Override, ...]


def register(subparsers: Any) -> None:
    """Add ``rules replay`` to the ``vitalgate`` command line."""
    rules = subparsers.add_parser("rules", help="escalation rules tools")
    sub = rules.add_subparsers(dest="rules_command", metavar="SUBCOMMAND")
    p = sub.add_parser("replay", help="run the rules over patient/reading files",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--patients", required=True, help="patients JSON file")
    p.add_argument("--readings", required=True, help="readings CSV file")
    p.add_argument("--rules", help="rule file (default: packaged defaults.yaml)")
    p.add_argument("--until", help="fire timers up to this ISO 8601 instant "
                                    "(default: the last reading's time)")
    p.add_argument("--stats", action="store_true",
                   help="also print opened escalations per patient-week by rule")
    p.add_argument("--hub-timers", action="store_true",
                   help="include hub.offline (files carry no hub status, so off by default)")
    p.set_defaults(func=replay_command)
    rules.set_defaults(func=lambda _args: (rules.print_help(), 2)[1])


def main(argv: Sequence[str] | None = None) -> int:
    """Stand-alone entry point (``python -m rules.cli replay ...``)."""
    parser = argparse.ArgumentParser(prog="vitalgate")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["rules", *(argv if argv is not None else sys.argv[1:])])
    return int(args.func(args))


def replay_command(args: argparse.Namespace, out: TextIO | None = None,
                   err: TextIO | None = None) -> int:
    """Handler of ``vitalgate rules replay``."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        ruleset = load_rules(args.rules) if args.rules else load_rules()
        if not args.hub_timers:
            ruleset = RuleSet(ruleset.version,
                              tuple(r for r in ruleset.rules if r.kind != "hub_offline"))
        patients = read_patients(args.patients, ruleset)
        readings = read_readings(args.readings, {p.id for p in patients})
        until = _parse_instant(args.until, "--until", 0) if args.until else None
    except (ReplayInputError, RuleFileError) as e:
        print(f"vitalgate rules replay: {e}", file=err)
        return 2
    except OSError as e:
        print(f"vitalgate rules replay: {e.filename}: {e.strerror}", file=err)
        return 2
    effects = replay(patients, readings, ruleset, until=until)
    tz = {p.id: ZoneInfo(p.timezone) for p in patients}
    for eff in effects:
        out.write(json.dumps(escalation_json(eff, tz[eff.patient_id])) + "\n")
    if args.stats:
        out.write(json.dumps({"stats": stats(effects, readings, until)}) + "\n")
    return 0


def escalation_json(e: Escalation, tz: ZoneInfo) -> dict[str, Any]:
    """The replay output object of one escalation event."""
    return {"event": str(e.event), "patient_id": e.patient_id, "rule": e.rule_id,
            "severity": str(e.severity), "at": e.at.astimezone(tz).isoformat(),
            "evidence": e.evidence(), "summary": e.summary}


def replay(patients: Sequence[PatientSpec], readings: Sequence[Reading], ruleset: RuleSet, *,
           until: datetime | None = None) -> list[Escalation]:
    """Run the engine over ``readings`` (any order) with timers; return escalation events."""
    ordered = sorted(readings, key=lambda r: (r.measured_at, r.patient_id, r.id))
    if until is None and ordered:
        until = ordered[-1].measured_at
    start = ordered[0].measured_at if ordered else until
    assert start is not None
    states: dict[str, PatientState] = {
        p.id: new_state(p.id, p.timezone, p.conditions, ruleset, p.overrides, now=start,
                        late_bound=DEFAULT_LATE_BOUND)
        for p in patients
    }
    timers: list[tuple[datetime, str, str]] = []
    results: list[Escalation] = []

    def handle(pid: str, effects: list[Effect]) -> None:
        for eff in effects:
            if isinstance(eff, ScheduleTimer):
                heapq.heappush(timers, (eff.due, pid, eff.key))
            else:
                results.append(eff)

    def fire_until(limit: datetime, inclusive: bool) -> None:
        while timers and (timers[0][0] < limit or (inclusive and timers[0][0] == limit)):
            due, pid, key = heapq.heappop(timers)
            _, effs = step(states[pid], TimerFired(key, due), due)
            handle(pid, effs)

    for r in ordered:
        if until is not None and r.measured_at > until:
            break
        fire_until(r.measured_at, inclusive=True)
        _, effs = step(states[r.patient_id], r, r.measured_at)
        handle(r.patient_id, effs)
    if until is not None:
        fire_until(until, inclusive=True)
    return results


def stats(effects: Sequence[Escalation], readings: Sequence[Reading],
          until: datetime | None) -> dict[str, Any]:
    """Opened escalations per patient-week by rule (weeks from each patient's first reading)."""
    first: dict[str, datetime] = {}
    last = until
    for r in readings:
        if r.patient_id not in first or r.measured_at < first[r.patient_id]:
            first[r.patient_id] = r.measured_at
        if until is None and (last is None or r.measured_at > last):
            last = r.measured_at
    weeks = sum(max((last - t0) / timedelta(days=7), 1 / 7) for t0 in first.values()) \
        if last is not None else 0.0
    opened = Counter(e.rule_id for e in effects if e.event == "opened")
    return {"patient_weeks": round(weeks, 3),
            "opened_per_patient_week": {rule: round(n / weeks, 4) if weeks else None
                                        for rule, n in sorted(opened.items())},
            "opened": dict(sorted(opened.items()))}


# --------------------------------------------------------------------------- input

def _parse_instant(text: str, file: str, line: int) -> datetime:
    try:
        dt = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ReplayInputError(file, line, f"not an ISO 8601 time: {text!r}") from None
    if dt.tzinfo is None:
        raise ReplayInputError(file, line, f"time without UTC offset: {text!r}")
    return dt


def read_patients(path: str, ruleset: RuleSet) -> list[PatientSpec]:
    """Parse and validate the patients JSON file."""
    text = Path(path).read_text(encoding="utf-8")
    dec = json.JSONDecoder()
    items: list[tuple[int, Any]] = []
    try:
        i = _skip_ws(text, 0)
        if text[i: i + 1] != "[":
            raise ReplayInputError(path, text.count("\n", 0, i) + 1,
                                   "expected a JSON list of patients")
        i = _skip_ws(text, i + 1)
        while text[i: i + 1] != "]":
            obj, end = dec.raw_decode(text, i)
            items.append((text.count("\n", 0, i) + 1, obj))
            i = _skip_ws(text, end)
            if text[i: i + 1] == ",":
                i = _skip_ws(text, i + 1)
            elif text[i: i + 1] != "]":
                raise ReplayInputError(path, text.count("\n", 0, i) + 1, "expected ',' or ']'")
    except json.JSONDecodeError as e:
        raise ReplayInputError(path, e.lineno, f"invalid JSON: {e.msg}") from None
    rule_ids = {r.id for r in ruleset.rules}
    out: list[PatientSpec] = []
    seen: set[str] = set()
    for line, obj in items:
        def bad(reason: str, line: int = line) -> ReplayInputError:
            return ReplayInputError(path, line, reason)
        if not isinstance(obj, dict):
            raise bad("each patient must be an object")
        unknown = set(obj) - {"id", "conditions", "timezone", "overrides"}
        if unknown:
            raise bad(f"unknown patient field(s): {', '.join(sorted(unknown))}")
        pid = obj.get("id")
        if not isinstance(pid, str) or not pid:
            raise bad("patient id must be a non-empty string")
        if pid in seen:
            raise bad(f"duplicate patient id {pid!r}")
        seen.add(pid)
        conds = obj.get("conditions", [])
        if not isinstance(conds, list):
            raise bad(f"patient {pid}: conditions must be a list")
        try:
            conditions = tuple(Condition(c) for c in conds)
        except ValueError:
            raise bad(f"patient {pid}: unknown condition in {conds} "
                      f"(known: {', '.join(Condition)})") from None
        tzname = obj.get("timezone")
        try:
            ZoneInfo(str(tzname))
        except (ZoneInfoNotFoundError, ValueError):
            raise bad(f"patient {pid}: unknown time zone {tzname!r}") from None
        ovs = obj.get("overrides", {}) or {}
        if not isinstance(ovs, dict):
            raise bad(f"patient {pid}: overrides must be an object {{rule_id: {{...}}}}")
        overrides = []
        for rid, params in ovs.items():
            if rid not in rule_ids:
                raise bad(f"patient {pid}: override of unknown rule {rid!r}")
            if not isinstance(params, dict):
                raise bad(f"patient {pid}: override of {rid} must be an object")
            try:
                ov = override_from_json(rid, params)
                apply_override(ruleset.get(rid), ov)  # validate now, not mid-replay
            except RuleError as e:
                raise bad(f"patient {pid}: {e}") from None
            overrides.append(ov)
        out.append(PatientSpec(pid, conditions, str(tzname), tuple(overrides)))
    return out


def _skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    return i


def _kind(metrics: set[Metric]) -> DeviceKind:
    if Metric.SPO2 in metrics:
        return DeviceKind.PULSE_OXIMETER
    if Metric.WEIGHT in metrics:
        return DeviceKind.SCALE
    if Metric.GLUCOSE in metrics:
        return DeviceKind.GLUCOMETER
    return DeviceKind.BP_CUFF


def read_readings(path: str, patient_ids: set[str]) -> list[Reading]:
    """Parse the readings CSV; rows of a patient with equal ``measured_at`` form one reading."""
    groups: dict[tuple[str, datetime], list[tuple[int, Measurement, Flag | None]]] = \
        defaultdict(list)
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        try:
            header = next(reader)
        except StopIteration:
            raise ReplayInputError(path, 1, "empty file (expected a header)") from None
        if tuple(h.strip() for h in header) != CSV_COLUMNS:
            raise ReplayInputError(path, 1, f"header must be {','.join(CSV_COLUMNS)}")
        for row in reader:
            line = reader.line_num
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != len(CSV_COLUMNS):
                raise ReplayInputError(path, line, f"expected {len(CSV_COLUMNS)} columns, "
                                                   f"got {len(row)}")
            pid, when, metric_s, value_s, unit_s = (c.strip() for c in row)
            if pid not in patient_ids:
                raise ReplayInputError(path, line, f"unknown patient {pid!r}")
            at = _parse_instant(when, path, line)
            try:
                metric = Metric(metric_s)
            except ValueError:
                metric = None
            if metric not in CSV_METRICS or metric is None:
                raise ReplayInputError(path, line, f"unknown metric {metric_s!r} (known: "
                                       f"{', '.join(sorted(CSV_METRICS))})")
            try:
                unit = parse_unit(unit_s)
            except UnitError as e:
                raise ReplayInputError(path, line, str(e)) from None
            flag = None
            if value_s.upper() in ("LO", "HI"):
                if metric is not Metric.GLUCOSE:
                    raise ReplayInputError(path, line, f"{value_s} is only valid for glucose")
                flag = Flag.GLUCOSE_LO if value_s.upper() == "LO" else Flag.GLUCOSE_HI
                m = Measurement(metric, None, raw_unit=unit, special=value_s.lower())
            else:
                try:
                    raw = float(value_s)
                except ValueError:
                    raise ReplayInputError(path, line, f"value is not a number: {value_s!r}") \
                        from None
                if not math.isfinite(raw):
                    raise ReplayInputError(path, line, f"value is not finite: {value_s!r}")
                try:
                    v = to_canonical(metric, raw, unit)
                except UnitError as e:
                    raise ReplayInputError(path, line, str(e)) from None
                m = Measurement(metric, v, raw_value=raw, raw_unit=unit)
            group = groups[(pid, at)]
            if any(x[1].metric is metric for x in group):
                raise ReplayInputError(path, line, f"{metric} given twice for patient {pid} "
                                                   f"at {when}")
            group.append((line, m, flag))
    readings = []
    for (pid, at), rows in groups.items():
        flags = frozenset(f for _, _, f in rows if f is not None)
        readings.append(Reading(
            id=f"{pid}-L{rows[0][0]}", practice_id="replay", patient_id=pid,
            device_serial="replay", hub_id="replay", kind=_kind({m.metric for _, m, _ in rows}),
            measured_at=at, received_at=at, measurements=tuple(m for _, m, _ in rows),
            flags=flags,
        ))
    return readings


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
